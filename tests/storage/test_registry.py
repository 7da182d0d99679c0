"""Model registry, training runs and the frozen evaluation set, on both databases."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
import sqlalchemy as sa

from storage.db import make_engine
from storage.errors import StorageError
from storage.repository import Repository

T0 = datetime(2024, 5, 1, 9, 0, tzinfo=UTC)


def _register(repo: Repository, version: str, minutes: int = 0, status: str = "candidate") -> None:
    repo.register_model(
        version,
        path=f"/models/{version}",
        metrics={"accuracy": 0.9},
        dataset_hash="abc",
        status=status,
        created_at=T0 + timedelta(minutes=minutes),
    )


def _statuses(repo: Repository) -> dict[str, str]:
    return {model.version: model.status for model in repo.models()}


# --- model registry ----------------------------------------------------------------------------------
def test_models_round_trip_newest_first(repo: Repository) -> None:
    _register(repo, "v2", minutes=2)
    _register(repo, "v1", minutes=1)
    _register(repo, "v3", minutes=3)
    assert [m.version for m in repo.models()] == ["v3", "v2", "v1"]
    model = repo.get_model("v2")
    assert model is not None
    assert (model.path, model.metrics, model.dataset_hash, model.status, model.created_at, model.promoted_at) == (
        "/models/v2",
        {"accuracy": 0.9},
        "abc",
        "candidate",
        T0 + timedelta(minutes=2),
        None,
    )
    assert repo.get_model("v9") is None
    assert repo.production_model() is None


def test_registering_a_version_twice_is_refused(repo: Repository) -> None:
    _register(repo, "v1")
    with pytest.raises(StorageError, match="'v1' is already registered"):
        _register(repo, "v1")
    with pytest.raises(StorageError, match="status must be one of"):
        _register(repo, "v2", status="live")


def test_promote_leaves_exactly_one_production(repo: Repository) -> None:
    for number in (1, 2, 3):
        _register(repo, f"v{number}", minutes=number)
    promoted = repo.promote("v1")
    assert promoted.status == "production" and promoted.promoted_at is not None
    repo.promote("v2")
    assert _statuses(repo) == {"v1": "retired", "v2": "production", "v3": "candidate"}
    production = repo.production_model()
    assert production is not None and production.version == "v2"
    assert repo.promote("v2").status == "production"  # idempotent
    repo.promote("v1")  # roll back to a retired version
    assert _statuses(repo) == {"v1": "production", "v2": "retired", "v3": "candidate"}
    with pytest.raises(StorageError, match="no model version 'v9'"):
        repo.promote("v9")


def test_registering_as_production_promotes_at_once(repo: Repository) -> None:
    _register(repo, "v1", status="production")
    _register(repo, "v2", status="production", minutes=1)
    assert _statuses(repo) == {"v1": "retired", "v2": "production"}


def test_the_database_itself_refuses_a_second_production(repo: Repository, db_url: str) -> None:
    _register(repo, "v1", status="production")
    _register(repo, "v2")
    engine = make_engine(db_url)
    try:
        with pytest.raises(sa.exc.IntegrityError), engine.begin() as connection:
            connection.execute(sa.text("UPDATE model_versions SET status = 'production' WHERE version = 'v2'"))
    finally:
        engine.dispose()


def test_set_model_status(repo: Repository) -> None:
    _register(repo, "v1")
    repo.set_model_status("v1", "rejected")
    assert _statuses(repo) == {"v1": "rejected"}
    with pytest.raises(StorageError, match="use promote"):
        repo.set_model_status("v1", "production")
    with pytest.raises(StorageError, match="status must be one of"):
        repo.set_model_status("v1", "deleted")
    with pytest.raises(StorageError, match="no model version 'v9'"):
        repo.set_model_status("v9", "retired")


def test_metrics_are_stored_as_plain_json(repo: Repository) -> None:
    metrics = {
        "f1": np.float32(0.5),
        "support": np.int64(7),
        "per_intent": {"greet": float("nan"), "bye": float("inf")},
        "curve": np.array([0.25, 0.5]),
        "labels": ("a", "b"),
    }
    repo.register_model("v1", path="/m", metrics=metrics, dataset_hash="h")
    model = repo.get_model("v1")
    assert model is not None
    assert model.metrics == {
        "f1": 0.5,
        "support": 7,
        "per_intent": {"greet": None, "bye": None},
        "curve": [0.25, 0.5],
        "labels": ["a", "b"],
    }
    with pytest.raises(StorageError, match="cannot be stored as JSON"):
        repo.register_model("v2", path="/m", metrics={"when": object()}, dataset_hash="h")


# --- training runs -------------------------------------------------------------------------------------
def test_training_runs(repo: Repository) -> None:
    first = repo.start_training_run(trigger="cron")
    second = repo.start_training_run(trigger="cli")
    assert first.id is not None and second.id is not None
    assert (first.status, first.finished_at) == ("running", None)
    finished = repo.finish_training_run(
        first.id,
        status="rejected",
        candidate_version="v2",
        metrics={"accuracy": 0.8},
        report_path="/r/1.html",
    )
    assert finished.status == "rejected" and finished.finished_at is not None
    again = repo.finish_training_run(first.id, status="failed", error="Traceback ...")
    assert again.metrics == {"accuracy": 0.8}  # metrics=None keeps the stored metrics
    runs = repo.training_runs()
    assert [run.id for run in runs] == [second.id, first.id]
    assert (runs[1].status, runs[1].error, runs[1].candidate_version) == ("failed", "Traceback ...", None)
    assert [run.id for run in repo.training_runs(limit=1)] == [second.id]
    with pytest.raises(StorageError, match="no training run with id 999"):
        repo.finish_training_run(999, status="failed")


# --- frozen evaluation set -------------------------------------------------------------------------
def test_eval_examples_are_deduplicated_by_normalised_text(repo: Repository) -> None:
    added = repo.add_eval_examples(
        [
            ("How do I reset my password?", "reset_password", "seed"),
            ("how do i  RESET my password?", "reset_password", "seed"),  # same text, other spacing/case
            ("Where is my order? mail jo@example.com", "order_status", "log"),
            ("   ", "blank", "log"),
        ]
    )
    assert added == 2
    assert repo.add_eval_examples([("HOW DO I RESET MY PASSWORD?", "x", "log"), ("Cancel it", "cancel", "log")]) == 1
    assert repo.add_eval_examples([]) == 0
    examples = repo.eval_examples()
    assert [(e.text, e.label, e.origin) for e in examples] == [
        ("How do I reset my password?", "reset_password", "seed"),
        ("Where is my order? mail [EMAIL]", "order_status", "log"),
        ("Cancel it", "cancel", "log"),
    ]


def test_many_eval_examples_at_once(repo: Repository) -> None:
    rows = [(f"question number {i}", f"label{i % 7}", "seed") for i in range(1200)]
    assert repo.add_eval_examples(rows) == 1200
    assert repo.add_eval_examples(rows[:10] + [("one more", "x", "log")]) == 1
    assert len(repo.eval_examples()) == 1201
