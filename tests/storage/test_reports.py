"""Time-window queries: boundaries, ordering, statistics, no N+1, and index use."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, event

from storage.db import make_engine
from storage.errors import StorageError
from storage.repository import Repository
from tests.factories import answered_question, new_answer

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
MINUTE = timedelta(minutes=1)


def _rate(
    repo: Repository,
    answer_id: int,
    at: datetime,
    helpful: bool | None = True,
    rater: str = "U9",
    source: str = "button",
) -> None:
    repo.add_rating(answer_id, rater_id=rater, rater_role="agent", helpful=helpful, created_at=at, source=source)


def test_ratings_since_includes_the_boundary_and_all_ratings_of_each_answer(repo: Repository) -> None:
    before = answered_question(repo, "rated before only", asked_at=T0 - 10 * MINUTE).answer_id
    at_boundary = answered_question(repo, "rated at the boundary", asked_at=T0 - 9 * MINUTE).answer_id
    old_and_new = answered_question(repo, "rated before and after", asked_at=T0 - 8 * MINUTE).answer_id
    answered_question(repo, "never rated", asked_at=T0 + MINUTE)
    _rate(repo, before, T0 - MINUTE)
    _rate(repo, at_boundary, T0)
    _rate(repo, old_and_new, T0 - 5 * MINUTE, helpful=False, rater="U8")
    _rate(repo, old_and_new, T0 + 5 * MINUTE, helpful=None)

    rated = repo.ratings_since(T0)

    assert [item.answer.id for item in rated] == [at_boundary, old_and_new]  # oldest answer first
    assert rated[0].question.text == "rated at the boundary"
    assert rated[0].question.id == rated[0].answer.question_id
    assert [(r.rater_id, r.helpful) for r in rated[1].ratings] == [("U8", False), ("U9", None)]
    assert repo.ratings_since(T0 + 6 * MINUTE) == []


def test_answers_between_is_half_open_and_oldest_first(repo: Repository) -> None:
    ids = {minutes: answered_question(repo, asked_at=T0 + minutes * MINUTE).answer_id for minutes in (-1, 0, 5, 9, 10)}
    _rate(repo, ids[5], T0 + 20 * MINUTE, helpful=False)
    window = repo.answers_between(T0, T0 + 10 * MINUTE)
    assert [item.answer.id for item in window] == [ids[0], ids[5], ids[9]]
    assert [len(item.ratings) for item in window] == [0, 1, 0]
    assert repo.answers_between(T0 + 10 * MINUTE, T0 + 10 * MINUTE) == []


def test_stats_counts_the_window(repo: Repository) -> None:
    old = answered_question(repo, asked_at=T0 - MINUTE).answer_id
    _rate(repo, old, T0 - MINUTE, helpful=False)  # outside the window
    greet = answered_question(repo, answer=new_answer(intent="greet"), asked_at=T0).answer_id
    billing = answered_question(repo, answer=new_answer(intent="billing"), asked_at=T0 + MINUTE).answer_id
    retrieval = answered_question(
        repo, answer=new_answer(source="retrieval", intent=None), asked_at=T0 + 2 * MINUTE
    ).answer_id
    handoff = answered_question(repo, answer=new_answer(source="handoff", intent=None), asked_at=T0 + 3 * MINUTE)
    repo.record_handoff(
        handoff.conversation_id, answer_id=handoff.answer_id, reason="abstained", created_at=T0 + 3 * MINUTE
    )
    repo.add_message(handoff.conversation_id, role="bot", text="not a question", created_at=T0 + 4 * MINUTE)
    _rate(repo, greet, T0 + MINUTE, helpful=True)
    _rate(repo, greet, T0 + MINUTE, helpful=False, rater="U1")
    _rate(repo, billing, T0 + MINUTE, helpful=False)
    _rate(repo, billing, T0 + MINUTE, helpful=False, rater="U1")
    _rate(repo, retrieval, T0 + MINUTE, helpful=False)
    _rate(repo, retrieval, T0 + MINUTE, helpful=None, source="modal")  # a correction without a verdict

    stats = repo.stats(T0)

    assert (stats.questions, stats.answered, stats.handed_off, stats.rated, stats.helpful) == (4, 3, 1, 5, 1)
    assert stats.unhelpful_by_intent == [("billing", 2), ("[retrieval]", 1), ("greet", 1)]


def test_naive_datetimes_are_refused(repo: Repository) -> None:
    with pytest.raises(StorageError, match="no time zone"):
        repo.ratings_since(datetime(2024, 5, 1))
    with pytest.raises(StorageError, match="no time zone"):
        repo.answers_between(T0, datetime(2024, 5, 2))


@contextmanager
def _recorded_statements(engine_class: type[Engine] = Engine) -> Iterator[list[tuple[str, Any]]]:
    statements: list[tuple[str, Any]] = []

    def record(_conn: Any, _cursor: Any, statement: str, parameters: Any, _context: Any, _many: bool) -> None:
        statements.append((statement, parameters))

    event.listen(engine_class, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        event.remove(engine_class, "before_cursor_execute", record)


def test_rated_answer_lists_take_a_fixed_number_of_queries(repo: Repository) -> None:
    for minutes in range(12):
        answer_id = answered_question(repo, asked_at=T0 + minutes * MINUTE).answer_id
        _rate(repo, answer_id, T0 + minutes * MINUTE)
        _rate(repo, answer_id, T0 + minutes * MINUTE, rater="U1")
    with _recorded_statements() as statements:
        rated = repo.ratings_since(T0)
        window = repo.answers_between(T0, T0 + 20 * MINUTE)
    assert len(rated) == len(window) == 12 and all(len(item.ratings) == 2 for item in rated)
    assert len([s for s, _ in statements if s.lstrip().upper().startswith("SELECT")]) == 4  # 2 per call


BIG_TABLES = ("conversations", "messages", "answers", "ratings", "handoffs")


@pytest.mark.parametrize(
    "query",
    [
        lambda repo: repo.ratings_since(T0),
        lambda repo: repo.answers_between(T0, T0 + MINUTE),
        lambda repo: repo.stats(T0),
        lambda repo: repo.purge_older_than(T0, dry_run=True),
        lambda repo: repo.forget_user("U1", dry_run=True),
    ],
    ids=["ratings_since", "answers_between", "stats", "purge_older_than", "forget_user"],
)
def test_time_window_and_privacy_queries_use_indexes(sqlite_url: str, query: Callable[[Repository], object]) -> None:
    """SQLite's plan for every statement must search the big tables through an index, never scan them."""
    with Repository(sqlite_url) as repo:
        _rate(repo, answered_question(repo, user_id="U1", asked_at=T0).answer_id, T0)  # U1: forget_user finds data
        with _recorded_statements() as statements:
            query(repo)
    assert statements
    engine = make_engine(sqlite_url)
    try:
        with engine.connect() as connection:
            for statement, parameters in statements:
                plan = connection.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, parameters).all()
                scans = [row[3] for row in plan if row[3].startswith("SCAN ") and row[3].split()[1] in BIG_TABLES]
                assert not scans, f"full scan {scans} in: {statement}"
    finally:
        engine.dispose()
