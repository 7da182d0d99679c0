"""Registry paths: relative to the models folder, so a data dir can move; absolute ones that are gone fall back."""

from __future__ import annotations

from pathlib import Path

from storage.models import ModelVersion
from training.locations import located, stored_path


def record(version: str, path: str) -> ModelVersion:
    return ModelVersion(version=version, path=path, metrics={}, dataset_hash="x" * 64, status="candidate")


def test_versions_under_the_models_folder_are_recorded_relative(tmp_path: Path):
    models = tmp_path / "models"
    (models / "v1").mkdir(parents=True)
    assert stored_path(models / "v1", models) == "v1"
    elsewhere = tmp_path / "elsewhere" / "v2"
    assert stored_path(elsewhere, models) == str(elsewhere.resolve())


def test_located_follows_the_models_folder(tmp_path: Path):
    old, new = tmp_path / "old" / "models", tmp_path / "new" / "models"
    (new / "v1").mkdir(parents=True)
    assert located(record("v1", "v1"), new) == new / "v1"
    # registered before paths were relative, then the data dir moved: found where it is now
    assert located(record("v1", str(old / "v1")), new) == new / "v1"
    # an absolute path outside the models folder that exists is kept
    (tmp_path / "kept").mkdir()
    assert located(record("v9", str(tmp_path / "kept")), new) == tmp_path / "kept"
    # gone everywhere: the recorded path (the error then names it)
    assert located(record("v8", str(old / "v8")), new) == old / "v8"
