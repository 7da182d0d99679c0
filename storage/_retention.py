"""Repository part: deleting data (retention purge, a user's right to be forgotten).

Rows are deleted children first (ratings, hand-offs, answers, messages, conversations) so that every count
is exact; the foreign keys' ON DELETE CASCADE only backs this up.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Delete, delete
from sqlmodel import Session, col, select
from sqlmodel.sql.expression import SelectOfScalar

from storage._base import RepositoryBase
from storage.models import Answer, Conversation, EvalExample, Handoff, Message, Proposal, Rating
from storage.text import clean_text, text_key

_KEY_CHUNK = 500


class Retention(RepositoryBase):
    """Deletions: old conversations, and everything a user wrote or rated."""

    def purge_older_than(self, cutoff: datetime, *, dry_run: bool = False) -> dict[str, int]:
        """Delete conversations (and everything under them) last active before `cutoff`; counts per table.

        Args:
            cutoff: conversations whose last activity is strictly earlier are deleted.
            dry_run: count what would be deleted, delete nothing.

        Returns:
            Rows deleted per table: conversations, messages, answers, ratings, handoffs; and `proposals`: the
            intent-discovery proposals that lost members (their copied questions go with them).
        """
        cutoff = self._time(cutoff, "cutoff")
        old = select(Conversation.id).where(col(Conversation.last_activity_at) < cutoff)
        with self._session() as session:
            counts = self._delete_conversations(session, old, messages_of=None, ratings_by=None)
            if dry_run:
                session.rollback()
        return counts

    def forget_user(self, user_id: str, *, dry_run: bool = False) -> dict[str, int]:
        """Delete the user's conversations, messages and ratings (and nothing else); counts per table.

        Deleted: conversations the user started (with every message, answer, rating and hand-off in
        them); the user's messages in other conversations (with the answers to them and their ratings);
        the user's ratings anywhere; and frozen evaluation examples taken from the user's messages
        (origin "log", same text). Other users' data is untouched.

        Args:
            user_id: Slack user id.
            dry_run: count what would be deleted, delete nothing.

        Returns:
            Rows deleted per table: conversations, messages, answers, ratings, handoffs, eval_examples; and
            `proposals`: the intent-discovery proposals that lost members (their copied questions go with them).
        """
        user_id = clean_text(user_id)
        started = select(Conversation.id).where(Conversation.started_by == user_id)
        with self._session() as session:
            keys = {text_key(text) for text in session.exec(select(Message.text).where(Message.user_id == user_id))}
            counts = self._delete_conversations(session, started, messages_of=user_id, ratings_by=user_id)
            ordered = sorted(keys)
            counts["eval_examples"] = 0
            for start in range(0, len(ordered), _KEY_CHUNK):
                counts["eval_examples"] += self._delete(
                    session,
                    delete(EvalExample).where(
                        col(EvalExample.origin) == "log",
                        col(EvalExample.text_key).in_(ordered[start : start + _KEY_CHUNK]),
                    ),
                )
            if dry_run:
                session.rollback()
        return counts

    def _delete_conversations(
        self,
        session: Session,
        conversations: SelectOfScalar[Any],
        *,
        messages_of: str | None,
        ratings_by: str | None,
    ) -> dict[str, int]:
        """Delete `conversations` (a subquery of ids) with their rows, plus one user's messages and ratings."""
        messages: ColumnElement[bool] = col(Message.conversation_id).in_(conversations)
        answers: ColumnElement[bool] = col(Answer.conversation_id).in_(conversations)
        if messages_of is not None:
            messages = messages | (col(Message.user_id) == messages_of)
            answers = answers | col(Answer.question_id).in_(select(Message.id).where(Message.user_id == messages_of))
        ratings: ColumnElement[bool] = col(Rating.answer_id).in_(select(Answer.id).where(answers))
        if ratings_by is not None:
            ratings = ratings | (col(Rating.rater_id) == ratings_by)
        gone = {int(i) for i in session.exec(select(Answer.id).where(answers)) if i is not None}
        counts = {
            "ratings": self._delete(session, delete(Rating).where(ratings)),
            "handoffs": self._delete(session, delete(Handoff).where(col(Handoff.conversation_id).in_(conversations))),
            "answers": self._delete(session, delete(Answer).where(answers)),
            "messages": self._delete(session, delete(Message).where(messages)),
            "conversations": self._delete(session, delete(Conversation).where(col(Conversation.id).in_(conversations))),
        }
        counts["proposals"] = self._prune_proposals(session, gone)
        return counts

    @staticmethod
    def _prune_proposals(session: Session, gone: set[int]) -> int:
        """Take deleted answers out of the intent-discovery proposals: a proposal's typical questions (copies of
        what customers wrote) are rebuilt from the members left, and one with none left is deleted. Returns how
        many proposals changed."""
        if not gone:
            return 0
        changed = 0
        for proposal in session.exec(select(Proposal)).all():
            if not gone & set(proposal.answer_ids):
                continue
            changed += 1
            left = [i for i in proposal.answer_ids if i not in gone]
            if not left:
                session.delete(proposal)
                continue
            texts = dict(
                session.exec(
                    select(Answer.id, Message.text)
                    .join(Message, col(Message.id) == col(Answer.question_id))
                    .where(col(Answer.id).in_(left))
                ).all()
            )
            proposal.answer_ids = left
            proposal.typical = [texts[i] for i in left if i in texts][: len(proposal.typical) or 5]
            session.add(proposal)
        return changed

    @staticmethod
    def _delete(session: Session, statement: Delete) -> int:
        return session.exec(statement.execution_options(synchronize_session=False)).rowcount
