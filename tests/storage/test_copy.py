"""`storage.copy.copy_store`: a whole store into another database (SQLite -> SQLite, SQLite -> PostgreSQL), every
row equal, ids kept, sequences moved on; refused for a non-empty target or an old source, nothing half-copied."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select, text
from sqlmodel import SQLModel

from storage import copy as store_copy
from storage.copy import copy_store
from storage.db import make_engine, upgrade
from storage.errors import StorageError
from storage.repository import NewReviewItem, Repository
from tests.factories import answered_question, correct, new_answer, rate
from training.locations import located

TABLES = [table.name for table in SQLModel.metadata.sorted_tables]
ODD_FLOAT = 0.1 + 0.2  # 0.30000000000000004: survives only an exact round trip


@pytest.fixture
def source_url(sqlite_url: str, tmp_path: Path) -> str:
    """A migrated, empty SQLite store of its own (the `sqlite_url` file may be the target)."""
    path = tmp_path / "source" / "supportbot.db"
    path.parent.mkdir()
    shutil.copyfile(sqlite_url.removeprefix("sqlite:///"), path)
    return f"sqlite:///{path}"


def _fill(url: str) -> None:
    """One of each row: conversation, question, answers (one with NULLs), ratings, hand-off, eval example, model
    versions (one in production), a finished training run, an inbox item, a queued question, a proposal and a
    posting."""
    with Repository(url) as repo:
        logged = answered_question(
            repo,
            "how do I reset my password?",
            new_answer(confidence=ODD_FLOAT, doc_ids=["kb/reset.md"], doc_scores=[ODD_FLOAT, 1e-300]),
            event_id="Ev1",
            asked_at=datetime(2024, 3, 1, 12, 30, 15, 123456, tzinfo=UTC),
            posted_ts="1700000000.000100",
            handoff="abstained",
        )
        unsure = answered_question(repo, "hmm", new_answer("Sorry?", source="clarify", intent=None, confidence=None))
        rate(repo, logged.answer_id, True)
        rate(repo, unsure.answer_id, False, source="reaction")
        correct(repo, unsure.answer_id, "reset_password", answer="Use the link.")
        repo.add_eval_examples([("reset my password", "reset_password", "seed")])
        metrics = {"accuracy": ODD_FLOAT, "per_intent": {"greet": [1, 0.5]}, "missing": None, "ok": True}
        repo.register_model("v1", path="v1", metrics={"accuracy": 0.5}, dataset_hash="a" * 64)
        repo.register_model("v2", path="v2", metrics=metrics, dataset_hash="b" * 64, status="production")
        run = repo.start_training_run(trigger="cron")
        assert run.id is not None
        repo.finish_training_run(run.id, status="promoted", candidate_version="v2", metrics=metrics)
        repo.accept("Ev2", "question", {"channel": "C1", "n": ODD_FLOAT, "flag": False}, worker="w1", lease_s=30)
        repo.replace_review_queue(
            [NewReviewItem(logged.answer_id, ODD_FLOAT, [("reset_password", ODD_FLOAT)], ["close call"])],
            model_version="v2",
        )
        repo.add_proposal([logged.answer_id, unsure.answer_id], ["hmm"], cohesion=ODD_FLOAT, nearest_intent=None)
        repo.record_posting("digest:2024-03-01", channel_id="C9", slack_ts="1.2", content={"questions": 2})


def _dump(url: str) -> dict[str, list[dict[str, Any]]]:
    """Every row of every table, as column -> value, in id order."""
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            return {
                table.name: [dict(row._mapping) for row in connection.execute(select(table).order_by(table.c.id))]
                for table in SQLModel.metadata.sorted_tables
            }
    finally:
        engine.dispose()


def test_copy_keeps_every_row_and_id(source_url: str, empty_db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(store_copy, "CHUNK_ROWS", 2)  # several chunks per table
    _fill(source_url)
    seen: list[tuple[str, int]] = []

    counts = copy_store(source_url, empty_db_url, echo=lambda table, rows: seen.append((table, rows)))

    before, after = _dump(source_url), _dump(empty_db_url)
    assert list(counts) == TABLES and seen == list(counts.items())
    assert counts == {name: len(rows) for name, rows in before.items()}
    assert all(counts.values()) and counts["messages"] == 3 and counts["ratings"] == 3
    assert after == before
    answer = after["answers"][0]
    assert answer["confidence"] == ODD_FLOAT and answer["doc_scores"] == [ODD_FLOAT, 1e-300]
    assert after["answers"][1]["confidence"] is None and after["answers"][1]["intent"] is None
    assert [r["helpful"] for r in after["ratings"]] == [True, False, False]
    assert after["messages"][0]["created_at"] == datetime(2024, 3, 1, 12, 30, 15, 123456, tzinfo=UTC)
    assert all(row["created_at"].tzinfo == UTC for row in after["messages"])
    assert after["inbox"][0]["payload"] == {"channel": "C1", "n": ODD_FLOAT, "flag": False}


def test_the_copy_serves_the_same_registry_and_gives_new_rows_fresh_ids(
    source_url: str, empty_db_url: str, tmp_path: Path
) -> None:
    _fill(source_url)
    copy_store(source_url, empty_db_url)
    models_dir = tmp_path / "data" / "models"
    with Repository(source_url) as old, Repository(empty_db_url) as new:
        was, now = old.production_model(), new.production_model()
        assert was is not None and now is not None
        assert (now.id, now.version, now.path, now.metrics) == (was.id, was.version, was.path, was.metrics)
        assert (now.version, now.path, now.promoted_at) == ("v2", "v2", was.promoted_at)
        assert located(now, models_dir) == models_dir / "v2"
        assert new.previous_production() is None and [m.version for m in new.models()] == ["v2", "v1"]

        copied = _dump(empty_db_url)
        logged = answered_question(new, "another question", posted_ts="1700000001.000100", handoff="not_helpful")
        version = new.register_model("v3", path="v3", metrics={}, dataset_hash="c" * 64, status="production")
        assert new.accept("Ev3", "question", {}, worker="w1", lease_s=30) is not None
        assert logged.conversation_id == max(row["id"] for row in copied["conversations"]) + 1
        assert logged.question_id == max(row["id"] for row in copied["messages"]) + 1
        assert logged.answer_id == max(row["id"] for row in copied["answers"]) + 1
        assert version.id == max(row["id"] for row in copied["model_versions"]) + 1
    after = _dump(empty_db_url)
    assert after["handoffs"][-1]["id"] == copied["handoffs"][-1]["id"] + 1
    assert after["inbox"][-1]["id"] == copied["inbox"][-1]["id"] + 1


def test_an_empty_store_copies_and_the_target_starts_its_ids_at_1(source_url: str, empty_db_url: str) -> None:
    assert copy_store(source_url, empty_db_url) == dict.fromkeys(TABLES, 0)
    with Repository(empty_db_url) as repo:
        assert answered_question(repo).conversation_id == 1


def test_a_target_with_rows_is_refused_and_left_alone(source_url: str, db_url: str) -> None:
    _fill(source_url)
    with Repository(db_url) as repo:
        repo.add_eval_examples([("already here", "greet", "seed")])
    with pytest.raises(StorageError, match=r"is not empty \(1 eval_examples\): copy into a new or empty database"):
        copy_store(source_url, db_url)
    assert [row["text"] for row in _dump(db_url)["eval_examples"]] == ["already here"]
    assert sum(map(len, _dump(db_url).values())) == 1


def test_a_source_at_an_old_revision_is_refused_before_the_target_is_touched(tmp_path: Path) -> None:
    old = f"sqlite:///{tmp_path / 'old.db'}"
    upgrade(old, "0003")
    target = tmp_path / "new" / "supportbot.db"
    with pytest.raises(StorageError, match=r"is at revision 0003.*run `supportbot db upgrade` on the source"):
        copy_store(old, f"sqlite:///{target}")
    assert not target.parent.exists()


def test_a_missing_source_is_refused_and_not_created(tmp_path: Path) -> None:
    missing = tmp_path / "nothing" / "supportbot.db"
    with pytest.raises(StorageError, match="there is no SQLite database at"):
        copy_store(f"sqlite:///{missing}", f"sqlite:///{tmp_path / 'new.db'}")
    assert not missing.parent.exists() and not (tmp_path / "new.db").exists()


@pytest.mark.postgres
def test_a_value_postgresql_refuses_copies_nothing(source_url: str, pg_url: str) -> None:
    _fill(source_url)
    engine = make_engine(source_url)
    with engine.begin() as connection:  # SQLite takes a NUL character, PostgreSQL text does not
        connection.execute(text("UPDATE inbox SET text = :text"), {"text": "bad\x00text"})
    engine.dispose()

    with pytest.raises(StorageError, match="Nothing was copied"):
        copy_store(source_url, pg_url)

    engine = make_engine(pg_url)
    with engine.connect() as connection:
        rows = {name: connection.execute(select(func.count()).select_from(text(name))).scalar_one() for name in TABLES}
    engine.dispose()
    assert rows == dict.fromkeys(TABLES, 0)


@pytest.mark.postgres
def test_back_from_postgresql_to_sqlite(source_url: str, pg_url: str, tmp_path: Path) -> None:
    _fill(source_url)
    copy_store(source_url, pg_url)
    back = f"sqlite:///{tmp_path / 'back' / 'supportbot.db'}"
    copy_store(pg_url, back)
    assert _dump(back) == _dump(source_url)
