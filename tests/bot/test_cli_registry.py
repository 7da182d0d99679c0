"""`supportbot model list | show | promote | rollback` on a registry of fake versions (no model is trained).

Loading is checked for real where it must fail (a directory that is not a version); where a version must load,
`load_registered` is replaced by a stand-in, since the real end-to-end promotion and rollback are covered by
tests/bot/test_retrain.py.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bot.cli import app
from bot.settings import Settings
from storage.errors import StorageError
from storage.repository import Repository
from tests.factories import settings_for
from training.locations import located

T0 = datetime(2026, 3, 1, 2, 15, tzinfo=UTC)


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    current = settings_for(tmp_path / "data")
    monkeypatch.setattr("bot.cli.registry.settings", lambda: current)
    return current


@pytest.fixture
def repo(settings: Settings) -> Iterator[Repository]:
    with Repository(settings.db_url) as store:
        yield store


@pytest.fixture
def loads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every version directory loads; returns the paths that were checked."""
    checked: list[str] = []
    monkeypatch.setattr(
        "bot.versions.load_registered",
        lambda record, models_dir, **_: checked.append(str(located(record, models_dir))),
    )
    return checked


def add_version(
    repo: Repository, settings: Settings, version: str, day: int, *, accuracy: float | None = 0.9, on_disk: bool = True
) -> Path:
    path = settings.models_dir / version
    if on_disk:
        (path / "report").mkdir(parents=True)
        (path / "report" / "report.md").write_text("# report\n")
    metrics: dict[str, object] = {"validation": {"accuracy": 0.8}}
    if accuracy is not None:
        metrics |= {"accuracy": accuracy, "macro_f1": accuracy - 0.05, "per_intent_f1": {"a": 0.5, "b": 0.9}}
    repo.register_model(
        version, path=str(path), metrics=metrics, dataset_hash=f"hash-{version}", created_at=T0 + timedelta(days=day)
    )
    return path


def cli(*args: str) -> tuple[int, str, BaseException | None]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.output, result.exception


def history(repo: Repository, settings: Settings) -> None:
    """v1 and v2 were production in turn (v2 now), v3 was rejected by the gate, v0 was pruned."""
    add_version(repo, settings, "v0", 0, on_disk=False)
    add_version(repo, settings, "v1", 1, accuracy=None)
    add_version(repo, settings, "v2", 2, accuracy=0.934)
    add_version(repo, settings, "v3", 3, accuracy=0.5)
    for version in ("v0", "v1", "v2"):
        repo.promote(version)
    repo.set_model_status("v3", "rejected")


def test_list_empty(settings: Settings) -> None:
    code, output, _ = cli("model", "list")
    assert code == 0 and "no model versions yet" in output


def test_list_shows_every_version_newest_first(repo: Repository, settings: Settings) -> None:
    history(repo, settings)
    code, output, _ = cli("model", "list")
    assert code == 0, output
    lines = [line.split() for line in output.splitlines()[1:]]
    assert [line[0] for line in lines] == ["v3", "v2", "v1", "v0"]
    assert [line[1] for line in lines] == ["rejected", "production", "retired", "retired"]
    assert lines[1][4:7] == ["0.934", "0.884", "yes"]
    assert "0.800 (val)" in output  # v1 was never evaluated on the frozen set: its validation accuracy
    assert lines[3][-1] == "pruned"


def test_show(repo: Repository, settings: Settings) -> None:
    history(repo, settings)
    run = repo.start_training_run(trigger="cron")
    assert run.id is not None
    repo.finish_training_run(run.id, status="promoted", candidate_version="v2", metrics={"reasons": ["not worse"]})
    code, output, _ = cli("model", "show", "v2")
    assert code == 0, output
    assert "status:        production" in output
    assert "dataset hash:  hash-v2" in output
    assert f"path:          {settings.models_dir / 'v2'}" in output
    assert f"report:        {settings.models_dir / 'v2' / 'report' / 'report.md'}" in output
    assert "accuracy:" in output and "0.9340" in output
    assert "lowest per-intent F1: a 0.500, b 0.900" in output
    assert f"training run:  #{run.id} (cron, promoted)\n  - not worse" in output

    code, output, _ = cli("model", "show", "v2", "--json")
    entry = json.loads(output)
    assert entry["version"] == "v2" and entry["report_path"].endswith("report.md")


def test_show_unknown_version(settings: Settings) -> None:
    code, _, exc = cli("model", "show", "v9")
    assert code == 1 and isinstance(exc, StorageError) and "model list" in str(exc)


def test_promote_refuses_a_version_that_does_not_load(repo: Repository, settings: Settings) -> None:
    history(repo, settings)  # v3's directory holds only a report: not a version
    code, output, _ = cli("model", "promote", "v3")
    assert code == 1
    assert "v3 does not load, not promoted" in output
    production = repo.production_model()
    assert production is not None and production.version == "v2"


def test_promote(repo: Repository, settings: Settings, loads: list[str]) -> None:
    history(repo, settings)
    code, output, _ = cli("model", "promote", "v3")
    assert code == 0, output
    assert "production is now v3 (was v2)" in output
    assert loads == [str(settings.models_dir / "v3")]
    assert {m.version: m.status for m in repo.models()} == {
        "v3": "production",
        "v2": "retired",
        "v1": "retired",
        "v0": "retired",
    }
    code, output, _ = cli("model", "promote", "v3")
    assert code == 0 and "already in production" in output


def test_rollback_walks_back_through_production_versions(
    repo: Repository, settings: Settings, loads: list[str]
) -> None:
    history(repo, settings)
    code, output, _ = cli("model", "rollback")
    assert code == 0, output
    assert "production is now v1 (was v2)" in output
    code, output, _ = cli("model", "rollback")
    assert code == 0 and "production is now v0 (was v1)" in output
    code, _, exc = cli("model", "rollback")
    assert code == 1 and isinstance(exc, StorageError) and "nothing to roll back to" in str(exc)
    production = repo.production_model()
    assert production is not None and production.version == "v0"


def test_rollback_refuses_a_pruned_version(repo: Repository, settings: Settings) -> None:
    history(repo, settings)
    repo.promote("v1")  # now v1 is production; the previous one (v0) is no longer on disk
    code, output, _ = cli("model", "rollback")
    assert code == 1 and "v0 does not load, not promoted" in output


def test_previous_production_ignores_rejected_and_newer_versions(repo: Repository, settings: Settings) -> None:
    history(repo, settings)
    by_name = {m.version: m for m in repo.models()}
    previous = repo.previous_production(by_name["v2"])
    assert previous is not None and previous.version == "v1"
    assert repo.previous_production(by_name["v0"]) is None
    newest_retired = repo.previous_production()  # production (v2) by default
    assert newest_retired is not None and newest_retired.version == "v1"
