"""The nightly digest's figures over a day of logs, and its text."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bot import digest
from storage.repository import NewReviewItem, Repository
from tests.factories import answered_question, correct, new_answer, rate

NOW = datetime.now(UTC) + timedelta(minutes=5)  # hand-offs are dated when recorded: now


def test_the_digest_counts_the_last_day(repo: Repository) -> None:
    def asked(question: str, answer: object, hours_ago: float = 1.0, **kwargs: object) -> int:
        at = NOW - timedelta(hours=hours_ago)
        return answered_question(repo, question, answer, asked_at=at, **kwargs).answer_id  # type: ignore[arg-type]

    good = asked("reset password", new_answer(intent="reset_password"))
    rate(repo, good, True)
    bad = asked("refund", new_answer(intent="billing"))
    rate(repo, bad, False)
    asked("article", new_answer(source="retrieval", intent=None))
    corrected = asked("upgrade", new_answer(intent="billing"))
    correct(repo, corrected, "plans", helpful=None)
    handed = asked(
        "lawyer?",
        new_answer("A person will reply.", source="handoff", intent=None),
        posted_ts="1.1",
        handoff="abstained",
    )
    asked("yesterday", new_answer(intent="billing"), hours_ago=30)  # outside the day
    requested = asked("talk to a human", new_answer(intent="greeting"), posted_ts="1.2", handoff="customer_request")
    repo.replace_review_queue([NewReviewItem(handed, 1.0, [], [])], model_version=None)
    repo.add_proposal([handed], ["lawyer?"], cohesion=0.9, nearest_intent=None)

    day = digest.build(repo, now=NOW, model="promoted v7 (accuracy 0.91 -> 0.93)")

    assert (day.questions, day.automated, day.handed_off) == (
        6,
        3,
        2,
    )  # good, article, corrected: answered, no verdict against
    assert (day.helpful, day.unhelpful) == (1, 1)
    assert day.failing == [("billing", 2)]
    assert (day.proposals_waiting, day.queue, day.day) == (1, 1, NOW.date().isoformat())
    assert digest.Digest.from_dict(day.to_dict() | {"unknown": 1}) == day
    text = digest.text(day)
    assert "automation rate 50%" in text and "hand-off rate 33%" in text and "`billing` (2)" in text
    assert "promoted v7" in text and "1 new-intent proposals, 1 questions in the review queue" in text
    assert requested and digest.key(datetime(2026, 12, 3, 2, tzinfo=UTC)) == "digest:2026-12-03"


def test_an_empty_day() -> None:
    empty = digest.Digest(day="2026-12-03", questions=0, automated=0, handed_off=0, helpful=0, unhelpful=0)
    assert "automation rate n/a" in digest.text(empty) and "Model: no run" in digest.text(empty)
