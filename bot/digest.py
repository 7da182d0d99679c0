"""The nightly digest: how the bot did over the last day, what the model change was, what waits for agents.

Built by the nightly job after training (`build`), posted to the agents' channel and shown in the App Home
(`lines`). One digest per UTC day (`key`): a second run the same day (a re-run, a retry) updates the posted
message instead of posting another.

Figures, over the 24 hours before the run:

* **automation rate**: questions answered by the bot (a curated intent answer or an article) and neither rated
  "not helpful" nor handed to a person, over all questions;
* **hand-off rate**: questions handed to a person (by the bot or at the customer's request), over all questions;
* **ratings**: helpful / not helpful verdicts on the day's answers;
* **failing intents**: the intents with the most "not helpful" ratings and agent corrections to another intent;
* **model**: what the run did (promoted, kept production and why, nothing to do, failed);
* **waiting**: new-intent proposals and review-queue questions without an agent's decision.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any

from bot.slack.blocks import escape
from storage.repository import Repository

KEY_PREFIX = "digest:"
ANSWERED_SOURCES = ("intent", "retrieval")
FAILING_SHOWN = 5
MODEL_CHARS = 1500
"""The model line is cut here (a failed run's reason can be long; a section holds 3,000 characters)."""


def key(now: datetime) -> str:
    """The digest's key for the UTC day of `now` (one digest per day)."""
    return f"{KEY_PREFIX}{now.date().isoformat()}"


@dataclass(frozen=True)
class Digest:
    """The figures of one digest (see the module docstring); stored as JSON with the posting."""

    day: str
    questions: int
    automated: int
    handed_off: int
    helpful: int
    unhelpful: int
    failing: list[tuple[str, int]] = field(default_factory=list)
    model: str = ""
    proposals_waiting: int = 0
    queue: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Digest:
        """A stored digest; unknown keys are ignored."""
        known = {name: data[name] for name in cls.__dataclass_fields__ if name in data}
        known["failing"] = [(str(intent), int(n)) for intent, n in known.get("failing", [])]
        return cls(**known)


def build(repo: Repository, *, now: datetime, model: str) -> Digest:
    """The digest of the 24 hours before `now`, with `model` as what tonight's run did."""
    start = now - timedelta(days=1)
    answers = repo.answers_between(start, now)
    handed = repo.handed_off_answers(start, now)
    by_question: defaultdict[int, list[Any]] = defaultdict(list)
    for item in answers:
        by_question[item.answer.question_id].append(item)
    automated = handed_off = helpful = unhelpful = 0
    failing: Counter[str] = Counter()
    for items in by_question.values():
        verdicts = [r.helpful for item in items for r in item.ratings if r.helpful is not None]
        helpful += sum(v is True for v in verdicts)
        unhelpful += sum(v is False for v in verdicts)
        was_handed = any(item.answer.id in handed or item.answer.source == "handoff" for item in items)
        handed_off += was_handed
        answered = any(item.answer.source in ANSWERED_SOURCES for item in items)
        automated += answered and not was_handed and False not in verdicts
        for item in items:
            intent = item.answer.intent
            if item.answer.source != "intent" or not intent:
                continue
            for rating in item.ratings:
                corrected = rating.rater_role == "agent" and rating.corrected_intent not in (None, "", intent)
                if rating.helpful is False or corrected:
                    failing[intent] += 1
    return Digest(
        day=now.date().isoformat(),
        questions=len(by_question),
        automated=automated,
        handed_off=handed_off,
        helpful=helpful,
        unhelpful=unhelpful,
        failing=sorted(failing.items(), key=lambda kv: (-kv[1], kv[0]))[:FAILING_SHOWN],
        model=model,
        proposals_waiting=len(repo.proposals("waiting")),
        queue=repo.review_queue_size(),
    )


def _rate(part: int, whole: int) -> str:
    return f"{part / whole:.0%}" if whole else "n/a"


def lines(digest: Digest) -> list[str]:
    """The digest as Slack mrkdwn lines (the channel message and the App Home section)."""
    failing = ", ".join(f"`{escape(intent)}` ({n})" for intent, n in digest.failing) or "none"
    return [
        f"*Nightly digest, {digest.day}* (last 24 hours)",
        f"• Questions: {digest.questions}; automation rate {_rate(digest.automated, digest.questions)} "
        f"({digest.automated} answered and not rated unhelpful); hand-off rate "
        f"{_rate(digest.handed_off, digest.questions)} ({digest.handed_off})",
        f"• Ratings: {digest.helpful} helpful, {digest.unhelpful} not helpful",
        f"• Intents that failed most: {failing}",
        f"• Model: {escape(digest.model[:MODEL_CHARS]) or 'no run'}",
        f"• Waiting for you: {digest.proposals_waiting} new-intent proposals, {digest.queue} questions in the "
        "review queue (App Home)",
    ]


def text(digest: Digest) -> str:
    """The digest as one plain message."""
    return "\n".join(lines(digest))
