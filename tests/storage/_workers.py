"""Code run in child processes by test_concurrency (importable, so that `spawn` can start it)."""

from __future__ import annotations

from multiprocessing.queues import Queue
from multiprocessing.synchronize import Barrier

from storage.errors import DuplicateEventError
from storage.repository import Repository


def write_and_promote(url: str, worker: int, own: int, shared: int, barrier: Barrier, results: Queue) -> None:
    """Write `own` messages of our own plus `shared` that the other worker also writes, then race promotions."""
    try:
        repo = Repository(url)
        events = [f"w{worker}-{i}" for i in range(own)] + [f"shared-{i}" for i in range(shared)]
        stored = duplicates = 0
        barrier.wait()
        for event_id in events:
            conversation = repo.get_or_create_conversation(
                team_id="T", channel_id="C", thread_ts="race", started_by=f"U{worker}"
            )
            assert conversation.id is not None
            try:
                repo.add_message(conversation.id, role="user", text=event_id, event_id=event_id, user_id=f"U{worker}")
                stored += 1
            except DuplicateEventError:
                duplicates += 1
        barrier.wait()
        for round_ in range(10):
            repo.promote(f"v{(worker + round_) % 2}")
        repo.close()
        results.put((worker, stored, duplicates, None))
    except Exception as exc:  # reported to the test instead of a silent child crash
        results.put((worker, 0, 0, repr(exc)))


def open_repository(url: str, worker: int, barrier: Barrier, results: Queue) -> None:
    """Open (and so migrate) the same empty database as the other worker, at the same moment."""
    try:
        barrier.wait()
        Repository(url).close()
        results.put((worker, None))
    except Exception as exc:  # reported to the test instead of a silent child crash
        results.put((worker, repr(exc)))
