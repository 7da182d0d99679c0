"""Several processes on one database at once: nothing lost, nothing doubled (SQLite and PostgreSQL)."""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable
from typing import Any

import pytest
import sqlalchemy as sa

from storage.db import current_revision, head_revision, make_engine
from storage.repository import Repository
from tests.storage import _workers

OWN, SHARED = 25, 10
TIMEOUT_S = 120


def _run_pair(target: Callable[..., None], *args: Any) -> list[tuple[Any, ...]]:
    """Start two spawned processes running `target(*args, worker, barrier, queue)`; collect their results."""
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(2)
    results = context.Queue()
    processes = [
        context.Process(target=target, args=(*args[:1], worker, *args[1:], barrier, results)) for worker in (0, 1)
    ]
    for process in processes:
        process.start()
    collected = [results.get(timeout=TIMEOUT_S) for _ in processes]
    for process in processes:
        process.join(timeout=TIMEOUT_S)
        assert process.exitcode == 0
    return sorted(collected)


@pytest.mark.slow
def test_two_processes_writing_one_thread_lose_nothing(db_url: str) -> None:
    with Repository(db_url) as repo:
        for version in ("v0", "v1"):
            repo.register_model(version, path=f"/m/{version}", metrics={}, dataset_hash="h")

    results = _run_pair(_workers.write_and_promote, db_url, OWN, SHARED)

    assert [error for *_, error in results] == [None, None]
    assert sum(stored for _, stored, _, _ in results) == 2 * OWN + SHARED
    assert sum(duplicates for _, _, duplicates, _ in results) == SHARED  # each retried event refused once
    engine = make_engine(db_url)
    try:
        with engine.connect() as connection:
            assert connection.execute(sa.text("SELECT count(*) FROM conversations")).scalar() == 1
            event_ids = connection.execute(sa.text("SELECT event_id FROM messages")).scalars().all()
    finally:
        engine.dispose()
    expected = {f"w{w}-{i}" for w in (0, 1) for i in range(OWN)} | {f"shared-{i}" for i in range(SHARED)}
    assert sorted(event_ids) == sorted(expected)
    with Repository(db_url) as repo:
        assert [m.status for m in repo.models()].count("production") == 1


@pytest.mark.slow
def test_two_processes_migrating_an_empty_database_at_once(empty_db_url: str) -> None:
    results = _run_pair(_workers.open_repository, empty_db_url)
    assert results == [(0, None), (1, None)]
    assert current_revision(empty_db_url) == head_revision()
