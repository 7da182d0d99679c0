"""The one model lifecycle on its own: injected build and load steps, a real registry, the gate deciding."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch

from storage.repository import Repository
from training.calibration import DecisionPolicy
from training.data import Example
from training.feedback import FeedbackDataset, TrustPolicy, build_dataset
from training.gate import GatePolicy
from training.model import IntentModel
from training.pipeline import REPORT_DIR, Pipeline, one_line

from .conftest import tiny_examples

EVAL = [
    Example(text, label)
    for text, label in (
        ("I forgot my password", "reset_password"),
        ("My card has not arrived yet", "card_arrival"),
        ("I want a refund", "refund"),
        ("What are your opening hours?", "opening_hours"),
    )
]


@pytest.fixture
def repo(tmp_path: Path) -> Iterator[Repository]:
    with Repository(f"sqlite:///{tmp_path / 'registry.db'}") as store:
        yield store


def dataset() -> FeedbackDataset:
    return build_dataset(
        tiny_examples(), [], eval_existing=[], eval_seed=EVAL, eval_share=0.2, policy=TrustPolicy(True, 0.8)
    )


class Builds:
    """A build step that copies the session's tiny model into the version directory (optionally scrambled)."""

    def __init__(self, trained_dir: Path) -> None:
        self.trained_dir = trained_dir
        self.scramble = False
        self.calls: list[dict[str, Any]] = []

    def __call__(self, models_dir: str | Path, version: str, **kwargs: Any) -> Path:
        self.calls.append({"version": version, **kwargs})
        target = Path(models_dir) / version
        model = IntentModel.load(self.trained_dir, device="cpu")
        if self.scramble:  # a bad trainer: every intent's class vector moved to another intent
            with torch.no_grad():
                model.head.weight.copy_(model.head.weight.roll(1, dims=0))
        model.info = {**model.info, "version": version}
        model.save(target / "model")
        return target


def load(path: str | Path) -> IntentModel:
    return IntentModel.load(Path(path) / "model", device="cpu")


def pipeline(repo: Repository, tmp_path: Path, build: Builds, lines: list[str]) -> Pipeline:
    return Pipeline(
        repo,
        models_dir=tmp_path / "models",
        build=build,
        load=load,
        gate=GatePolicy(),
        operating=lambda share: DecisionPolicy(oos_share=share if share is not None else 0.3),
        progress=False,
        echo=lines.append,
    )


@pytest.mark.slow
def test_first_candidate_is_promoted_then_a_worse_one_is_rejected(repo: Repository, tmp_path: Path, trained_dir: Path):
    build, lines = Builds(trained_dir), []
    lifecycle = pipeline(repo, tmp_path, build, lines)

    run = repo.start_training_run(trigger="bootstrap")
    first = lifecycle.candidate(run, "v1", None, dataset(), ["doc"], build_config(), {})
    assert (first.status, first.production, first.previous) == ("promoted", "v1", None)
    production = repo.production_model()
    assert production is not None and production.version == "v1" and production.metrics["gate"] == "promote"
    assert (
        first.report_path or Path()
    ).is_file() and first.report_path == tmp_path / "models" / "v1" / REPORT_DIR / "report.md"
    assert [(r.trigger, r.status, r.candidate_version) for r in repo.training_runs()] == [
        ("bootstrap", "promoted", "v1")
    ]
    assert build.calls[0]["kb_documents"] == ["doc"] and build.calls[0]["val_examples"] is None
    assert any("frozen evaluation set: 4 new examples" in line for line in lines)
    assert "train_s" in lifecycle.timings and "eval_s" in lifecycle.timings

    build.scramble = True
    run = repo.start_training_run(trigger="cli")
    second = lifecycle.candidate(run, "v2", production, dataset(), [], build_config(), {})
    assert (second.status, second.production, second.previous) == ("rejected", "v1", "v1")
    assert second.decision is not None and not second.decision.promote and second.decision.reasons
    assert repo.production_model().version == "v1"  # type: ignore[union-attr]
    rejected = repo.get_model("v2")
    assert rejected is not None and rejected.status == "rejected"
    assert second.metrics["candidate"]["accuracy"] < second.metrics["production"]["accuracy"]
    # the run keeps what customers got from each model and every failed check with its numbers
    stored = repo.training_runs()[0].metrics
    assert sum(stored["candidate"]["outcomes"].values()) == stored["candidate"]["eval_examples"]
    failed = [check for check in stored["checks"] if not check["passed"]]
    assert failed and all(check["detail"] for check in failed)
    assert [r.status for r in repo.training_runs()] == ["rejected", "promoted"]


def build_config() -> Any:
    from training.config import TrainingConfig

    return TrainingConfig(base_model="-")


@pytest.mark.slow
def test_an_unloadable_production_is_noted_not_compared(repo: Repository, tmp_path: Path, trained_dir: Path):
    build, lines = Builds(trained_dir), []
    lifecycle = pipeline(repo, tmp_path, build, lines)
    gone = tmp_path / "gone"
    shutil.copytree(trained_dir, gone / "model")
    (gone / "model" / "supportbot.json").unlink()
    old = repo.register_model("v0", path=str(gone), metrics={}, dataset_hash="x" * 64, status="production")
    result = lifecycle.candidate(repo.start_training_run(trigger="cli"), "v1", old, dataset(), [], build_config(), {})
    assert result.status == "promoted"
    assert any("production v0 cannot be loaded" in reason for reason in result.metrics["reasons"])


def test_one_line():
    assert one_line(ValueError("a\n  b")) == "a b"
    assert one_line(KeyError()) == "KeyError"
