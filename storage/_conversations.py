"""Repository part: the conversation log as whole operations, each one transaction.

A front end (Slack or the terminal) accounts for one answered question with at most three calls:

1. `thread_state(thread, event_id=...)` (read): the thread's conversation, whether a human agent is handling
   it, and whether this event is already stored (a retried delivery stops here, before the engine runs);
2. `record_question_turn(...)` (write): the conversation (created if new), the customer's message and the
   engine's decision (status `pending`), together, so an answer never exists without its question;
3. `mark_posted(...)` / `mark_failed(...)` (write): where the answer was posted (or why not), the bot's message
   in the thread and, when the bot handed off, the hand-off.

Ratings are set with one atomic upsert (`set_rating`: one verdict per rater, answer and source, enforced by a
unique index), a button's context is one query (`answer_context`). The row-level calls below them
(`get_or_create_conversation`, `add_message`, `record_answer`, `add_rating`) stay for imports, the agents'
own messages, a clarifying question's follow-up and corrections.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, NoReturn

from sqlalchemy import delete, exists, literal_column, update
from sqlalchemy import select as sa_select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from storage._base import RepositoryBase
from storage.errors import DuplicateEventError, StorageError
from storage.models import VERDICT_SOURCES, VERDICT_SOURCES_SQL, Answer, Conversation, Handoff, Message, Rating
from storage.text import clean_text

Role = Literal["user", "bot", "agent"]
RaterRole = Literal["agent", "customer"]
AnswerSource = Literal["intent", "retrieval", "clarify", "handoff"]
RatingSource = Literal["button", "reaction", "modal", "cli", "clarify"]
HandoffReason = Literal["abstained", "customer_request", "engine_error", "not_helpful"]
ConversationSource = Literal["slack", "cli"]

ROLES: tuple[str, ...] = ("user", "bot", "agent")
RATER_ROLES: tuple[str, ...] = ("agent", "customer")
ANSWER_SOURCES: tuple[str, ...] = ("intent", "retrieval", "clarify", "handoff")
RATING_SOURCES: tuple[str, ...] = ("button", "reaction", "modal", "cli", "clarify")
"""Where a rating comes from: a Slack button, a reaction, the agents' correction modal, the terminal, or a
customer's pick in a clarifying question. The first, second and fourth hold one verdict per rater (`set_rating`)."""
HANDOFF_REASONS: tuple[str, ...] = ("abstained", "customer_request", "engine_error", "not_helpful")
CONVERSATION_SOURCES: tuple[str, ...] = ("slack", "cli")
CLARIFY_SOURCE = "clarify"


@dataclass(frozen=True)
class ThreadRef:
    """Where a conversation lives: a Slack thread (or a terminal session: team `local`, channel `terminal`)."""

    team_id: str
    channel_id: str
    thread_ts: str


@dataclass(frozen=True)
class ThreadState:
    """What a front end needs to know before it asks the engine (`thread_state`)."""

    conversation: Conversation | None
    """The thread's conversation; None for a thread the bot has not seen."""
    human_handling: bool
    """An agent has written in the thread: the bot stays quiet there."""
    seen: bool
    """The event is already stored (a retried or doubly delivered event): drop it."""


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


class ConversationLog(RepositoryBase):
    """Conversations, messages, answers, ratings and hand-offs."""

    # --- one answered question ------------------------------------------------------------------
    def thread_state(self, thread: ThreadRef, *, event_id: str | None = None) -> ThreadState:
        """The thread's conversation, whether a human is handling it, and whether `event_id` is stored (one read)."""
        with self._session() as session:
            conversation = session.exec(_thread_query(thread)).first()
            human = conversation is not None and bool(
                session.scalar(
                    sa_select(
                        exists().where(col(Message.conversation_id) == conversation.id, col(Message.role) == "agent")
                    )
                )
            )
            seen = event_id is not None and bool(
                session.scalar(sa_select(exists().where(col(Message.event_id) == clean_text(event_id))))
            )
        return ThreadState(conversation, human, seen)

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
            asked_at: when the question arrived (default now); the answer is timed at the call.

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
        record = None if answer is None else self._answer_row(answer, created_at=None)
        with self._session() as session:
            conversation = self._conversation_in(session, thread, started_by=user_id, source=source, when=when)
            assert conversation.id is not None
            question.conversation_id = conversation.id
            self._insert_message(session, question)
            if record is None:
                return Turn(conversation, _id(question), None)
            record.conversation_id, record.question_id = conversation.id, _id(question)
            session.add(record)
            session.flush()
            return Turn(conversation, _id(question), _id(record))

    def mark_posted(
        self,
        answer_id: int,
        *,
        channel_id: str,
        slack_ts: str,
        handoff: HandoffReason | None = None,
        agent_channel_ts: str | None = None,
    ) -> None:
        """Record that the answer was posted as message `slack_ts`: status `posted`, the bot's message in the
        thread and, when the bot handed off (`handoff` is the reason), the hand-off.

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

    def mark_failed(
        self,
        answer_id: int,
        *,
        error: str,
        handoff: HandoffReason | None = None,
        agent_channel_ts: str | None = None,
    ) -> None:
        """Record that posting the answer failed (status `failed`) and why, and the hand-off if there was one.

        Raises:
            StorageError: no such answer, or an invalid reason.
        """
        self._checked_reason(handoff)
        with self._session() as session:
            conversation_id, _ = self._set_answer(session, answer_id, {"status": "failed", "error": clean_text(error)})
            if handoff is not None:
                self._add_handoff(session, conversation_id, answer_id, handoff, agent_channel_ts)

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
            .where(col(Answer.id) == answer_id, *_thread_filter(thread))
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
            return session.exec(_thread_query(ThreadRef(team_id, channel_id, thread_ts))).first()

    def messages(self, conversation_id: int) -> list[Message]:
        """The conversation's messages, oldest first."""
        query = (
            select(Message)
            .where(Message.conversation_id == conversation_id)
            .order_by(col(Message.created_at), col(Message.id))
        )
        with self._session() as session:
            return list(session.exec(query).all())

    def get_conversation(self, conversation_id: int) -> Conversation | None:
        """The conversation with this id, or None."""
        with self._session() as session:
            return session.get(Conversation, conversation_id)

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
        found = session.exec(_thread_query(thread)).first()
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
        found = session.exec(_thread_query(thread)).first()
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


_RATING_COLUMNS = ("answer_id", "rater_id", "rater_role", "helpful", "corrected_intent", "corrected_answer", "source",
                   "created_at")  # fmt: skip


def _thread_filter(thread: ThreadRef) -> tuple[Any, ...]:
    return (
        col(Conversation.team_id) == clean_text(thread.team_id),
        col(Conversation.channel_id) == clean_text(thread.channel_id),
        col(Conversation.thread_ts) == clean_text(thread.thread_ts),
    )


def _thread_query(thread: ThreadRef) -> Any:
    return select(Conversation).where(*_thread_filter(thread))


def _id(row: Message | Answer) -> int:
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
