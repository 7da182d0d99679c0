"""What every command shares: the settings (read once) and the errors shown as one line."""

from __future__ import annotations

import os
from functools import cache

from bot.catalog import CatalogError
from bot.settings import ConfigError, Settings, load_settings
from retrieval.errors import KnowledgeBaseError
from storage.errors import StorageError
from training.errors import ModelError

USER_ERRORS: tuple[type[Exception], ...] = (ConfigError, StorageError, ModelError, KnowledgeBaseError, CatalogError)


@cache
def settings() -> Settings:
    return load_settings()


def passive_openmp() -> None:
    """Let idle OpenMP threads sleep instead of spin, for the training commands; call before torch loads.

    On a shared CPU, spinning threads made 2-thread training ~4-10x slower (bench/README.md); a training job
    gains nothing from spinning. Serving keeps the default. An explicit OMP_WAIT_POLICY is respected.
    """
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
