"""An answered question as plain data (what the spool keeps while the database is away), and storing it.

`turn_body` is a turn's JSON form; `store_turn` writes it (the question with its answer, then where it was
posted) and `store_mark` writes a stored answer's outcome. Both are idempotent: a turn replayed after a crash
mid-flush is only marked, an outcome carries the inbox key its work removes (`finish`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from storage.errors import DuplicateEventError
from storage.repository import NewAnswer, Repository, ThreadRef


def turn_body(
    *,
    thread: ThreadRef,
    user_id: str,
    text: str,
    slack_ts: str,
    event_id: str,
    asked_at: datetime,
    answer: dict[str, Any],
    answered_at: datetime,
    posted_ts: str | None,
    error: str = "",
    handoff: str | None = None,
    agent_channel_ts: str | None = None,
) -> dict[str, Any]:
    """An answered question as the spool keeps it (plain JSON)."""
    return {
        "thread": {"team_id": thread.team_id, "channel_id": thread.channel_id, "thread_ts": thread.thread_ts},
        "user_id": user_id,
        "text": text,
        "slack_ts": slack_ts,
        "event_id": event_id,
        "asked_at": asked_at.isoformat(),
        "answered_at": answered_at.isoformat(),
        "answer": answer,
        "posted_ts": posted_ts,
        "error": error,
        "handoff": handoff,
        "agent_channel_ts": agent_channel_ts,
    }


def store_turn(repo: Repository, turn: dict[str, Any]) -> None:
    """Store a spooled turn: the question with its answer, then where it was posted (idempotent: a turn that is
    already stored is only marked)."""
    thread = ThreadRef(**turn["thread"])
    try:
        stored = repo.record_question_turn(
            thread,
            user_id=turn["user_id"],
            text=turn["text"],
            answer=NewAnswer(**turn["answer"]),
            slack_ts=turn["slack_ts"],
            event_id=turn["event_id"],
            asked_at=datetime.fromisoformat(turn["asked_at"]),
            answered_at=datetime.fromisoformat(turn["answered_at"]),
        )
        answer_id = stored.answer_id
    except DuplicateEventError:
        state = repo.thread_state(thread, event_id=turn["event_id"])
        if state.answer is None or state.answer.status != "pending":
            return
        answer_id = state.answer.id
    assert answer_id is not None
    store_mark(
        repo,
        {
            "answer_id": answer_id,
            "channel_id": thread.channel_id,
            "slack_ts": turn["posted_ts"],
            "error": turn["error"],
            "handoff": turn["handoff"],
            "agent_channel_ts": turn["agent_channel_ts"],
        },
    )


def store_mark(repo: Repository, mark: dict[str, Any]) -> None:
    """Record where a stored answer was posted (`slack_ts`), or why it was not (`error`)."""
    if mark.get("slack_ts"):
        repo.mark_posted(
            mark["answer_id"],
            channel_id=mark["channel_id"],
            slack_ts=mark["slack_ts"],
            handoff=mark.get("handoff"),
            agent_channel_ts=mark.get("agent_channel_ts"),
            finish=mark.get("finish"),
        )
    else:
        repo.mark_failed(
            mark["answer_id"],
            error=mark.get("error") or "not posted",
            handoff=mark.get("handoff"),
            agent_channel_ts=mark.get("agent_channel_ts"),
            finish=mark.get("finish"),
        )
