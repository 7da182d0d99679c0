"""Repository part: conversations, messages, answers, ratings and hand-offs (the conversation log)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Literal, NoReturn

from sqlalchemy import delete, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from storage._base import RepositoryBase
from storage.errors import DuplicateEventError, StorageError
from storage.models import Answer, Conversation, Handoff, Message, Rating
from storage.text import clean_text

Role = Literal["user", "bot", "agent"]
RaterRole = Literal["agent", "customer"]
AnswerSource = Literal["intent", "retrieval", "clarify", "handoff"]

ROLES: tuple[str, ...] = ("user", "bot", "agent")
RATER_ROLES: tuple[str, ...] = ("agent", "customer")
ANSWER_SOURCES: tuple[str, ...] = ("intent", "retrieval", "clarify", "handoff")


class ConversationLog(RepositoryBase):
    """Conversations, messages, answers, ratings and hand-offs."""

    # --- conversations and messages -----------------------------------------------------------
    def get_or_create_conversation(
        self,
        *,
        team_id: str,
        channel_id: str,
        thread_ts: str,
        started_by: str | None,
        source: str = "slack",
        created_at: datetime | None = None,
    ) -> Conversation:
        """One conversation per (team, channel, thread); safe under concurrent callers.

        Two processes creating the same thread at once both get the one row: the loser of the INSERT race
        reads the winner's row.

        Args:
            team_id: Slack workspace (or "local" for the terminal).
            channel_id: channel of the thread.
            thread_ts: timestamp of the thread's first message.
            started_by: user who opened the thread.
            source: "slack" or "cli".
            created_at: when it started (default now; for imports and tests).
        """
        found = self.find_conversation(team_id=team_id, channel_id=channel_id, thread_ts=thread_ts)
        if found is not None:
            return found
        when = self._time(created_at, "created_at")
        conversation = self._checked(
            Conversation(
                team_id=team_id,
                channel_id=channel_id,
                thread_ts=thread_ts,
                started_by=started_by,
                source=source,
                created_at=when,
                last_activity_at=when,
            )
        )
        with self._session() as session:
            session.add(conversation)
            try:
                session.flush()
                return conversation
            except IntegrityError:
                session.rollback()  # another process created it first
        found = self.find_conversation(team_id=team_id, channel_id=channel_id, thread_ts=thread_ts)
        if found is None:
            raise StorageError(f"could not create or find the conversation for thread {thread_ts!r}: retry.")
        return found

    def find_conversation(self, *, team_id: str, channel_id: str, thread_ts: str) -> Conversation | None:
        """The conversation of a thread, or None."""
        query = select(Conversation).where(
            Conversation.team_id == clean_text(team_id),
            Conversation.channel_id == clean_text(channel_id),
            Conversation.thread_ts == clean_text(thread_ts),
        )
        with self._session() as session:
            return session.exec(query).first()

    def get_conversation(self, conversation_id: int) -> Conversation | None:
        """The conversation with this id, or None."""
        with self._session() as session:
            return session.get(Conversation, conversation_id)

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
        """Store a message and move the conversation's last activity forward.

        Raises DuplicateEventError if `event_id` is already stored (a Slack retry); the check is the
        database's UNIQUE constraint, so it holds across processes.

        Args:
            conversation_id: the conversation (from get_or_create_conversation).
            role: "user" (customer), "bot" or "agent".
            text: the message; masked when PII masking is on (see storage.text for normalisation).
            user_id: Slack user who wrote it.
            slack_ts: Slack timestamp of the message.
            event_id: Slack event id, for de-duplicating retried deliveries.
            created_at: when it was written (default now).

        Raises:
            DuplicateEventError: `event_id` is already stored.
            StorageError: unknown conversation, or a value too long for its column.
        """
        self._choice(role, ROLES, "role")
        when = self._time(created_at, "created_at")
        message = self._checked(
            Message(
                conversation_id=conversation_id,
                role=role,
                user_id=user_id,
                text=self._free_text(text),
                slack_ts=slack_ts,
                event_id=event_id,
                created_at=when,
            )
        )
        with self._session() as session:
            session.add(message)
            try:
                session.flush()
            except IntegrityError:
                session.rollback()
                self._explain_refused_message(session, message, conversation_id)
            session.exec(
                update(Conversation)
                .where(col(Conversation.id) == conversation_id, col(Conversation.last_activity_at) < when)
                .values(last_activity_at=when)
                .execution_options(synchronize_session=False)
            )
        return message

    @staticmethod
    def _explain_refused_message(session: Session, message: Message, conversation_id: int) -> NoReturn:
        if message.event_id is not None:
            duplicate = session.exec(select(Message.id).where(Message.event_id == message.event_id)).first()
            if duplicate is not None:
                raise DuplicateEventError(
                    f"Slack event {message.event_id!r} is already stored as message {duplicate} "
                    "(a retried delivery): skip it."
                )
        raise StorageError(
            f"conversation {conversation_id} does not exist: create it with get_or_create_conversation() first."
        )

    def messages(self, conversation_id: int) -> list[Message]:
        """The conversation's messages, oldest first."""
        query = (
            select(Message)
            .where(Message.conversation_id == conversation_id)
            .order_by(col(Message.created_at), col(Message.id))
        )
        with self._session() as session:
            return list(session.exec(query).all())

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
        created_at: datetime | None = None,
    ) -> Answer:
        """Store the engine's decision before it is posted (status 'pending').

        Raises:
            StorageError: unknown conversation or question, or an invalid source.
        """
        self._choice(source, ANSWER_SOURCES, "source")
        answer = self._checked(
            Answer(
                conversation_id=conversation_id,
                question_id=question_id,
                text=self._free_text(text),
                source=source,
                intent=intent,
                confidence=confidence,
                doc_ids=list(doc_ids),
                doc_scores=list(doc_scores),
                model_version=model_version,
                latency_ms=latency_ms,
                status="pending",
                created_at=self._time(created_at, "created_at"),
            )
        )
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

    def mark_answer_posted(self, answer_id: int, *, channel_id: str, slack_ts: str) -> None:
        """Record where the answer was posted (status 'posted').

        Raises:
            StorageError: no such answer.
        """
        self._update_answer(answer_id, status="posted", channel_id=channel_id, slack_ts=slack_ts, error=None)

    def mark_answer_failed(self, answer_id: int, *, error: str) -> None:
        """Record that posting the answer failed (status 'failed') and why.

        Raises:
            StorageError: no such answer.
        """
        self._update_answer(answer_id, status="failed", error=error)

    def _update_answer(self, answer_id: int, **values: str | None) -> None:
        with self._session() as session:
            answer = session.get(Answer, answer_id)
            if answer is None:
                raise StorageError(f"no answer with id {answer_id}: it was never recorded or has been purged.")
            for name, value in values.items():
                setattr(answer, name, value)
            session.add(self._checked(answer))

    def get_answer(self, answer_id: int) -> Answer | None:
        """The answer with this id, or None."""
        with self._session() as session:
            return session.get(Answer, answer_id)

    def find_answer_by_slack_ts(self, *, channel_id: str, slack_ts: str) -> Answer | None:
        """The answer posted as message `slack_ts` in `channel_id` (for reactions and buttons), or None."""
        query = select(Answer).where(
            Answer.slack_ts == clean_text(slack_ts), Answer.channel_id == clean_text(channel_id)
        )
        with self._session() as session:
            return session.exec(query.order_by(col(Answer.id).desc())).first()

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
        created_at: datetime | None = None,
    ) -> Rating:
        """Store a rating or correction. Raises StorageError if the answer does not exist.

        Args:
            answer_id: the rated answer.
            rater_id: Slack user who rated.
            rater_role: "agent" or "customer".
            helpful: the verdict; None for a correction without a verdict.
            corrected_intent: the intent an agent says was right.
            corrected_answer: the answer an agent says was right (PII-masked).
            source: "button", "reaction", "modal", "cli" or "clarify" (a customer's pick in a clarifying question).
            created_at: when (default now).
        """
        self._choice(rater_role, RATER_ROLES, "rater_role")
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
                raise StorageError(f"cannot rate answer {answer_id}: no such answer (purged?).") from None
        return rating

    def remove_rating(self, answer_id: int, *, rater_id: str, source: str, helpful: bool | None) -> int:
        """Delete the matching ratings (a removed reaction); returns how many were deleted."""
        verdict = col(Rating.helpful).is_(None) if helpful is None else col(Rating.helpful) == helpful
        statement = (
            delete(Rating)
            .where(
                col(Rating.answer_id) == answer_id,
                col(Rating.rater_id) == clean_text(rater_id),
                col(Rating.source) == clean_text(source),
                verdict,
            )
            .execution_options(synchronize_session=False)
        )
        with self._session() as session:
            return session.exec(statement).rowcount

    def ratings(self, answer_id: int) -> list[Rating]:
        """The answer's ratings, oldest first."""
        query = select(Rating).where(Rating.answer_id == answer_id).order_by(col(Rating.created_at), col(Rating.id))
        with self._session() as session:
            return list(session.exec(query).all())

    def add_handoff(
        self,
        conversation_id: int,
        *,
        answer_id: int | None,
        reason: str,
        agent_channel_ts: str | None = None,
        created_at: datetime | None = None,
    ) -> Handoff:
        """Record that a question was passed to a human agent.

        Args:
            conversation_id: the conversation.
            answer_id: the answer that abstained or was found unhelpful (None for a plain request).
            reason: "abstained", "customer_request" or "not_helpful".
            agent_channel_ts: timestamp of the notice in the agents' channel.
            created_at: when (default now).

        Raises:
            StorageError: unknown conversation or answer.
        """
        handoff = self._checked(
            Handoff(
                conversation_id=conversation_id,
                answer_id=answer_id,
                reason=reason,
                agent_channel_ts=agent_channel_ts,
                created_at=self._time(created_at, "created_at"),
            )
        )
        with self._session() as session:
            session.add(handoff)
            try:
                session.flush()
            except IntegrityError:
                session.rollback()
                raise StorageError(
                    f"cannot hand off conversation {conversation_id} (answer {answer_id}): no such conversation "
                    "or answer."
                ) from None
        return handoff

    def handoffs(self, conversation_id: int) -> list[Handoff]:
        """The conversation's hand-offs, oldest first."""
        query = (
            select(Handoff)
            .where(Handoff.conversation_id == conversation_id)
            .order_by(col(Handoff.created_at), col(Handoff.id))
        )
        with self._session() as session:
            return list(session.exec(query).all())
