"""The store's API: everything the product logs, read and written through one class.

CONTRACT STUB (signatures agreed between the storage, bot and retraining work). Implementations replace the
`NotImplementedError` bodies; callers may rely on every signature and docstring below.

All returned table objects are detached from their session (safe to read attributes after return).
Text passing through the repository is PII-masked first when `mask_pii` is on.
Times are timezone-aware UTC datetimes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from storage.models import (
    Answer,
    Conversation,
    EvalExample,
    Handoff,
    Message,
    ModelVersion,
    Rating,
    TrainingRun,
)

Role = Literal["user", "bot", "agent"]
RaterRole = Literal["agent", "customer"]
AnswerSource = Literal["intent", "retrieval", "handoff"]


@dataclass(frozen=True)
class RatedAnswer:
    """An answer with the question it answered and every rating it received (nightly-job view)."""

    answer: Answer
    question: Message
    ratings: list[Rating] = field(default_factory=list)


@dataclass(frozen=True)
class Stats:
    """Counts for the agents' App Home over a time window."""

    questions: int
    answered: int
    handed_off: int
    rated: int
    helpful: int
    unhelpful_by_intent: list[tuple[str, int]]


class Repository:
    """Store of conversations, messages, answers, ratings, hand-offs, model registry and training runs.

    Args:
        url: SQLAlchemy URL (`sqlite:///path.db` or `postgresql+psycopg://...`).
        mask_pii: mask e-mails, phones, cards and IBANs in all stored text.
        upgrade: apply Alembic migrations on construction.
    """

    def __init__(self, url: str, *, mask_pii: bool = True, upgrade: bool = True) -> None:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def ping(self) -> None:
        """Raise StorageError if the database cannot be reached."""
        raise NotImplementedError

    # --- conversations and messages -----------------------------------------------------------
    def get_or_create_conversation(
        self, *, team_id: str, channel_id: str, thread_ts: str, started_by: str | None, source: str = "slack"
    ) -> Conversation:
        """One conversation per (team, channel, thread); safe under concurrent callers."""
        raise NotImplementedError

    def find_conversation(self, *, team_id: str, channel_id: str, thread_ts: str) -> Conversation | None:
        raise NotImplementedError

    def add_message(
        self,
        conversation_id: int,
        *,
        role: Role,
        text: str,
        user_id: str | None = None,
        slack_ts: str | None = None,
        event_id: str | None = None,
    ) -> Message:
        """Store a message. Raises DuplicateEventError if `event_id` is already stored (a Slack retry)."""
        raise NotImplementedError

    def messages(self, conversation_id: int) -> list[Message]:
        """The conversation's messages, oldest first."""
        raise NotImplementedError

    # --- answers (prediction + what was said) --------------------------------------------------
    def record_answer(
        self,
        *,
        conversation_id: int,
        question_id: int,
        text: str,
        source: AnswerSource,
        intent: str | None,
        confidence: float | None,
        doc_ids: Sequence[str] = (),
        doc_scores: Sequence[float] = (),
        model_version: str | None = None,
        latency_ms: float | None = None,
    ) -> Answer:
        """Store the engine's decision before it is posted (status 'pending')."""
        raise NotImplementedError

    def mark_answer_posted(self, answer_id: int, *, channel_id: str, slack_ts: str) -> None:
        raise NotImplementedError

    def mark_answer_failed(self, answer_id: int, *, error: str) -> None:
        raise NotImplementedError

    def get_answer(self, answer_id: int) -> Answer | None:
        raise NotImplementedError

    def find_answer_by_slack_ts(self, *, channel_id: str, slack_ts: str) -> Answer | None:
        raise NotImplementedError

    # --- ratings and hand-offs ---------------------------------------------------------------
    def add_rating(
        self,
        answer_id: int,
        *,
        rater_id: str,
        rater_role: RaterRole,
        helpful: bool | None,
        corrected_intent: str | None = None,
        corrected_answer: str | None = None,
        source: str = "button",
    ) -> Rating:
        """Store a rating or correction. Raises StorageError if the answer does not exist."""
        raise NotImplementedError

    def remove_rating(self, answer_id: int, *, rater_id: str, source: str, helpful: bool | None) -> int:
        """Delete the matching ratings (a removed reaction); returns how many were deleted."""
        raise NotImplementedError

    def ratings(self, answer_id: int) -> list[Rating]:
        raise NotImplementedError

    def add_handoff(
        self, conversation_id: int, *, answer_id: int | None, reason: str, agent_channel_ts: str | None = None
    ) -> Handoff:
        raise NotImplementedError

    def handoffs(self, conversation_id: int) -> list[Handoff]:
        raise NotImplementedError

    # --- queries for the nightly job and App Home -------------------------------------------
    def ratings_since(self, since: datetime) -> list[RatedAnswer]:
        """Every answer rated or corrected at or after `since`, with its question and all its ratings."""
        raise NotImplementedError

    def answers_between(self, start: datetime, end: datetime) -> list[RatedAnswer]:
        """Answers created in [start, end), with their questions and ratings, oldest first."""
        raise NotImplementedError

    def stats(self, since: datetime) -> Stats:
        raise NotImplementedError

    # --- frozen evaluation set ---------------------------------------------------------------
    def eval_examples(self) -> list[EvalExample]:
        raise NotImplementedError

    def add_eval_examples(self, examples: Sequence[tuple[str, str, str]]) -> int:
        """Add (text, label, origin) rows not yet present (by normalised text); returns how many were new."""
        raise NotImplementedError

    # --- model registry and training runs -----------------------------------------------------
    def register_model(
        self, version: str, *, path: str, metrics: dict[str, Any], dataset_hash: str, status: str = "candidate"
    ) -> ModelVersion:
        raise NotImplementedError

    def models(self) -> list[ModelVersion]:
        """All versions, newest first."""
        raise NotImplementedError

    def get_model(self, version: str) -> ModelVersion | None:
        raise NotImplementedError

    def production_model(self) -> ModelVersion | None:
        raise NotImplementedError

    def promote(self, version: str) -> ModelVersion:
        """Make `version` production and retire the previous one, in one transaction."""
        raise NotImplementedError

    def set_model_status(self, version: str, status: str) -> None:
        raise NotImplementedError

    def start_training_run(self, *, trigger: str) -> TrainingRun:
        raise NotImplementedError

    def finish_training_run(
        self,
        run_id: int,
        *,
        status: str,
        candidate_version: str | None = None,
        metrics: dict[str, Any] | None = None,
        error: str | None = None,
        report_path: str | None = None,
    ) -> TrainingRun:
        raise NotImplementedError

    def training_runs(self, limit: int = 20) -> list[TrainingRun]:
        raise NotImplementedError

    # --- privacy --------------------------------------------------------------------------
    def purge_older_than(self, cutoff: datetime) -> dict[str, int]:
        """Delete conversations (and everything under them) last active before `cutoff`; counts per table."""
        raise NotImplementedError

    def forget_user(self, user_id: str) -> dict[str, int]:
        """Delete the user's conversations, messages and ratings (and nothing else); counts per table."""
        raise NotImplementedError
