"""Repository part: the agents' work lists (the review queue, intent-discovery proposals) and the postings the
nightly job makes once per key (its digest).

A label given from the queue or by accepting a proposal is stored as an agent rating with `corrected_intent`,
the same row a correction in the thread makes, so the nightly job learns it the same way.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import delete, func
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import col, select

from storage._reports import RatedAnswer, Reports
from storage.models import Answer, Message, Posting, Proposal, Rating, ReviewItem, utcnow

ProposalStatus = Literal["waiting", "accepted", "dismissed"]
PROPOSAL_STATUSES: tuple[str, ...] = ("waiting", "accepted", "dismissed")


@dataclass(frozen=True)
class NewReviewItem:
    """One ranked question for `replace_review_queue`."""

    answer_id: int
    priority: float
    guesses: Sequence[tuple[str, float]]
    reasons: Sequence[str]


@dataclass(frozen=True)
class QueueEntry:
    """A question waiting in the review queue, with the answer the bot gave."""

    item: ReviewItem
    answer: Answer
    question: str


def _labelled_by_agent() -> Any:
    """Ids of answers an agent has already labelled or rated (they leave the queue and discovery)."""
    return select(Rating.answer_id).where(col(Rating.rater_role) == "agent")


class Curation(Reports):
    """Review queue, intent-discovery proposals and once-per-key postings."""

    # --- what needs a label --------------------------------------------------------------------
    def unlabelled_answers(self, since: datetime, *, limit: int = 5000) -> list[RatedAnswer]:
        """The newest answers (at most `limit`) created at or after `since` that no agent has rated or
        labelled, with their questions and ratings, oldest first."""
        since = self._time(since, "since")
        newest = (
            select(Answer.id)
            .where(col(Answer.created_at) >= since, col(Answer.id).not_in(_labelled_by_agent()))
            .order_by(col(Answer.created_at).desc(), col(Answer.id).desc())
            .limit(max(0, limit))
        )
        return self._rated_answers(col(Answer.id).in_(newest))

    # --- review queue ----------------------------------------------------------------------------
    def replace_review_queue(self, items: Sequence[NewReviewItem], *, model_version: str | None) -> int:
        """Replace the whole queue by `items` (one transaction); returns how many are queued."""
        now = utcnow()
        rows = [
            self._checked(
                ReviewItem(
                    answer_id=item.answer_id,
                    priority=float(item.priority),
                    guesses=[[label, float(p)] for label, p in item.guesses],
                    reasons=list(item.reasons),
                    model_version=model_version,
                    created_at=now,
                )
            )
            for item in {item.answer_id: item for item in items}.values()
        ]
        with self._session() as session:
            session.exec(delete(ReviewItem))
            existing = set(session.exec(select(Answer.id).where(col(Answer.id).in_([r.answer_id for r in rows]))))
            session.add_all([row for row in rows if row.answer_id in existing])
            return sum(row.answer_id in existing for row in rows)

    def review_queue(self, limit: int = 20) -> list[QueueEntry]:
        """The queued questions no agent has labelled yet, highest priority first."""
        query = (
            select(ReviewItem, Answer, Message.text)
            .join(Answer, col(Answer.id) == col(ReviewItem.answer_id))
            .join(Message, col(Message.id) == col(Answer.question_id))
            .where(col(ReviewItem.answer_id).not_in(_labelled_by_agent()))
            .order_by(col(ReviewItem.priority).desc(), col(ReviewItem.id))
            .limit(max(0, limit))
        )
        with self._session() as session:
            return [QueueEntry(item, answer, text) for item, answer, text in session.exec(query).all()]

    def question_text(self, answer_id: int) -> str | None:
        """The text of the question an answer answered, or None when the answer is gone."""
        query = (
            select(Message.text).join(Answer, col(Answer.question_id) == col(Message.id)).where(Answer.id == answer_id)
        )
        with self._session() as session:
            return session.exec(query).first()

    def review_queue_size(self) -> int:
        """How many queued questions wait for a label."""
        query = (
            select(func.count()).select_from(ReviewItem).where(col(ReviewItem.answer_id).not_in(_labelled_by_agent()))
        )
        with self._session() as session:
            return int(session.exec(query).one())

    # --- intent-discovery proposals ----------------------------------------------------------------
    def add_proposal(
        self, answer_ids: Sequence[int], typical: Sequence[str], *, cohesion: float, nearest_intent: str | None
    ) -> Proposal:
        """Store a waiting proposal of these answers' questions, named by its `typical` questions."""
        row = self._checked(
            Proposal(
                answer_ids=[int(i) for i in answer_ids],
                typical=[self._free_text(text) for text in typical],
                cohesion=float(cohesion),
                nearest_intent=nearest_intent,
                created_at=utcnow(),
            )
        )
        with self._session() as session:
            session.add(row)
        return row

    def update_proposal(
        self, proposal_id: int, answer_ids: Sequence[int], typical: Sequence[str], *, cohesion: float
    ) -> Proposal | None:
        """Give a waiting proposal the members found tonight; None when it is gone or already decided."""
        with self._session() as session:
            row = session.get(Proposal, proposal_id)
            if row is None or row.status != "waiting":
                return None
            row.answer_ids = [int(i) for i in answer_ids]
            row.typical = [self._free_text(text) for text in typical]
            row.cohesion = float(cohesion)
            session.add(self._checked(row))
            return row

    def proposals(self, status: ProposalStatus | None = None) -> list[Proposal]:
        """Proposals (of one status), newest first."""
        query = select(Proposal).order_by(col(Proposal.created_at).desc(), col(Proposal.id).desc())
        if status is not None:
            query = query.where(col(Proposal.status) == self._choice(status, PROPOSAL_STATUSES, "status"))
        with self._session() as session:
            return list(session.exec(query).all())

    def get_proposal(self, proposal_id: int) -> Proposal | None:
        """The proposal with this id, or None."""
        with self._session() as session:
            return session.get(Proposal, proposal_id)

    def set_proposal_message(self, proposal_id: int, *, channel_id: str, slack_ts: str) -> None:
        """Remember where the proposal was posted (to update it once decided)."""
        with self._session() as session:
            row = session.get(Proposal, proposal_id)
            if row is not None:
                row.channel_id, row.slack_ts = channel_id, slack_ts
                session.add(self._checked(row))

    def decide_proposal(
        self,
        proposal_id: int,
        *,
        status: Literal["accepted", "dismissed"],
        agent_id: str,
        intent: str | None = None,
        answer: str | None = None,
    ) -> Proposal | None:
        """Accept (as intent `intent`, with the agent's `answer`) or dismiss a waiting proposal, in one transaction.

        Accepting labels every member question `intent` (an agent rating, source `discovery`) except those an
        agent has labelled or rated already; the answer is stored on the most typical of them, so it becomes the
        intent's curated answer and one knowledge-base article. Returns None when the proposal is gone or was
        already decided (by another agent).
        """
        self._choice(status, ("accepted", "dismissed"), "status")
        if status == "accepted" and not (intent or "").strip():
            raise ValueError("an accepted proposal needs an intent name")
        now = utcnow()
        with self._session() as session:
            row = session.get(Proposal, proposal_id, with_for_update=True)
            if row is None or row.status != "waiting":
                return None
            row.status, row.decided_by, row.decided_at = status, agent_id, now
            row.intent = intent.strip() if status == "accepted" and intent else None
            session.add(self._checked(row))
            if status == "accepted":
                present = set(session.exec(select(Answer.id).where(col(Answer.id).in_(row.answer_ids))))
                labelled = set(
                    session.exec(_labelled_by_agent().where(col(Rating.answer_id).in_(row.answer_ids)))
                )  # an agent already decided these (from the queue or the thread): that label stands
                members = [i for i in row.answer_ids if i in present and i not in labelled]
                for position, answer_id in enumerate(members):
                    written = answer if position == 0 and answer and answer.strip() else None
                    rating = Rating(
                        answer_id=answer_id,
                        rater_id=agent_id,
                        rater_role="agent",
                        helpful=None,
                        corrected_intent=row.intent,
                        corrected_answer=self._optional_free_text(written),
                        source="discovery",
                        created_at=now,
                    )
                    session.add(self._checked(rating))
            return row

    # --- postings (once per key) ---------------------------------------------------------------------
    def posting(self, key: str) -> Posting | None:
        """The posting made under `key`, or None."""
        with self._session() as session:
            return session.exec(select(Posting).where(col(Posting.key) == key)).first()

    def latest_posting(self, prefix: str) -> Posting | None:
        """The newest posting whose key starts with `prefix` (e.g. the last digest), or None."""
        query = select(Posting).where(col(Posting.key).startswith(prefix, autoescape=True))
        with self._session() as session:
            return session.exec(query.order_by(col(Posting.created_at).desc(), col(Posting.id).desc())).first()

    def record_posting(
        self, key: str, *, channel_id: str | None, slack_ts: str | None, content: dict[str, Any]
    ) -> None:
        """Record (or update) what was posted under `key` and where."""
        row = self._checked(Posting(key=key, channel_id=channel_id, slack_ts=slack_ts, content=content))
        values = row.model_dump(exclude={"id"})
        insert: Any = (postgresql.insert if self.dialect == "postgresql" else sqlite.insert)(Posting).values(**values)
        upsert = insert.on_conflict_do_update(
            index_elements=["key"], set_={name: insert.excluded[name] for name in ("channel_id", "slack_ts", "content")}
        )
        with self._session() as session:
            session.exec(upsert)
