"""Engines: URL handling, SQLite pragmas, and the messages for unreachable or unusable databases."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from sqlalchemy import text

from storage.db import make_engine, parse_url, safe_url, upgrade
from storage.errors import StorageError
from storage.repository import Repository


def test_sqlite_engine_creates_the_directory_and_sets_wal_foreign_keys_and_busy_timeout(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "supportbot.db"
    engine = make_engine(f"sqlite:///{path}", busy_timeout_s=7)
    try:
        with engine.connect() as connection:
            assert connection.execute(text("PRAGMA journal_mode")).scalar() == "wal"
            assert connection.execute(text("PRAGMA foreign_keys")).scalar() == 1
            assert connection.execute(text("PRAGMA busy_timeout")).scalar() == 7000
    finally:
        engine.dispose()
    assert path.exists()


def test_in_memory_sqlite_keeps_one_database_across_connections() -> None:
    repo = Repository("sqlite://")
    conversation = repo.get_or_create_conversation(team_id="T", channel_id="C", thread_ts="1", started_by=None)
    found = repo.find_conversation(team_id="T", channel_id="C", thread_ts="1")
    assert found is not None and found.id == conversation.id
    assert repo.production_model() is None  # a third connection still reaches the same database
    repo.close()


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("postgresql://u:p@h/db", "postgresql+psycopg"),
        ("postgres://u:p@h/db", "postgresql+psycopg"),
        ("postgresql+psycopg://u:p@h/db", "postgresql+psycopg"),
        ("sqlite:///x.db", "sqlite"),
    ],
)
def test_postgres_urls_use_psycopg3(url: str, expected: str) -> None:
    assert parse_url(url).drivername == expected


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("mysql://u@h/db", "unsupported database URL scheme 'mysql'"),
        ("postgresql+psycopg2://u@h/db", "use postgresql+psycopg://"),
        ("not a url", "not a valid database URL"),
    ],
)
def test_unsupported_urls_are_refused_with_what_to_use(url: str, message: str) -> None:
    with pytest.raises(StorageError, match=re.escape(message)) as raised:
        make_engine(url)
    assert "sqlite:///" in str(raised.value) or "psycopg" in str(raised.value)


def test_safe_url_hides_the_password() -> None:
    shown = safe_url("postgresql+psycopg://bot:s3cret@db.example.com:5432/supportbot")
    assert "s3cret" not in shown and "bot:***@db.example.com" in shown


def test_unreachable_postgres_says_what_to_check_without_the_password() -> None:
    url = "postgresql+psycopg://bot:s3cret@127.0.0.1:1/supportbot"
    with pytest.raises(StorageError) as raised:
        Repository(url)
    message = str(raised.value)
    assert message.startswith("cannot reach the database at postgresql+psycopg://bot:***@127.0.0.1:1/supportbot")
    assert "check DATABASE_URL / is PostgreSQL running?" in message
    assert "s3cret" not in message


def test_sqlite_under_a_file_is_refused(tmp_path: Path) -> None:
    blocker = tmp_path / "file.txt"
    blocker.write_text("x")
    with pytest.raises(StorageError, match="not a directory.*SUPPORTBOT_DATA_DIR or DATABASE_URL"):
        upgrade(f"sqlite:///{blocker / 'supportbot.db'}")


def test_sqlite_path_that_is_a_directory_is_refused(tmp_path: Path) -> None:
    with pytest.raises(StorageError, match="is a directory"):
        make_engine(f"sqlite:///{tmp_path}")


def test_repository_without_tables_says_to_run_db_upgrade(tmp_path: Path) -> None:
    repo = Repository(f"sqlite:///{tmp_path / 'x.db'}", upgrade=False)
    with pytest.raises(StorageError, match="supportbot db upgrade"):
        repo.messages(1)
    repo.close()
