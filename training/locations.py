"""Where registered versions live: the registry records each version directory relative to the models folder, so
a data dir can be moved or restored elsewhere (light: no torch, for the CLI's registry commands)."""

from __future__ import annotations

from pathlib import Path

from storage.models import ModelVersion

REPORT_DIR = "report"
"""A version's retraining report folder, inside its version directory."""
REPORT_FILE = "report.md"
HTML_FILE = "report.html"
"""The same report as one self-contained page (the plots inlined), for a browser."""


def stored_path(path: Path, models_dir: Path) -> str:
    """How the registry records a version directory: relative to the models folder (the data dir can move), or
    absolute when it lies elsewhere."""
    try:
        return str(path.resolve().relative_to(models_dir.resolve()))
    except ValueError:
        return str(path.resolve())


def located(record: ModelVersion, models_dir: Path) -> Path:
    """Where a registry entry's version directory is: its recorded path under `models_dir` (or as recorded, when
    absolute); an absolute path that is gone falls back to `models_dir/<version>` (a data dir that was moved or
    restored elsewhere, registered before paths were relative)."""
    path = Path(record.path).expanduser()
    if not path.is_absolute():
        return models_dir / path
    if not path.exists() and (models_dir / record.version).is_dir():
        return models_dir / record.version
    return path
