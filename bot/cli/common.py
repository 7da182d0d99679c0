"""What every command shares: the settings (read once) and the errors shown as one line."""

from __future__ import annotations

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
