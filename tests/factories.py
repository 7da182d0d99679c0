"""Builders the tests share: what a test would otherwise write out by hand again and again.

* `settings_for(data_dir, ...)`: settings on a data directory of the test's own, from keyword values alone;
* `engine_answer(...)`: an `EngineAnswer` (the engine's decision) with plain defaults;
* `new_thread()`, `new_answer(...)`, `answered_question(repo, ...)`: a customer's question and the bot's answer,
  logged as a front end logs it (the storage API's whole operations: `record_question_turn`, then
  `mark_posted` when the answer was posted);
* `rate(repo, ...)`, `correct(repo, ...)`: a verdict on an answer (`set_rating`) and an agent's correction;
* `labelled_examples({...})`: a tiny labelled `Example` list.

The autouse isolation in `tests/conftest.py` has already cleared the environment and the working directory.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from bot.answer import EngineAnswer, SourceDoc
from bot.settings import Settings, load_settings
from storage.models import Rating
from storage.repository import (
    AnswerSource,
    ConversationSource,
    HandoffReason,
    NewAnswer,
    RaterRole,
    RatingSource,
    Repository,
    ThreadRef,
)
from training.data import Example

TEAM_ID = "T1"
CHANNEL_ID = "C1"
CUSTOMER = "UCUSTOMER"
AGENT = "UAGENT"

_thread_numbers = itertools.count(1)


# --- settings ----------------------------------------------------------------------------------------------
def settings_for(data_dir: Path, **values: Any) -> Settings:
    """Settings on `data_dir` from `values` and the environment only (never a `.env` file)."""
    return load_settings(supportbot_data_dir=data_dir, _env_file=None, **values)


# --- the engine's decision ---------------------------------------------------------------------------------
def engine_answer(
    text: str = "Hi",
    source: AnswerSource = "intent",
    *,
    intent: str | None = "greeting",
    confidence: float | None = 0.9,
    sources: list[SourceDoc] | tuple[SourceDoc, ...] = (),
    model_version: str | None = "v1",
    latency_ms: float = 1.0,
    **more: Any,
) -> EngineAnswer:
    """An `EngineAnswer`; `more` sets any further field (`reason`, `candidates`, `truncated`, ...)."""
    return EngineAnswer(
        text,
        source,
        intent,
        confidence,
        list(sources),
        model_version=model_version,
        latency_ms=latency_ms,
        **more,
    )


# --- the conversation log ----------------------------------------------------------------------------------
def new_thread(*, team_id: str = TEAM_ID, channel_id: str = CHANNEL_ID) -> ThreadRef:
    """A thread nobody has written in yet (a fresh `thread_ts` on every call)."""
    return ThreadRef(team_id, channel_id, f"1700000000.{next(_thread_numbers):06d}")


def new_answer(
    text: str = "Use the reset link.",
    *,
    source: AnswerSource = "intent",
    intent: str | None = "reset_password",
    confidence: float | None = 0.9,
    **fields: Any,
) -> NewAnswer:
    """The engine's decision as stored (`fields`: `doc_ids`, `doc_scores`, `model_version`, `latency_ms`)."""
    return NewAnswer(text=text, source=source, intent=intent, confidence=confidence, **fields)


@dataclass(frozen=True)
class Answered:
    """A logged question and the answer recorded for it."""

    thread: ThreadRef
    conversation_id: int
    question_id: int
    answer_id: int
    question: str
    intent: str | None


def answered_question(
    repo: Repository,
    question: str = "password?",
    answer: NewAnswer | EngineAnswer | None = None,
    *,
    user_id: str = CUSTOMER,
    thread: ThreadRef | None = None,
    event_id: str | None = None,
    source: ConversationSource = "slack",
    asked_at: datetime | None = None,
    answered_at: datetime | None = None,
    posted_ts: str | None = None,
    handoff: HandoffReason | None = None,
) -> Answered:
    """A customer's question and the bot's answer (default `new_answer()`), logged in one `record_question_turn`
    in `thread` (default a new one), asked at `asked_at` and answered at `answered_at` (default `asked_at`: a
    question dated in the past is answered the same moment; both default to now); with `posted_ts`, also posted
    there (`mark_posted`, with the hand-off `handoff` if given; the bot's message is dated now), otherwise left
    `pending`."""
    if answer is None:
        answer = new_answer()
    elif isinstance(answer, EngineAnswer):
        answer = NewAnswer(**answer.record_fields())
    thread = thread or new_thread()
    turn = repo.record_question_turn(
        thread,
        user_id=user_id,
        text=question,
        answer=answer,
        event_id=event_id,
        source=source,
        asked_at=asked_at,
        answered_at=answered_at or asked_at,
    )
    assert turn.answer_id is not None and turn.conversation.id is not None
    if posted_ts is not None:
        repo.mark_posted(turn.answer_id, channel_id=thread.channel_id, slack_ts=posted_ts, handoff=handoff)
    return Answered(thread, turn.conversation.id, turn.question_id, turn.answer_id, question, answer.intent)


def rate(
    repo: Repository,
    answer_id: int,
    helpful: bool = True,
    *,
    rater_id: str = CUSTOMER,
    rater_role: RaterRole = "customer",
    source: RatingSource = "button",
) -> bool | None:
    """`rater_id`'s verdict on an answer, as a button, a reaction or the terminal records it (`set_rating`)."""
    return repo.set_rating(answer_id, rater_id=rater_id, rater_role=rater_role, helpful=helpful, source=source)


def correct(
    repo: Repository,
    answer_id: int,
    intent: str | None,
    *,
    answer: str | None = None,
    helpful: bool | None = False,
    rater_id: str = AGENT,
) -> Rating:
    """An agent's correction in the modal: the right intent and, optionally, the answer they wrote."""
    return repo.add_rating(
        answer_id,
        rater_id=rater_id,
        rater_role="agent",
        helpful=helpful,
        corrected_intent=intent,
        corrected_answer=answer,
        source="modal",
    )


# --- training data -----------------------------------------------------------------------------------------
def labelled_examples(counts: dict[str, int]) -> list[Example]:
    """`counts[label]` examples of each label, texts `"<label> <i>"`, in order."""
    return [Example(f"{label} {i}", label) for label, n in counts.items() for i in range(n)]
