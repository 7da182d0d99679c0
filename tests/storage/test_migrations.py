"""Migrations: from empty, from revision 0001 with data, schema identical to the models, bad states."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlmodel import SQLModel

from storage.db import current_revision, head_revision, make_engine, upgrade
from storage.errors import StorageError
from storage.models import UTCDateTime
from storage.repository import Repository

ALL_TABLES = {
    "alembic_version",
    "conversations",
    "messages",
    "answers",
    "inbox",
    "ratings",
    "handoffs",
    "model_versions",
    "training_runs",
    "eval_examples",
    "review_items",
    "proposals",
    "postings",
}


def _tables(url: str) -> set[str]:
    engine = make_engine(url)
    try:
        return set(sa.inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_upgrade_from_empty_creates_every_table_and_is_idempotent(empty_db_url: str) -> None:
    assert current_revision(empty_db_url) is None
    assert upgrade(empty_db_url) == (None, head_revision())
    assert _tables(empty_db_url) == ALL_TABLES
    assert upgrade(empty_db_url) == (head_revision(), head_revision())


def test_head_is_the_fifth_revision() -> None:
    assert head_revision() == "0005"


def _insert(connection: sa.Connection, table: str, **values: object) -> None:
    """Insert one row with plain SQL (the models describe the newest schema, not revision 0001)."""

    def column(name: str, value: object) -> sa.ColumnClause[object]:
        if isinstance(value, datetime):
            return sa.column(name, UTCDateTime())
        return sa.column(name, sa.JSON()) if isinstance(value, list) else sa.column(name)

    target = sa.table(table, *(column(name, value) for name, value in values.items()))
    connection.execute(sa.insert(target).values(**values))


def test_upgrade_from_0001_keeps_the_data(empty_db_url: str) -> None:
    assert upgrade(empty_db_url, "0001") == (None, "0001")
    assert "model_versions" not in _tables(empty_db_url)
    when = datetime(2024, 5, 1, 12, 30, 15, 123456, tzinfo=UTC)
    engine = make_engine(empty_db_url)
    with engine.begin() as connection:
        _insert(connection, "conversations", id=1, team_id="T", channel_id="C", thread_ts="1.1", started_by="U1",
                source="slack", created_at=when, last_activity_at=when)  # fmt: skip
        _insert(connection, "messages", id=1, conversation_id=1, role="user", user_id="U1",
                text="where is my order?", event_id="E1", created_at=when)  # fmt: skip
        _insert(connection, "answers", id=1, conversation_id=1, question_id=1, text="It ships tomorrow.",
                source="intent", intent="order_status", confidence=0.93, doc_ids=["faq#3"], doc_scores=[0.7],
                status="posted", created_at=when)  # fmt: skip
        _insert(connection, "ratings", id=1, answer_id=1, rater_id="U9", rater_role="agent", helpful=True,
                source="button", created_at=when)  # fmt: skip
    engine.dispose()

    assert upgrade(empty_db_url) == ("0001", head_revision())

    repo = Repository(empty_db_url)
    try:
        [message] = repo.messages(1)
        assert (message.text, message.event_id, message.created_at) == ("where is my order?", "E1", when)
        answer = repo.get_answer(1)
        assert answer is not None
        assert (answer.intent, answer.confidence, answer.model_version, answer.doc_ids, answer.doc_scores) == (
            "order_status",
            0.93,
            None,
            ["faq#3"],
            [0.7],
        )
        assert [r.helpful for r in repo.ratings(1)] == [True]
        # The new tables work, and the old foreign keys still cascade.
        repo.register_model("v1", path="/m/v1", metrics={}, dataset_hash="h", status="production")
        assert repo.purge_older_than(datetime(2025, 1, 1, tzinfo=UTC)) == {
            "conversations": 1,
            "messages": 1,
            "answers": 1,
            "ratings": 1,
            "handoffs": 0,
            "proposals": 0,
        }
    finally:
        repo.close()


def test_upgrade_from_0002_keeps_the_newest_verdict_of_each_rater(empty_db_url: str) -> None:
    assert upgrade(empty_db_url, "0002") == (None, "0002")
    when = datetime(2024, 5, 1, 12, 30, tzinfo=UTC)
    engine = make_engine(empty_db_url)
    with engine.begin() as connection:
        _insert(connection, "conversations", id=1, team_id="T", channel_id="C", thread_ts="1.1", started_by="U1",
                source="slack", created_at=when, last_activity_at=when)  # fmt: skip
        _insert(connection, "messages", id=1, conversation_id=1, role="user", text="q", created_at=when)
        _insert(connection, "answers", id=1, conversation_id=1, question_id=1, text="a", source="intent",
                doc_ids=[], doc_scores=[], status="posted", created_at=when)  # fmt: skip
        for id_, rater, source, helpful in [
            (1, "U1", "reaction", True),
            (2, "U1", "reaction", True),  # two identical reactions that raced
            (3, "U1", "cli", True),
            (4, "U1", "cli", False),  # `+` then `-` in the terminal
            (5, "U9", "modal", False),
            (6, "U9", "modal", False),  # corrections are kept, every one
            (7, "U2", "button", True),
        ]:
            _insert(connection, "ratings", id=id_, answer_id=1, rater_id=rater, rater_role="customer",
                    helpful=helpful, source=source, created_at=when)  # fmt: skip
    engine.dispose()

    assert upgrade(empty_db_url) == ("0002", head_revision())
    with Repository(empty_db_url) as repo:
        assert sorted((r.id, r.rater_id, r.source, r.helpful) for r in repo.ratings(1)) == [
            (2, "U1", "reaction", True),
            (4, "U1", "cli", False),
            (5, "U9", "modal", False),
            (6, "U9", "modal", False),
            (7, "U2", "button", True),
        ]
        assert repo.set_rating(1, rater_id="U1", rater_role="customer", helpful=True, source="reaction") is False


def test_migrated_schema_matches_the_models(db_url: str) -> None:
    engine = make_engine(db_url)
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            assert compare_metadata(context, SQLModel.metadata) == []
    finally:
        engine.dispose()


def test_one_production_index_exists_in_the_migrated_schema(db_url: str) -> None:
    engine = make_engine(db_url)
    try:
        indexes = {index["name"]: index for index in sa.inspect(engine).get_indexes("model_versions")}
    finally:
        engine.dispose()
    assert indexes["uq_model_versions_one_production"]["unique"]


def test_database_from_a_newer_supportbot_is_reported(empty_db_url: str) -> None:
    upgrade(empty_db_url)
    engine = make_engine(empty_db_url)
    with engine.begin() as connection:
        connection.execute(sa.text("UPDATE alembic_version SET version_num = '9999'"))
    engine.dispose()
    with pytest.raises(StorageError, match="newer supportbot"):
        Repository(empty_db_url)
