"""Repository part: read-only views for the nightly job and the agents' App Home.

Every query here filters on an indexed time column and loads ratings for a whole list of answers in one
query (no N+1).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, func
from sqlmodel import col, select

from storage._base import RepositoryBase
from storage.models import Answer, Handoff, Message, Rating


@dataclass(frozen=True)
class RatedAnswer:
    """An answer with the question it answered and every rating it received (nightly-job view)."""

    answer: Answer
    question: Message
    ratings: list[Rating] = field(default_factory=list)


@dataclass(frozen=True)
class Stats:
    """Counts for the agents' App Home over a time window.

    Attributes:
        questions: customer messages (role "user").
        answered: answers given by the bot (source "intent" or "retrieval").
        handed_off: hand-offs to a human.
        rated: ratings with a verdict (helpful or not).
        helpful: ratings saying "helpful".
        unhelpful_by_intent: (intent, "not helpful" ratings), most first; answers without an intent are
            grouped under their source in brackets, e.g. "[retrieval]".
    """

    questions: int
    answered: int
    handed_off: int
    rated: int
    helpful: int
    unhelpful_by_intent: list[tuple[str, int]]


class Reports(RepositoryBase):
    """Queries over time windows: rated answers, answers in a window, App Home statistics."""

    def ratings_since(self, since: datetime) -> list[RatedAnswer]:
        """Every answer rated or corrected at or after `since`, with its question and all its ratings.

        Answers come oldest first; each answer's ratings oldest first (including ratings before `since`).
        """
        since = self._time(since, "since")
        rated = select(Rating.answer_id).where(col(Rating.created_at) >= since)
        return self._rated_answers(col(Answer.id).in_(rated))

    def answers_between(self, start: datetime, end: datetime) -> list[RatedAnswer]:
        """Answers created in [start, end), with their questions and ratings, oldest first."""
        start, end = self._time(start, "start"), self._time(end, "end")
        return self._rated_answers((col(Answer.created_at) >= start) & (col(Answer.created_at) < end))

    def handed_off_answers(self, start: datetime, end: datetime) -> set[int]:
        """Ids of the answers whose question was handed to a person in [start, end)."""
        start, end = self._time(start, "start"), self._time(end, "end")
        query = select(Handoff.answer_id).where(
            col(Handoff.created_at) >= start, col(Handoff.created_at) < end, col(Handoff.answer_id).is_not(None)
        )
        with self._session() as session:
            return {int(answer_id) for answer_id in session.exec(query).all() if answer_id is not None}

    def _rated_answers(self, condition: ColumnElement[bool]) -> list[RatedAnswer]:
        answers_query = (
            select(Answer, Message)
            .join(Message, col(Answer.question_id) == col(Message.id))
            .where(condition)
            .order_by(col(Answer.created_at), col(Answer.id))
        )
        ratings_query = (
            select(Rating)
            .where(col(Rating.answer_id).in_(select(Answer.id).where(condition)))
            .order_by(col(Rating.created_at), col(Rating.id))
        )
        with self._session() as session:
            pairs = session.exec(answers_query).all()
            ratings = session.exec(ratings_query).all() if pairs else []
        by_answer: defaultdict[int | None, list[Rating]] = defaultdict(list)
        for rating in ratings:
            by_answer[rating.answer_id].append(rating)
        return [RatedAnswer(answer, question, by_answer.get(answer.id, [])) for answer, question in pairs]

    def stats(self, since: datetime) -> Stats:
        """Counts of questions, answers, hand-offs and ratings created at or after `since` (see `Stats`)."""
        since = self._time(since, "since")
        recent_ratings = col(Rating.created_at) >= since
        with self._session() as session:

            def count(model: Any, *conditions: ColumnElement[bool]) -> int:
                return session.exec(select(func.count()).select_from(model).where(*conditions)).one()

            questions = count(Message, col(Message.created_at) >= since, col(Message.role) == "user")
            answered = count(Answer, col(Answer.created_at) >= since, col(Answer.source) != "handoff")
            handed_off = count(Handoff, col(Handoff.created_at) >= since)
            rated = count(Rating, recent_ratings, col(Rating.helpful).is_not(None))
            helpful = count(Rating, recent_ratings, col(Rating.helpful).is_(True))
            groups = session.exec(
                select(Answer.intent, Answer.source, func.count())
                .join(Rating, col(Rating.answer_id) == col(Answer.id))
                .where(recent_ratings, col(Rating.helpful).is_(False))
                .group_by(col(Answer.intent), col(Answer.source))
            ).all()
        unhelpful: Counter[str] = Counter()
        for intent, source, number in groups:
            unhelpful[intent or f"[{source}]"] += number
        return Stats(
            questions=questions,
            answered=answered,
            handed_off=handed_off,
            rated=rated,
            helpful=helpful,
            unhelpful_by_intent=sorted(unhelpful.items(), key=lambda item: (-item[1], item[0])),
        )
