"""Two processes on one database at once: nothing lost, nothing doubled (SQLite and PostgreSQL)."""

from __future__ import annotations

import multiprocessing

import pytest
import sqlalchemy as sa

from storage.db import current_revision, head_revision, make_engine
from storage.repository import Repository
from tests.storage import _workers

OWN, SHARED = 25, 10
TIMEOUT_S = 120


@pytest.mark.slow
def test_two_processes_migrating_and_writing_one_thread_lose_nothing(empty_db_url: str) -> None:
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(2)
    results = context.Queue()
    processes = [
        context.Process(target=_workers.race, args=(empty_db_url, worker, OWN, SHARED, barrier, results))
        for worker in (0, 1)
    ]
    try:
        for process in processes:
            process.start()
        outcomes = sorted(results.get(timeout=TIMEOUT_S) for _ in processes)
        for process in processes:
            process.join(timeout=TIMEOUT_S)
            assert process.exitcode == 0
    finally:
        for process in processes:  # never leave a stuck child behind (it would hang the whole run)
            if process.is_alive():
                process.kill()
                process.join(timeout=10)

    assert [error for *_, error in outcomes] == [None, None]
    assert current_revision(empty_db_url) == head_revision()
    assert sum(stored for _, stored, _, _ in outcomes) == 2 * OWN + SHARED
    assert sum(duplicates for _, _, duplicates, _ in outcomes) == SHARED  # each retried event refused once
    engine = make_engine(empty_db_url)
    try:
        with engine.connect() as connection:
            assert connection.execute(sa.text("SELECT count(*) FROM conversations")).scalar() == 1
            event_ids = connection.execute(sa.text("SELECT event_id FROM messages")).scalars().all()
    finally:
        engine.dispose()
    expected = {f"w{w}-{i}" for w in (0, 1) for i in range(OWN)} | {f"shared-{i}" for i in range(SHARED)}
    assert sorted(event_ids) == sorted(expected)
    with Repository(empty_db_url) as repo:
        assert sorted(m.status for m in repo.models()) == ["production", "retired"]
