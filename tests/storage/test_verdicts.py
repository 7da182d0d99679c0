"""One verdict per rater, answer and source: `set_rating` is one atomic upsert, on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TypeVar

import pytest

from storage.errors import StorageError
from storage.repository import Repository
from tests.factories import answered_question

T = TypeVar("T")
ROUNDS = 12


def test_set_rating_writes_once_replaces_the_opposite_and_keeps_sources_apart(repo: Repository) -> None:
    answer_id = answered_question(repo).answer_id
    assert repo.set_rating(answer_id, rater_id="U1", rater_role="customer", helpful=True, source="reaction") is True
    assert repo.set_rating(answer_id, rater_id="U1", rater_role="customer", helpful=True, source="reaction") is False
    assert repo.set_rating(answer_id, rater_id="U1", rater_role="customer", helpful=True, source="button") is True
    assert repo.set_rating(answer_id, rater_id="U2", rater_role="agent", helpful=True, source="reaction") is True
    [first] = [r for r in repo.ratings(answer_id) if (r.rater_id, r.source) == ("U1", "reaction")]
    assert repo.set_rating(answer_id, rater_id="U1", rater_role="customer", helpful=False, source="reaction") is True
    ratings = {(r.rater_id, r.source): r for r in repo.ratings(answer_id)}
    assert {key: r.helpful for key, r in ratings.items()} == {
        ("U1", "reaction"): False,
        ("U1", "button"): True,
        ("U2", "reaction"): True,
    }
    assert ratings["U1", "reaction"].created_at >= first.created_at  # the change of mind is timed when made
    assert repo.remove_rating(answer_id, rater_id="U1", source="reaction", helpful=False) == 1
    assert repo.set_rating(answer_id, rater_id="U1", rater_role="customer", helpful=True, source="reaction") is True


def test_set_rating_of_an_unknown_answer_returns_none_and_bad_values_are_refused(repo: Repository) -> None:
    assert repo.set_rating(999, rater_id="U1", rater_role="customer", helpful=True, source="button") is None
    answer_id = answered_question(repo).answer_id
    with pytest.raises(StorageError, match="source must be one of button, reaction, cli"):
        repo.set_rating(answer_id, rater_id="U1", rater_role="agent", helpful=True, source="modal")
    with pytest.raises(StorageError, match="rater_role must be one of"):
        repo.set_rating(answer_id, rater_id="U1", rater_role="boss", helpful=True, source="button")  # type: ignore[arg-type]
    with pytest.raises(StorageError, match="source must be one of button, reaction, modal, cli, clarify"):
        repo.remove_rating(answer_id, rater_id="U1", source="emoji", helpful=True)  # type: ignore[arg-type]
    assert repo.ratings(answer_id) == []


def test_add_rating_refuses_a_second_verdict_but_not_a_second_correction(repo: Repository) -> None:
    answer_id = answered_question(repo).answer_id
    repo.add_rating(answer_id, rater_id="U1", rater_role="customer", helpful=True, source="cli")
    with pytest.raises(StorageError, match="already has a cli verdict on answer .*set_rating"):
        repo.add_rating(answer_id, rater_id="U1", rater_role="customer", helpful=False, source="cli")
    for intent in ("billing", "refund"):
        repo.add_rating(
            answer_id, rater_id="U9", rater_role="agent", helpful=False, corrected_intent=intent, source="modal"
        )
    with pytest.raises(StorageError, match="source must be one of"):
        repo.add_rating(answer_id, rater_id="U9", rater_role="agent", helpful=True, source="email")
    assert sorted((r.source, r.corrected_intent) for r in repo.ratings(answer_id)) == [
        ("cli", None),
        ("modal", "billing"),
        ("modal", "refund"),
    ]


def _at_once(*works: Callable[[], T]) -> list[T]:
    """Run each of `works` in its own thread, all released together; returns the results (re-raises a failure)."""
    barrier = threading.Barrier(len(works), timeout=30)
    results: list[T] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def run(work: Callable[[], T]) -> None:
        try:
            barrier.wait()
            result = work()
            with lock:
                results.append(result)
        except BaseException as exc:  # reported to the test, not lost in the thread
            barrier.abort()
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(work,)) for work in works]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    if errors:
        raise errors[0]
    return results


def test_two_identical_reactions_at_once_leave_exactly_one_rating(db_url: str) -> None:
    """Two bot workers (each with its own connections) store the same reaction at the same moment."""
    first, second = Repository(db_url), Repository(db_url)
    try:
        for round_ in range(ROUNDS):
            answer_id = answered_question(first).answer_id  # a new thread each round

            def react(repo: Repository, answer_id: int = answer_id) -> Callable[[], bool | None]:
                return lambda: repo.set_rating(
                    answer_id, rater_id="U1", rater_role="customer", helpful=True, source="reaction"
                )

            outcomes = _at_once(react(first), react(second))
            assert sorted(outcomes, key=str) == [False, True], (round_, outcomes)  # one wrote, one found it there
            [rating] = first.ratings(answer_id)
            assert (rating.rater_id, rating.helpful, rating.source) == ("U1", True, "reaction")
    finally:
        first.close()
        second.close()
