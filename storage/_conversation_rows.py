"""Repository part: the conversation log's rows and reads, and the steps the whole operations are made of.

`ConversationRows` holds the row-level calls that stay public (creating a conversation, a message in a known
conversation, a further answer to a stored question, a correction or a clarifying pick as a rating row), the
reads, and the steps that `storage._conversations.ConversationLog` runs inside one transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, NoReturn

from sqlalchemy import update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from storage._base import RepositoryBase
from storage.errors import DuplicateEventError, StorageError
from storage.models import Answer, Conversation, Handoff, Message, Rating
from storage.text import clean_text

Role = Literal["user", "bot", "agent"]
RaterRole = Literal["agent", "customer"]
AnswerSource = Literal["intent", "retrieval", "clarify", "handoff"]
RatingSource = Literal["button", "reaction", "modal", "cli", "clarify", "review", "discovery"]
HandoffReason = Literal["abstained", "customer_request", "engine_error", "not_helpful", "delayed"]
ConversationSource = Literal["slack", "cli"]

ROLES: tuple[str, ...] = ("user", "bot", "agent")
RATER_ROLES: tuple[str, ...] = ("agent", "customer")
ANSWER_SOURCES: tuple[str, ...] = ("intent", "retrieval", "clarify", "handoff")
RATING_SOURCES: tuple[str, ...] = ("button", "reaction", "modal", "cli", "clarify", "review", "discovery")
"""Where a rating comes from: a Slack button, a reaction, the agents' correction modal, the terminal, or a
customer's pick in a clarifying question. The first, second and fourth hold one verdict per rater (`set_rating`)."""
HANDOFF_REASONS: tuple[str, ...] = ("abstained", "customer_request", "engine_error", "not_helpful", "delayed")
CONVERSATION_SOURCES: tuple[str, ...] = ("slack", "cli")
CLARIFY_SOURCE = "clarify"


@dataclass(frozen=True)
class ThreadRef:
    """Where a conversation lives: a Slack thread (or a terminal session: team `local`, channel `terminal`)."""

    team_id: str
    channel_id: str
    thread_ts: str


@dataclass(frozen=True)
class NewAnswer:
    """The engine's decision for a question, as stored (`Answer` without its ids, status and Slack place)."""

    text: str
    source: AnswerSource
    intent: str | None
    confidence: float | None
    doc_ids: Sequence[str] = ()
    doc_scores: Sequence[float] = ()
    model_version: str | None = None
    latency_ms: float | None = None


class ConversationRows(RepositoryBase):
    """Rows, reads and in-transaction steps of the conversation log (see `ConversationLog`)."""

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
        created_at: datetime | None = None,
    ) -> Rating:
        """Store a rating row: an agent's correction (`modal`), a customer's pick (`clarify`), or an import.

        A verdict from a Slack button, a reaction or the terminal goes through `set_rating` (one per rater);
        adding a second one here is refused.

        Args:
            answer_id: the rated answer.
            rater_id: who rated.
            rater_role: `agent` or `customer`.
            helpful: the verdict; None for a correction without a verdict.
            corrected_intent: the intent an agent (or a customer's pick) says was right.
            corrected_answer: the answer an agent says was right (PII-masked).
            source: one of `RATING_SOURCES` (checked).
            created_at: when (default now).

        Raises:
            StorageError: no such answer, a verdict already stored for this rater and source, or an invalid value.
        """
        self._choice(rater_role, RATER_ROLES, "rater_role")
        self._choice(source, RATING_SOURCES, "source")
        rating = self._checked(
            Rating(
                answer_id=answer_id,
                rater_id=rater_id,
                rater_role=rater_role,
                helpful=helpful,
                corrected_intent=corrected_intent,
                corrected_answer=self._optional_free_text(corrected_answer),
                source=source,
                created_at=self._time(created_at, "created_at"),
            )
        )
        with self._session() as session:
            session.add(rating)
            try:
                session.flush()
            except IntegrityError:
                session.rollback()
                if session.get(Answer, answer_id) is None:
                    raise StorageError(f"cannot rate answer {answer_id}: no such answer (purged?).") from None
                raise StorageError(
                    f"{rater_id!r} already has a {source} verdict on answer {answer_id}: use set_rating() to change it."
                ) from None
        return rating

    # --- rows (imports, agents' messages, follow-ups) --------------------------------------------
    def get_or_create_conversation(
        self,
        *,
        team_id: str,
        channel_id: str,
        thread_ts: str,
        started_by: str | None,
        source: ConversationSource = "slack",
        created_at: datetime | None = None,
    ) -> Conversation:
        """One conversation per (team, channel, thread); safe under concurrent callers (they share one row).

        Args:
            team_id: Slack workspace (or "local" for the terminal).
            channel_id: channel of the thread.
            thread_ts: timestamp of the thread's first message.
            started_by: user who opened the thread.
            source: "slack" or "cli".
            created_at: when it started (default now; for imports and tests).
        """
        self._choice(source, CONVERSATION_SOURCES, "source")
        when = self._time(created_at, "created_at")
        thread = ThreadRef(team_id, channel_id, thread_ts)
        with self._session() as session:
            return self._conversation_in(session, thread, started_by=started_by, source=source, when=when)

    def add_message(
        self,
        conversation_id: int,
        *,
        role: Role,
        text: str,
        user_id: str | None = None,
        slack_ts: str | None = None,
        event_id: str | None = None,
        created_at: datetime | None = None,
    ) -> Message:
        """Store a message in a known conversation (an agent's reply, an import) and move its last activity on.

        Args:
            conversation_id: the conversation.
            role: "user" (customer), "bot" or "agent".
            text: the message; masked when PII masking is on (see storage.text for normalisation).
            user_id: Slack user who wrote it.
            slack_ts: Slack timestamp of the message.
            event_id: Slack event id, for de-duplicating retried deliveries (the database's UNIQUE constraint).
            created_at: when it was written (default now).

        Raises:
            DuplicateEventError: `event_id` is already stored.
            StorageError: unknown conversation, or a value too long for its column.
        """
        self._choice(role, ROLES, "role")
        message = self._checked(
            Message(
                conversation_id=conversation_id,
                role=role,
                user_id=user_id,
                text=self._free_text(text),
                slack_ts=slack_ts,
                event_id=event_id,
                created_at=self._time(created_at, "created_at"),
            )
        )
        with self._session() as session:
            self._insert_message(session, message)
        return message

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
        created_at: datetime | None = None,
    ) -> Answer:
        """Store a further decision for a stored question (status `pending`): a clarifying question's follow-up.

        Raises:
            StorageError: unknown conversation or question, or an invalid source.
        """
        fields = NewAnswer(text, source, intent, confidence, doc_ids, doc_scores, model_version, latency_ms)
        answer = self._answer_row(fields, created_at=created_at)
        answer.conversation_id, answer.question_id = conversation_id, question_id
        with self._session() as session:
            session.add(answer)
            try:
                session.flush()
            except IntegrityError:
                session.rollback()
                raise StorageError(
                    f"cannot record an answer for conversation {conversation_id} / question {question_id}: "
                    "one of them does not exist (store the question with add_message() first)."
                ) from None
        return answer

    # --- reads ---------------------------------------------------------------------------------
    def find_conversation(self, *, team_id: str, channel_id: str, thread_ts: str) -> Conversation | None:
        """The conversation of a thread, or None."""
        with self._session() as session:
            return session.exec(thread_query(ThreadRef(team_id, channel_id, thread_ts))).first()

    def messages(self, conversation_id: int) -> list[Message]:
        """The conversation's messages, oldest first."""
        query = (
            select(Message)
            .where(Message.conversation_id == conversation_id)
            .order_by(col(Message.created_at), col(Message.id))
        )
        with self._session() as session:
            return list(session.exec(query).all())

    def get_answer(self, answer_id: int) -> Answer | None:
        """The answer with this id, or None."""
        with self._session() as session:
            return session.get(Answer, answer_id)

    def find_answer_by_slack_ts(self, *, channel_id: str, slack_ts: str) -> Answer | None:
        """The answer posted as message `slack_ts` in `channel_id` (for reactions), or None."""
        query = select(Answer).where(
            Answer.slack_ts == clean_text(slack_ts), Answer.channel_id == clean_text(channel_id)
        )
        with self._session() as session:
            return session.exec(query.order_by(col(Answer.id).desc())).first()

    def ratings(self, answer_id: int) -> list[Rating]:
        """The answer's ratings, oldest first."""
        query = select(Rating).where(Rating.answer_id == answer_id).order_by(col(Rating.created_at), col(Rating.id))
        with self._session() as session:
            return list(session.exec(query).all())

    def handoffs(self, conversation_id: int) -> list[Handoff]:
        """The conversation's hand-offs, oldest first."""
        query = (
            select(Handoff)
            .where(Handoff.conversation_id == conversation_id)
            .order_by(col(Handoff.created_at), col(Handoff.id))
        )
        with self._session() as session:
            return list(session.exec(query).all())

    # --- inside one transaction ------------------------------------------------------------------
    def _conversation_in(
        self, session: Session, thread: ThreadRef, *, started_by: str | None, source: str, when: datetime
    ) -> Conversation:
        """The thread's conversation, created if new; the loser of a concurrent creation reads the winner's row."""
        found = session.exec(thread_query(thread)).first()
        if found is not None:
            return found
        row = self._checked(
            Conversation(
                team_id=thread.team_id,
                channel_id=thread.channel_id,
                thread_ts=thread.thread_ts,
                started_by=started_by,
                source=source,
                created_at=when,
                last_activity_at=when,
            )
        )
        values = {column.key: getattr(row, column.key) for column in Conversation.__table__.columns}  # type: ignore[attr-defined]
        values.pop("id")
        table = Conversation.__table__  # type: ignore[attr-defined]
        insert: Any = (postgresql.insert if self.dialect == "postgresql" else sqlite.insert)(table).values(**values)
        session.exec(insert.on_conflict_do_nothing(index_elements=["team_id", "channel_id", "thread_ts"]))
        found = session.exec(thread_query(thread)).first()
        if found is None:  # pragma: no cover - the row was deleted between the two statements
            raise StorageError(f"could not create or find the conversation for thread {thread.thread_ts!r}: retry.")
        return found

    def _insert_message(self, session: Session, message: Message) -> None:
        """Insert a message and move its conversation's last activity forward (never back)."""
        session.add(message)
        try:
            session.flush()
        except IntegrityError:
            session.rollback()
            _explain_refused_message(session, message)
        session.exec(
            update(Conversation)
            .where(
                col(Conversation.id) == message.conversation_id,
                col(Conversation.last_activity_at) < message.created_at,
            )
            .values(last_activity_at=message.created_at)
            .execution_options(synchronize_session=False)
        )

    def _set_answer(self, session: Session, answer_id: int, values: dict[str, str | None]) -> tuple[int, str]:
        """Update an answer's posting fields; returns its (conversation id, text)."""
        statement = (
            update(Answer)
            .where(col(Answer.id) == answer_id)
            .values(**values)
            .returning(col(Answer.conversation_id), col(Answer.text))
        )
        row = session.exec(statement).first()
        if row is None:
            raise StorageError(f"no answer with id {answer_id}: it was never recorded or has been purged.")
        return int(row[0]), str(row[1])

    def _add_handoff(
        self,
        session: Session,
        conversation_id: int,
        answer_id: int | None,
        reason: str,
        agent_channel_ts: str | None,
        created_at: datetime | None = None,
    ) -> Handoff:
        handoff = self._checked(
            Handoff(
                conversation_id=conversation_id,
                answer_id=answer_id,
                reason=reason,
                agent_channel_ts=agent_channel_ts,
                created_at=self._time(created_at, "created_at"),
            )
        )
        session.add(handoff)
        try:
            session.flush()
        except IntegrityError:
            session.rollback()
            raise StorageError(
                f"cannot hand off conversation {conversation_id} (answer {answer_id}): no such conversation or answer."
            ) from None
        return handoff

    def _answer_row(self, answer: NewAnswer, *, created_at: datetime | None) -> Answer:
        self._choice(answer.source, ANSWER_SOURCES, "source")
        return self._checked(
            Answer(
                conversation_id=0,
                question_id=0,
                text=self._free_text(answer.text),
                source=answer.source,
                intent=answer.intent,
                confidence=answer.confidence,
                doc_ids=list(answer.doc_ids),
                doc_scores=list(answer.doc_scores),
                model_version=answer.model_version,
                latency_ms=answer.latency_ms,
                status="pending",
                created_at=self._time(created_at, "created_at"),
            )
        )

    def _checked_reason(self, reason: str | None) -> None:
        if reason is not None:
            self._choice(reason, HANDOFF_REASONS, "reason")


def thread_filter(thread: ThreadRef) -> tuple[Any, ...]:
    return (
        col(Conversation.team_id) == clean_text(thread.team_id),
        col(Conversation.channel_id) == clean_text(thread.channel_id),
        col(Conversation.thread_ts) == clean_text(thread.thread_ts),
    )


def thread_query(thread: ThreadRef) -> Any:
    return select(Conversation).where(*thread_filter(thread))


def row_id(row: Message | Answer) -> int:
    assert row.id is not None
    return row.id


def _explain_refused_message(session: Session, message: Message) -> NoReturn:
    if message.event_id is not None:
        duplicate = session.exec(select(Message.id).where(Message.event_id == message.event_id)).first()
        if duplicate is not None:
            raise DuplicateEventError(
                f"Slack event {message.event_id!r} is already stored as message {duplicate} "
                "(a retried delivery): skip it."
            )
    raise StorageError(
        f"conversation {message.conversation_id} does not exist: create it with get_or_create_conversation() first."
    )
