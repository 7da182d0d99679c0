"""Hostile and odd input is stored exactly (after the documented normalisation) or refused cleanly."""

from __future__ import annotations

import shutil
from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy import create_engine
from sqlalchemy.pool import NullPool

from storage.db import parse_url
from storage.errors import StorageError
from storage.repository import Repository, ThreadRef
from tests.factories import answered_question, new_answer

SQL_LOOKING = [
    "Robert'); DROP TABLE messages;--",
    "' OR '1'='1",
    '"; DELETE FROM conversations WHERE 1=1; --',
    "%s %(x)s ? :name $1 \\x00 \\",
    "SELECT * FROM answers /* comment */",
]
THREAD = ThreadRef("T", "C", "1")


def _conversation_id(repo: Repository) -> int:
    """The conversation of `THREAD` (opened if new)."""
    conversation = repo.get_or_create_conversation(
        team_id=THREAD.team_id, channel_id=THREAD.channel_id, thread_ts=THREAD.thread_ts, started_by="U1"
    )
    assert conversation.id is not None
    return conversation.id


def _stored(repo: Repository, text: str) -> str:
    """`text` as stored when a customer asks it in `THREAD` and the bot answers with it (the two must agree)."""
    logged = answered_question(repo, text, new_answer(text), thread=THREAD)
    [stored] = [m for m in repo.messages(logged.conversation_id) if m.id == logged.question_id]
    answer = repo.get_answer(logged.answer_id)
    assert answer is not None and answer.text == stored.text
    return stored.text


@pytest.mark.parametrize("text", SQL_LOOKING)
def test_sql_looking_text_is_stored_exactly(repo: Repository, text: str) -> None:
    assert _stored(repo, text) == text
    assert len(repo.messages(_conversation_id(repo))) == 1


def test_nul_bytes_are_removed_on_every_database(repo: Repository) -> None:
    assert _stored(repo, "before\x00after\x00") == "beforeafter"


def test_lone_surrogates_become_replacement_characters(repo: Repository) -> None:
    assert _stored(repo, "bad \ud800 pair \udc00 good \U0001f600") == "bad \ufffd pair \ufffd good \U0001f600"


def test_100_kb_of_text_round_trips(db_url: str) -> None:
    text = ("Ünïcödé ✓ question with 'quotes' and \"doubles\"\n\t" * 2100)[:100_000]
    with Repository(db_url, mask_pii=False) as repo:
        assert _stored(repo, text) == text


def test_100_kb_is_masked_too(repo: Repository) -> None:
    text = "write to jo@example.com please " * 3300
    stored = _stored(repo, text)
    assert "@" not in stored and stored.count("[EMAIL]") == 3300


def test_control_characters_and_scripts_survive(repo: Repository) -> None:
    text = "tab\tcr\r\nbell\x07 עברית العربية 中文 \u200b zero-width"
    assert _stored(repo, text) == text


def test_identifiers_are_cleaned_and_length_checked(repo: Repository) -> None:
    conversation_id = _conversation_id(repo)
    message = repo.add_message(conversation_id, role="user", text="x", user_id="U\x001", event_id="Ev\ud8001")
    assert (message.user_id, message.event_id) == ("U1", "Ev\ufffd1")
    with pytest.raises(StorageError, match=r"Message.user_id is 40 characters long but at most 32 fit"):
        repo.add_message(conversation_id, role="user", text="x", user_id="U" * 40)
    with pytest.raises(StorageError, match="Conversation.thread_ts"):
        repo.get_or_create_conversation(team_id="T", channel_id="C", thread_ts="9" * 33, started_by=None)


def test_json_lists_are_cleaned(repo: Repository) -> None:
    doc_ids, doc_scores = ["kb/a\x00.md", "kb/\ud800.md"], [float("nan"), 0.5]
    answer = new_answer("a", source="retrieval", intent=None, confidence=None, doc_ids=doc_ids, doc_scores=doc_scores)
    stored = repo.get_answer(answered_question(repo, "q", answer).answer_id)
    assert stored is not None
    assert (stored.doc_ids, stored.doc_scores) == (["kb/a.md", "kb/\ufffd.md"], [None, 0.5])


def test_naive_datetimes_are_refused(repo: Repository) -> None:
    with pytest.raises(StorageError, match="no time zone"):
        repo.add_message(_conversation_id(repo), role="user", text="x", created_at=datetime(2024, 5, 1))
    with pytest.raises(StorageError, match="answered_at 2024-05-01T00:00:00 has no time zone"):
        repo.record_question_turn(THREAD, user_id="U1", text="x", answer=new_answer(), answered_at=datetime(2024, 5, 1))
    assert repo.messages(_conversation_id(repo)) == []  # refused before anything was written


# --- the database going away -----------------------------------------------------------------------
def test_sqlite_vanishing_mid_session_raises_storage_error(sqlite_url: str) -> None:
    repo = Repository(sqlite_url)
    conversation_id = _conversation_id(repo)
    repo.close()  # the pool is emptied; the next call reconnects
    shutil.rmtree(Path(parse_url(sqlite_url).database or "").parent)
    with pytest.raises(StorageError, match="cannot use the SQLite database .* check DATABASE_URL"):
        repo.add_message(conversation_id, role="user", text="hello")


@pytest.mark.postgres
def test_postgres_going_away_mid_session_raises_storage_error(pg_url: str) -> None:
    repo = Repository(pg_url)
    conversation_id = _conversation_id(repo)
    repo.add_message(conversation_id, role="user", text="before")
    server = create_engine(parse_url(pg_url).set(database="postgres"), isolation_level="AUTOCOMMIT", poolclass=NullPool)
    with server.connect() as connection:  # kill our connections and remove the database under us
        connection.exec_driver_sql(f'DROP DATABASE "{parse_url(pg_url).database}" WITH (FORCE)')
    server.dispose()
    with pytest.raises(StorageError, match=r"cannot reach the database at .*check DATABASE_URL / is PostgreSQL"):
        repo.add_message(conversation_id, role="user", text="after")
    with pytest.raises(StorageError, match="cannot reach the database"):
        repo.production_model()
    repo.close()


@pytest.mark.postgres
def test_postgres_restarted_connections_are_replaced_transparently(pg_url: str) -> None:
    repo = Repository(pg_url)
    conversation_id = _conversation_id(repo)
    server = create_engine(parse_url(pg_url), isolation_level="AUTOCOMMIT", poolclass=NullPool)
    with server.connect() as connection:
        connection.exec_driver_sql(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
    server.dispose()
    repo.add_message(conversation_id, role="user", text="still works")  # pool_pre_ping reconnects
    assert [m.text for m in repo.messages(conversation_id)] == ["still works"]
    repo.close()
