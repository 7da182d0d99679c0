"""The agents' work lists: review queue, discovery proposals, postings (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from storage.repository import NewReviewItem, Repository
from tests.factories import AGENT, answered_question, correct, new_answer, rate

LONG_AGO = datetime(2020, 1, 1, tzinfo=UTC)


def _handoffs(repo: Repository, *questions: str) -> list[int]:
    answer = new_answer("Passing you to a person.", source="handoff", intent=None, confidence=0.2)
    return [answered_question(repo, q, answer).answer_id for q in questions]


def test_unlabelled_answers_leave_out_what_agents_labelled_or_rated(repo: Repository) -> None:
    first, second, third = _handoffs(repo, "one", "two", "three")
    correct(repo, first, "billing")
    rate(repo, second, True, rater_id=AGENT, rater_role="agent")
    rate(repo, third, False)  # a customer's rating keeps it in

    found = repo.unlabelled_answers(LONG_AGO)

    assert [item.answer.id for item in found] == [third]
    assert [r.helpful for r in found[0].ratings] == [False] and found[0].question.text == "three"
    assert repo.unlabelled_answers(datetime.now(UTC) + timedelta(hours=1)) == []


def test_unlabelled_answers_keep_the_newest(repo: Repository) -> None:
    ids = _handoffs(repo, "a", "b", "c")
    assert [item.answer.id for item in repo.unlabelled_answers(LONG_AGO, limit=2)] == ids[1:]


def test_the_review_queue_is_replaced_ordered_and_drops_labelled_questions(repo: Repository) -> None:
    low, high, gone = _handoffs(repo, "low", "high", "gone")
    queued = repo.replace_review_queue(
        [
            NewReviewItem(low, 0.5, [("billing", 0.4), ("refund", 0.35)], ["close call"]),
            NewReviewItem(high, 1.5, [("refund", 0.6)], ["handed off"]),
            NewReviewItem(gone, 1.0, [], []),
            NewReviewItem(10_000, 9.0, [], []),  # an answer deleted since: skipped
        ],
        model_version="v1",
    )
    assert queued == 3
    entries = repo.review_queue()
    assert [e.question for e in entries] == ["high", "gone", "low"]
    assert entries[2].item.guesses == [["billing", 0.4], ["refund", 0.35]] and entries[2].item.reasons == ["close call"]
    assert entries[0].answer.source == "handoff" and entries[0].item.model_version == "v1"

    repo.add_rating(gone, rater_id=AGENT, rater_role="agent", helpful=None, corrected_intent="x", source="review")
    assert [e.question for e in repo.review_queue()] == ["high", "low"] and repo.review_queue_size() == 2

    repo.replace_review_queue([NewReviewItem(low, 0.1, [], [])], model_version="v2")
    assert [e.question for e in repo.review_queue()] == ["low"]


def test_accepting_a_proposal_labels_every_member_once(repo: Repository) -> None:
    members = _handoffs(repo, "card arrived broken", "my card is damaged", "the card is cracked")
    proposal = repo.add_proposal(members, ["card arrived broken"], cohesion=0.8, nearest_intent="card_arrival")
    assert proposal.id is not None and proposal.status == "waiting"
    assert [p.id for p in repo.proposals("waiting")] == [proposal.id]

    decided = repo.decide_proposal(
        proposal.id, status="accepted", agent_id=AGENT, intent="damaged_card", answer="We send a new one."
    )

    assert decided is not None and decided.status == "accepted" and decided.intent == "damaged_card"
    ratings = [r for m in members for r in repo.ratings(m)]
    labels = [(r.corrected_intent, r.corrected_answer, r.source, r.rater_role) for r in ratings]
    assert labels == [
        ("damaged_card", "We send a new one.", "discovery", "agent"),
        ("damaged_card", None, "discovery", "agent"),
        ("damaged_card", None, "discovery", "agent"),
    ]
    again = repo.decide_proposal(proposal.id, status="dismissed", agent_id="U2")
    assert again is None and repo.proposals("waiting") == [] and repo.unlabelled_answers(LONG_AGO) == []


def test_a_dismissed_proposal_labels_nothing_and_cannot_be_updated(repo: Repository) -> None:
    members = _handoffs(repo, "x", "y")
    proposal = repo.add_proposal(members, ["x"], cohesion=0.7, nearest_intent=None)
    assert proposal.id is not None
    assert repo.update_proposal(proposal.id, [*members, members[0]], ["x", "y"], cohesion=0.75) is not None
    assert repo.decide_proposal(proposal.id, status="dismissed", agent_id=AGENT) is not None
    assert all(repo.ratings(m) == [] for m in members)
    assert repo.update_proposal(proposal.id, members, ["x"], cohesion=0.7) is None
    with pytest.raises(ValueError, match="intent name"):
        repo.decide_proposal(proposal.id, status="accepted", agent_id=AGENT, intent=" ")


def test_a_posting_is_recorded_once_per_key_and_updated(repo: Repository) -> None:
    assert repo.posting("digest:2026-12-03") is None
    repo.record_posting("digest:2026-12-03", channel_id="C1", slack_ts="1.1", content={"questions": 3})
    repo.record_posting("digest:2026-12-03", channel_id="C1", slack_ts="1.2", content={"questions": 4})
    posting = repo.posting("digest:2026-12-03")
    assert posting is not None and posting.slack_ts == "1.2" and posting.content == {"questions": 4}


def test_accepting_keeps_the_labels_agents_gave_already(repo: Repository) -> None:
    labelled, other = _handoffs(repo, "already labelled", "new one")
    correct(repo, labelled, "billing")
    proposal = repo.add_proposal([labelled, other], ["already labelled"], cohesion=0.8, nearest_intent=None)
    assert proposal.id is not None
    repo.decide_proposal(proposal.id, status="accepted", agent_id=AGENT, intent="damaged_card", answer="A new card.")
    assert [r.corrected_intent for r in repo.ratings(labelled)] == ["billing"]
    [(intent, answer)] = [(r.corrected_intent, r.corrected_answer) for r in repo.ratings(other)]
    assert (intent, answer) == ("damaged_card", "A new card.")  # the answer goes to the first member labelled
