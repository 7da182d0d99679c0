"""The runtime: first-run bootstrap, hot reload under load, refusing a broken version, an unreachable registry."""

from __future__ import annotations

import json
import shutil
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from bot import retrain, runtime, versions
from bot.retrain import bootstrap
from bot.runtime import ModelHolder, build_engine
from bot.settings import Settings
from bot.versions import MANIFEST_FILE, list_versions, read_manifest
from storage.errors import StorageError
from storage.repository import Repository
from tests.factories import settings_for
from training.config import FIRST_MODEL
from training.errors import ModelError

pytestmark = pytest.mark.slow

TINY = "v20260101-000000"


@dataclass(frozen=True)
class Bootstrapped:
    settings: Settings
    version: str
    path: Path
    messages: list[str]


def make_settings(data_dir: Path, tiny_files: tuple[Path, Path], **overrides: object) -> Settings:
    intents, kb = tiny_files
    return settings_for(
        data_dir,
        intents_file=intents,
        kb_dir=kb,
        database_url="",
        retrieval_min_score=0.45,
        reload_interval_s=0.2,
        calibration_twin=False,  # the faster calibration (the twin is tested in tests/training)
        **overrides,
    )


@pytest.fixture(scope="module")
def bootstrapped(tmp_path_factory: pytest.TempPathFactory, tiny_files: tuple[Path, Path]) -> Bootstrapped:
    """A fresh data dir on which `build_engine` trained (the first-run recipe), registered and promoted the first
    version; the tiny intents need only short texts."""
    settings = make_settings(tmp_path_factory.mktemp("fresh") / "data", tiny_files)
    assert not settings.data_dir.exists()
    messages: list[str] = []
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(retrain, "FIRST_MODEL", {**FIRST_MODEL, "max_length": 32})
        with build_engine(settings, watch=False, echo=messages.append, progress=False) as holder:
            version = holder.version
            assert version is not None
            assert holder.answer("I forgot my password").model_version == version
    return Bootstrapped(settings, version, settings.models_dir / version, messages)


def register(db_url: str, version: str, path: Path, *, status: str = "candidate") -> None:
    repo = Repository(db_url)
    try:
        repo.register_model(version, path=str(path), metrics={}, dataset_hash="x" * 64, status=status)
    finally:
        repo.close()


def promote(db_url: str, version: str) -> None:
    repo = Repository(db_url)
    try:
        repo.promote(version)
    finally:
        repo.close()


@pytest.fixture
def two_versions(bootstrapped: Bootstrapped, tiny_version: Path, tmp_path: Path) -> Iterator[Settings]:
    """Settings on a fresh registry where the bootstrapped version is production and the tiny one a candidate."""
    settings = bootstrapped.settings.model_copy(update={"database_url": f"sqlite:///{tmp_path / 'registry.db'}"})
    register(settings.db_url, bootstrapped.version, bootstrapped.path, status="production")
    register(settings.db_url, TINY, tiny_version)
    yield settings


def test_first_run_bootstraps_a_production_version(bootstrapped: Bootstrapped):
    assert list_versions(bootstrapped.settings.models_dir) == [bootstrapped.version]
    assert read_manifest(bootstrapped.path)["kb_documents"] == 3
    assert "First run" in bootstrapped.messages[0]
    assert "promoted to production" in bootstrapped.messages[-1]
    repo = Repository(bootstrapped.settings.db_url)
    try:
        production = repo.production_model()
        assert production is not None and production.version == bootstrapped.version
        assert production.path == bootstrapped.version  # relative to the models folder: the data dir can move
        runs = repo.training_runs()
        assert [(r.trigger, r.status, r.candidate_version) for r in runs] == [
            ("bootstrap", "promoted", bootstrapped.version)
        ]
    finally:
        repo.close()


def test_a_moved_data_dir_keeps_serving(bootstrapped: Bootstrapped, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    def no_training(*args: object, **kwargs: object) -> None:
        raise AssertionError("trained again")

    moved = tmp_path / "restored"
    shutil.copytree(bootstrapped.settings.data_dir, moved)
    monkeypatch.setattr(versions, "train", no_training)
    settings = bootstrapped.settings.model_copy(update={"supportbot_data_dir": moved})
    with build_engine(settings, watch=False) as holder:
        assert holder.version == bootstrapped.version
        assert holder.answer("I forgot my password").model_version == bootstrapped.version


def test_second_run_serves_without_training(bootstrapped: Bootstrapped, monkeypatch: pytest.MonkeyPatch):
    def no_training(*args: object, **kwargs: object) -> None:
        raise AssertionError("trained again")

    monkeypatch.setattr(versions, "train", no_training)
    with build_engine(bootstrapped.settings, watch=False) as holder:
        assert holder.version == bootstrapped.version
        assert holder.intents and "out_of_scope" not in holder.intents
        assert holder.model_info["version"] == bootstrapped.version
    # another process finished bootstrapping while this one waited for the lock: nothing to do
    result = bootstrap(bootstrapped.settings, progress=False)
    assert (result.status, result.production) == ("nothing_to_do", bootstrapped.version)


def test_failed_bootstrap_is_recorded_and_promotes_nothing(
    tmp_path: Path, tiny_files: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
):
    def broken(*args: object, **kwargs: object) -> None:
        raise ModelError("out of memory")

    monkeypatch.setattr(versions, "train", broken)
    settings = make_settings(tmp_path / "data", tiny_files)
    messages: list[str] = []
    with pytest.raises(ModelError, match="out of memory"):
        build_engine(settings, watch=False, echo=messages.append)
    assert "First run" in messages[0]
    repo = Repository(settings.db_url)
    try:
        assert repo.production_model() is None
        assert [(r.trigger, r.status, r.error) for r in repo.training_runs()] == [
            ("bootstrap", "failed", "ModelError: out of memory")
        ]
        assert not settings.models_dir.exists() or not list(settings.models_dir.iterdir())
    finally:
        repo.close()


def test_no_production_and_no_bootstrap_is_a_clear_error(tmp_path: Path, tiny_files: tuple[Path, Path]):
    settings = make_settings(tmp_path / "data", tiny_files)
    with pytest.raises(ModelError, match="no model in production"):
        build_engine(settings, bootstrap=False, watch=False)


def test_broken_production_version_at_start_is_a_clear_error(two_versions: Settings, tmp_path: Path):
    broken = tmp_path / "v-broken"
    broken.mkdir()
    (broken / MANIFEST_FILE).write_text(json.dumps({"version": "v-broken"}))
    register(two_versions.db_url, "v-broken", broken, status="production")
    with pytest.raises(ModelError, match="production model v-broken cannot be loaded.*rollback"):
        build_engine(two_versions, watch=False)


def test_hot_reload_while_answering(two_versions: Settings, bootstrapped: Bootstrapped):
    errors: list[BaseException] = []
    seen: list[str | None] = []
    stop = threading.Event()

    with build_engine(two_versions, watch=True) as holder:
        assert holder.version == bootstrapped.version

        def ask() -> None:
            while not stop.is_set():
                try:
                    answer = holder.answer("I forgot my password")
                    assert answer.text
                    seen.append(answer.model_version)
                except BaseException as exc:  # noqa: BLE001 - collected and asserted below
                    errors.append(exc)

        asker = threading.Thread(target=ask)
        asker.start()
        try:
            time.sleep(0.5)
            promote(two_versions.db_url, TINY)
            deadline = time.monotonic() + 120
            while holder.version != TINY and time.monotonic() < deadline:
                time.sleep(0.1)
            count = len(seen)
            while len(seen) < count + 3 and time.monotonic() < deadline:
                time.sleep(0.05)
        finally:
            stop.set()
            asker.join()
    assert errors == []
    assert holder.version == TINY
    assert seen[0] == bootstrapped.version and seen[-1] == TINY
    switched = seen.index(TINY)
    assert set(seen[:switched]) == {bootstrapped.version} and set(seen[switched:]) == {TINY}


def test_broken_version_is_refused_once_and_the_current_one_kept(
    two_versions: Settings, tmp_path: Path, bootstrapped: Bootstrapped, monkeypatch: pytest.MonkeyPatch
):
    holder: ModelHolder
    with build_engine(two_versions, watch=False) as holder:
        broken = tmp_path / "v-broken"
        broken.mkdir()
        (broken / MANIFEST_FILE).write_text(json.dumps({"version": "v-broken"}))  # no model, no index
        register(two_versions.db_url, "v-broken", broken, status="production")

        attempts: list[str] = []
        real_load = runtime.load_engine

        def counting_load(record, options, catalog):  # type: ignore[no-untyped-def]
            attempts.append(record.version)
            return real_load(record, options, catalog)

        monkeypatch.setattr(runtime, "load_engine", counting_load)
        assert holder.maybe_reload() is False
        assert holder.maybe_reload() is False  # remembered: not loaded again
        assert attempts == ["v-broken"]
        assert holder.version == bootstrapped.version
        assert "v-broken" in holder.model_info["refused_versions"]
        assert holder.answer("I forgot my password").model_version == bootstrapped.version

        promote(two_versions.db_url, TINY)  # a good version after the bad one is taken
        assert holder.maybe_reload() is True
        assert holder.version == TINY and attempts == ["v-broken", TINY]


def test_unreachable_registry_keeps_serving(
    two_versions: Settings, bootstrapped: Bootstrapped, monkeypatch: pytest.MonkeyPatch
):
    repo = Repository(two_versions.db_url)

    def down() -> None:
        raise StorageError("database is down")

    try:
        with build_engine(two_versions, repo, watch=False) as holder:
            monkeypatch.setattr(repo, "production_model", down)
            assert holder.maybe_reload() is False
            assert holder.model_info["registry_error"] == "StorageError: database is down"
            assert holder.answer("I forgot my password").model_version == bootstrapped.version

            monkeypatch.undo()
            promote(two_versions.db_url, TINY)
            assert holder.maybe_reload() is True
            assert holder.model_info["registry_error"] is None
    finally:
        repo.close()
