"""Code run in child processes by test_concurrency (importable, so that `spawn` can start it)."""

from __future__ import annotations

from multiprocessing.queues import Queue
from multiprocessing.synchronize import Barrier

from storage.errors import DuplicateEventError
from storage.repository import Repository

BARRIER_TIMEOUT_S = 60  # a worker that dies early breaks the barrier for the other instead of hanging it


def race(url: str, worker: int, own: int, shared: int, barrier: Barrier, results: Queue) -> None:
    """Race the other worker through every step where processes meet on one database.

    1. open (and so migrate) the same empty database at the same moment;
    2. write `own` messages of our own plus `shared` that the other worker also writes (Slack retries),
       all into one thread that neither has created yet;
    3. register a model version each, then promote alternately.

    Puts (worker, messages stored, duplicates refused, None or the error) on `results`.
    """
    step = "open"
    try:
        barrier.wait(timeout=BARRIER_TIMEOUT_S)
        repo = Repository(url)
        events = [f"w{worker}-{i}" for i in range(own)] + [f"shared-{i}" for i in range(shared)]
        stored = duplicates = 0
        step = "write"
        barrier.wait(timeout=BARRIER_TIMEOUT_S)
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
        step = "promote"
        repo.register_model(f"v{worker}", path=f"/m/v{worker}", metrics={}, dataset_hash="h")
        barrier.wait(timeout=BARRIER_TIMEOUT_S)
        for round_ in range(10):
            repo.promote(f"v{(worker + round_) % 2}")
        repo.close()
        results.put((worker, stored, duplicates, None))
    except BaseException as exc:  # reported to the test instead of a silent child crash (or a hang)
        barrier.abort()
        results.put((worker, 0, 0, f"{step}: {exc!r}"))
