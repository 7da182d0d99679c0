"""Repository part: the conversation log as whole operations, each one transaction.

A front end (Slack or the terminal) accounts for one answered question with at most three calls:

1. `thread_state(thread, event_id=...)` (read): the thread's conversation, whether a human agent is handling
   it, and whether this event is already stored (a retried delivery stops here, before the engine runs);
2. `record_question_turn(...)` (write): the conversation (created if new), the customer's message and the
   engine's decision (status `pending`), together, so an answer never exists without its question;
3. `mark_posted(...)` / `mark_failed(...)` (write): where the answer was posted (or why not), the bot's message
   in the thread and, when the bot handed off, the hand-off.

Ratings are set with one atomic upsert (`set_rating`: one verdict per rater, answer and source, enforced by a
unique index), a button's context is one query (`answer_context`). The row-level calls and reads they are
built on live in `storage._conversation_rows` (`get_or_create_conversation`, `add_message`, `record_answer`,
`add_rating`: imports, the agents' own messages, a clarifying question's follow-up, corrections).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, exists, literal_column
from sqlalchemy import select as sa_select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from storage._conversation_rows import (
    ANSWER_SOURCES,
    CLARIFY_SOURCE,
    CONVERSATION_SOURCES,
    HANDOFF_REASONS,
    RATER_ROLES,
    RATING_SOURCES,
    ROLES,
    AnswerSource,
    ConversationRows,
    ConversationSource,
    HandoffReason,
    NewAnswer,
    RaterRole,
    RatingSource,
    Role,
    ThreadRef,
    row_id,
    thread_filter,
    thread_query,
)
from storage.models import (
    VERDICT_SOURCES,
    VERDICT_SOURCES_SQL,
    Answer,
    Conversation,
    Handoff,
    InboxItem,
    Message,
    Rating,
)
from storage.text import clean_text

__all__ = [
    "ANSWER_SOURCES",
    "CONVERSATION_SOURCES",
    "HANDOFF_REASONS",
    "RATER_ROLES",
    "RATING_SOURCES",
    "ROLES",
    "AnswerContext",
    "AnswerSource",
    "ConversationLog",
    "ConversationSource",
    "HandoffReason",
    "NewAnswer",
    "RaterRole",
    "RatingSource",
    "Role",
    "ThreadRef",
    "ThreadState",
    "Turn",
]


@dataclass(frozen=True)
class ThreadState:
    """What a front end needs to know before it asks the engine (`thread_state`)."""

    conversation: Conversation | None
    """The thread's conversation; None for a thread the bot has not seen."""
    human_handling: bool
    """An agent has written in the thread: the bot stays quiet there."""
    seen: bool
    """The event is already stored (a retried or doubly delivered event): drop it."""
    answer: Answer | None = None
    """When seen: the latest answer recorded for that question (None: none was, e.g. it was only logged)."""


@dataclass(frozen=True)
class Turn:
    """A question stored in its conversation, with the answer recorded for it (None when only logged)."""

    conversation: Conversation
    question_id: int
    answer_id: int | None


@dataclass(frozen=True)
class AnswerContext:
    """A stored answer with its conversation and what the answer's buttons need to know (`answer_context`)."""

    answer: Answer
    conversation: Conversation
    question: str
    """The text of the question it answered."""
    handed_off: bool
    """The conversation was already handed to a person."""
    picked: bool
    """A customer already answered this clarifying question."""


def _finish(session: Session, key: str | None) -> None:
    """Remove the inbox item `key` (its work is done) in the caller's transaction."""
    if key:
        session.execute(delete(InboxItem).where(col(InboxItem.key) == clean_text(key)))


_RATING_COLUMNS = ("answer_id", "rater_id", "rater_role", "helpful", "corrected_intent", "corrected_answer", "source",
                   "created_at")  # fmt: skip
"""The columns of a verdict row, as inserted by the upsert."""


class ConversationLog(ConversationRows):
    """Conversations, messages, answers, ratings and hand-offs, written in whole operations."""

    # --- one answered question ------------------------------------------------------------------
    def thread_state(self, thread: ThreadRef, *, event_id: str | None = None) -> ThreadState:
        """The thread's conversation, whether a human is handling it, and whether `event_id` is stored with the
        answer recorded for it (one read)."""
        with self._session() as session:
            conversation = session.exec(thread_query(thread)).first()
            human = conversation is not None and bool(
                session.scalar(
                    sa_select(
                        exists().where(col(Message.conversation_id) == conversation.id, col(Message.role) == "agent")
                    )
                )
            )
            stored = None
            if event_id is not None:
                stored = session.scalar(sa_select(col(Message.id)).where(col(Message.event_id) == clean_text(event_id)))
            answer = None
            if stored is not None:
                answer = session.exec(
                    select(Answer).where(col(Answer.question_id) == stored).order_by(col(Answer.id).desc())
                ).first()
        return ThreadState(conversation, human, stored is not None, answer)

    def record_question_turn(
        self,
        thread: ThreadRef,
        *,
        user_id: str,
        text: str,
        answer: NewAnswer | None,
        slack_ts: str | None = None,
        event_id: str | None = None,
        source: ConversationSource = "slack",
        asked_at: datetime | None = None,
        answered_at: datetime | None = None,
    ) -> Turn:
        """Store a customer's question and the engine's decision (status `pending`) in one transaction.

        The conversation is created on the thread's first question (`user_id` starts it); two processes creating
        it at once share one row. Nothing is stored when the event is a duplicate.

        Args:
            thread: the question's thread.
            user_id: who asked.
            text: the question (cut to the front end's limit; PII-masked when masking is on).
            answer: the engine's decision; None to log the question only (a human is handling the thread).
            slack_ts: Slack timestamp of the question.
            event_id: Slack event id, the de-duplication key.
            source: `slack` or `cli` (for a new conversation).
            asked_at: when the question arrived (default now).
            answered_at: when the engine decided (default now: the answer is timed at the call).

        Raises:
            DuplicateEventError: `event_id` is already stored (nothing was written).
            StorageError: an invalid value, or the database failed.
        """
        self._choice(source, CONVERSATION_SOURCES, "source")
        when = self._time(asked_at, "asked_at")
        question = self._checked(
            Message(
                conversation_id=0,
                role="user",
                user_id=user_id,
                text=self._free_text(text),
                slack_ts=slack_ts,
                event_id=event_id,
                created_at=when,
            )
        )
        record = None if answer is None else self._answer_row(answer, created_at=self._time(answered_at, "answered_at"))
        with self._session() as session:
            conversation = self._conversation_in(session, thread, started_by=user_id, source=source, when=when)
            assert conversation.id is not None
            question.conversation_id = conversation.id
            self._insert_message(session, question)
            if record is None:
                return Turn(conversation, row_id(question), None)
            record.conversation_id, record.question_id = conversation.id, row_id(question)
            session.add(record)
            session.flush()
            return Turn(conversation, row_id(question), row_id(record))

    def mark_posted(
        self,
        answer_id: int,
        *,
        channel_id: str,
        slack_ts: str,
        handoff: HandoffReason | None = None,
        agent_channel_ts: str | None = None,
        finish: str | None = None,
    ) -> None:
        """Record that the answer was posted as message `slack_ts`: status `posted`, the bot's message in the
        thread and, when the bot handed off (`handoff` is the reason), the hand-off; with `finish`, the inbox
        item of that key is removed in the same transaction (the work is done).

        Raises:
            StorageError: no such answer, or an invalid reason.
        """
        self._checked_reason(handoff)
        values = {"status": "posted", "channel_id": clean_text(channel_id), "slack_ts": clean_text(slack_ts)}
        with self._session() as session:
            conversation_id, text = self._set_answer(session, answer_id, values | {"error": None})
            message = self._checked(
                Message(
                    conversation_id=conversation_id,
                    role="bot",
                    text=text,
                    slack_ts=slack_ts,
                    created_at=self._time(None),
                )
            )
            self._insert_message(session, message)
            if handoff is not None:
                self._add_handoff(session, conversation_id, answer_id, handoff, agent_channel_ts)
            _finish(session, finish)

    def mark_failed(
        self,
        answer_id: int,
        *,
        error: str,
        handoff: HandoffReason | None = None,
        agent_channel_ts: str | None = None,
        finish: str | None = None,
    ) -> None:
        """Record that posting the answer failed (status `failed`) and why, and the hand-off if there was one
        (`finish`: as for `mark_posted`).

        Raises:
            StorageError: no such answer, or an invalid reason.
        """
        self._checked_reason(handoff)
        with self._session() as session:
            conversation_id, _ = self._set_answer(session, answer_id, {"status": "failed", "error": clean_text(error)})
            if handoff is not None:
                self._add_handoff(session, conversation_id, answer_id, handoff, agent_channel_ts)
            _finish(session, finish)

    def record_handoff(
        self,
        conversation_id: int,
        *,
        answer_id: int | None,
        reason: HandoffReason,
        agent_channel_ts: str | None = None,
        notice_text: str | None = None,
        notice_ts: str | None = None,
        created_at: datetime | None = None,
    ) -> Handoff:
        """Record that the conversation was passed to a person and, when the bot told the customer so in the
        thread (`notice_text` posted as `notice_ts`), that message: one transaction.

        Args:
            conversation_id: the conversation.
            answer_id: the answer that abstained or was found unhelpful (None for a plain request).
            reason: `abstained`, `customer_request`, `engine_error` or `not_helpful`.
            agent_channel_ts: timestamp of the notice in the agents' channel.
            notice_text: what the bot said in the thread (stored as a bot message when given).
            notice_ts: Slack timestamp of that message.
            created_at: when (default now).

        Raises:
            StorageError: unknown conversation or answer, or an invalid reason.
        """
        self._checked_reason(reason)
        when = self._time(created_at, "created_at")
        notice = None
        if notice_text is not None:
            notice = self._checked(
                Message(
                    conversation_id=conversation_id,
                    role="bot",
                    text=self._free_text(notice_text),
                    slack_ts=notice_ts,
                    created_at=when,
                )
            )
        with self._session() as session:
            if notice is not None:
                self._insert_message(session, notice)
            return self._add_handoff(session, conversation_id, answer_id, reason, agent_channel_ts, when)

    def answer_context(self, answer_id: int, thread: ThreadRef) -> AnswerContext | None:
        """The answer with its conversation, question, and whether the thread was handed off / the clarifying
        question answered (one query); None when the answer is unknown or belongs to another thread."""
        question = sa_select(col(Message.text)).where(col(Message.id) == col(Answer.question_id)).scalar_subquery()
        handed_off = exists().where(col(Handoff.conversation_id) == col(Conversation.id))
        picked = exists().where(col(Rating.answer_id) == col(Answer.id), col(Rating.source) == CLARIFY_SOURCE)
        query: Any = (
            sa_select(Answer, Conversation, question, handed_off, picked)
            .join(Conversation, col(Conversation.id) == col(Answer.conversation_id))
            .where(col(Answer.id) == answer_id, *thread_filter(thread))
        )
        with self._session() as session:
            row = session.exec(query).first()
        if row is None:
            return None
        answer, conversation, text, handed, was_picked = row
        return AnswerContext(answer, conversation, text or "", bool(handed), bool(was_picked))

    # --- ratings -------------------------------------------------------------------------------
    def set_rating(
        self, answer_id: int, *, rater_id: str, rater_role: RaterRole, helpful: bool, source: RatingSource
    ) -> bool | None:
        """Record `rater_id`'s verdict on an answer, replacing their opposite one from the same source.

        One atomic upsert (INSERT ... ON CONFLICT on the one-verdict index): a repeated verdict (a retried event,
        a double click, two identical reactions at once) is stored once.

        Args:
            answer_id: the rated answer.
            rater_id: who rated.
            rater_role: `agent` or `customer`.
            helpful: the verdict.
            source: `button`, `reaction` or `cli` (the sources that hold one verdict per rater).

        Returns:
            True if the verdict was written, False if it was already there, None if the answer does not exist.

        Raises:
            StorageError: an invalid role or source.
        """
        self._choice(rater_role, RATER_ROLES, "rater_role")
        self._choice(source, VERDICT_SOURCES, "source")
        row = self._checked(
            Rating(
                answer_id=answer_id,
                rater_id=rater_id,
                rater_role=rater_role,
                helpful=helpful,
                source=source,
                created_at=self._time(None),
            )
        )
        values = {column: getattr(row, column) for column in _RATING_COLUMNS}
        table = Rating.__table__  # type: ignore[attr-defined]
        insert: Any = (postgresql.insert if self.dialect == "postgresql" else sqlite.insert)(table).values(**values)
        changed = {name: insert.excluded[name] for name in ("helpful", "rater_role", "created_at")}
        upsert = insert.on_conflict_do_update(
            index_elements=["answer_id", "rater_id", "source"],
            index_where=literal_column(VERDICT_SOURCES_SQL),
            set_=changed,
            where=table.c.helpful.is_distinct_from(insert.excluded.helpful),
        ).returning(table.c.id)
        with self._session() as session:
            try:
                return session.exec(upsert).first() is not None
            except IntegrityError:
                session.rollback()  # the answer does not exist (the foreign key refused it)
                return None

    def remove_rating(self, answer_id: int, *, rater_id: str, source: RatingSource, helpful: bool | None) -> int:
        """Delete the matching ratings (a removed reaction); returns how many were deleted."""
        self._choice(source, RATING_SOURCES, "source")
        verdict = col(Rating.helpful).is_(None) if helpful is None else col(Rating.helpful) == helpful
        statement = (
            delete(Rating)
            .where(
                col(Rating.answer_id) == answer_id,
                col(Rating.rater_id) == clean_text(rater_id),
                col(Rating.source) == source,
                verdict,
            )
            .execution_options(synchronize_session=False)
        )
        with self._session() as session:
            return int(session.exec(statement).rowcount)
