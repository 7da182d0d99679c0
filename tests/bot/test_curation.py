"""The nightly pass for agents (`bot.curation.curate`) on a real store with a stand-in model: what is queued,
what is proposed, and how tomorrow's pass treats waiting, accepted and dismissed proposals."""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from bot.curation import curate, disagreed, intent_name
from storage.models import Proposal
from storage.repository import Repository
from tests.factories import AGENT, answered_question, correct, new_answer, rate, settings_for

TOPICS = {"card": 0, "weather": 1}


class TopicModel:
    """Embeds a question near its topic's direction ("card", "weather"), anything else at random; unsure of
    "card" questions (two close labels), sure of the rest."""

    labels = ["billing", "refund", "card_arrival"]
    version = "v-topic"

    def probabilities(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        embeddings = np.zeros((len(texts), 64))
        probs = np.zeros((len(texts), 3))
        for row, text in enumerate(texts):
            rng = np.random.default_rng(zlib.crc32(text.encode()))
            topic = next((t for word, t in TOPICS.items() if word in text), None)
            if topic is None:
                embeddings[row] = rng.normal(size=64)
                probs[row] = [0.9, 0.05, 0.05]
            else:
                embeddings[row, topic] = 10.0
                embeddings[row] += 0.5 * rng.normal(size=64)
                probs[row] = [0.1, 0.44, 0.46] if topic == 0 else [0.8, 0.1, 0.1]
        return probs.astype(np.float32), embeddings.astype(np.float32)


HANDOFF = new_answer("Passing you to a person.", source="handoff", intent=None, confidence=0.2)


def _log(repo: Repository, questions: Sequence[str]) -> list[int]:
    return [answered_question(repo, question, HANDOFF).answer_id for question in questions]


def _traffic(repo: Repository) -> tuple[list[int], list[int]]:
    cards = _log(repo, [f"my card arrived broken, order {i}" for i in range(8)])
    weather = _log(repo, [f"what is the weather in city {i}" for i in range(6)])
    _log(repo, [f"random question number {i} about something" for i in range(12)])
    return cards, weather


def _split(proposals: Sequence[Proposal], cards: list[int], weather: list[int]) -> tuple[Proposal, Proposal]:
    """The card and the weather proposal: each holds all of its topic's questions, mostly (scattered questions
    HDBSCAN attaches at a group's edge may stay)."""
    assert len(proposals) == 2
    card, other = sorted(proposals, key=lambda p: -len(set(p.answer_ids) & set(cards)))
    for proposal, topic in ((card, cards), (other, weather)):
        assert set(topic) <= set(proposal.answer_ids) and len(topic) > len(proposal.answer_ids) / 2
    return card, other


def test_curate_queues_the_unsure_and_proposes_each_dense_group(repo: Repository, tmp_path: Path) -> None:
    cards, weather = _traffic(repo)
    sure = answered_question(repo, "how do refunds work", new_answer(intent="billing", confidence=0.95)).answer_id
    settings = settings_for(tmp_path, review_queue_limit=10)

    result = curate(settings, repo, TopicModel(), now=datetime.now(UTC) + timedelta(seconds=1))  # type: ignore[arg-type]

    assert result.scored == 27 and result.queued == 10
    queue = repo.review_queue(limit=100)
    assert queue[0].answer.id in cards and "close call" in queue[0].item.reasons
    priorities = [entry.item.priority for entry in queue]
    assert priorities == sorted(priorities, reverse=True)
    assert all(entry.item.priority < 0.5 for entry in queue if entry.answer.id == sure)  # sure and answered: last
    card, _ = _split(result.new_proposals, cards, weather)
    assert card.nearest_intent == "card_arrival" and "card arrived broken" in card.typical[0]


def test_tomorrow_a_waiting_proposal_grows_a_dismissed_one_stays_away_an_accepted_one_is_labelled(
    repo: Repository, tmp_path: Path
) -> None:
    cards, weather = _traffic(repo)
    settings = settings_for(tmp_path)
    first = curate(settings, repo, TopicModel(), now=datetime.now(UTC) + timedelta(seconds=1))  # type: ignore[arg-type]
    card_proposal, weather_proposal = _split(first.new_proposals, cards, weather)
    assert card_proposal.id is not None and weather_proposal.id is not None
    repo.decide_proposal(weather_proposal.id, status="dismissed", agent_id=AGENT)
    more_cards = _log(repo, [f"my card arrived broken again {i}" for i in range(3)])

    second = curate(settings, repo, TopicModel(), now=datetime.now(UTC) + timedelta(seconds=1))  # type: ignore[arg-type]

    assert second.new_proposals == [] and second.updated == 1
    grown = repo.get_proposal(card_proposal.id)
    assert grown is not None and set(cards + more_cards) <= set(grown.answer_ids)
    in_queue = [e for e in repo.review_queue(limit=100) if e.answer.id in more_cards]
    assert in_queue and all("in a new-intent proposal" in e.item.reasons for e in in_queue)

    repo.decide_proposal(card_proposal.id, status="accepted", agent_id=AGENT, intent="damaged_card", answer="New card.")
    third = curate(settings, repo, TopicModel(), now=datetime.now(UTC) + timedelta(seconds=1))  # type: ignore[arg-type]
    labelled = set(grown.answer_ids)
    assert third.new_proposals == [] and third.scored == 26 + len(more_cards) - len(labelled)
    assert all(e.answer.id not in labelled for e in repo.review_queue(limit=100))


def test_an_empty_log_empties_the_queue(repo: Repository, tmp_path: Path) -> None:
    result = curate(settings_for(tmp_path), repo, TopicModel(), now=datetime.now(UTC))  # type: ignore[arg-type]
    assert (result.scored, result.queued, result.new_proposals) == (0, 0, [])


def test_disagreement_and_intent_names(repo: Repository) -> None:
    answered = answered_question(repo, "refund?", new_answer(intent="billing"))
    rate(repo, answered.answer_id, False)
    clarified = answered_question(repo, "which?", new_answer(source="clarify", intent="billing", confidence=0.5))
    repo.add_rating(
        clarified.answer_id,
        rater_id="U1",
        rater_role="customer",
        helpful=None,
        corrected_intent="refund",
        source="clarify",
    )
    correct(repo, answered_question(repo, "x").answer_id, "billing")
    rated = {
        item.question.text: disagreed(item)
        for item in repo.answers_between(datetime(2020, 1, 1, tzinfo=UTC), datetime.now(UTC) + timedelta(seconds=1))
    }
    assert rated == {"refund?": True, "which?": True, "x": False}
    assert intent_name("  Damaged card! ") == "damaged_card" and intent_name("!!") == ""


def test_the_agents_step_never_fails_the_nightly_job(
    repo: Repository, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from bot.nightly import for_agents
    from storage.errors import StorageError

    def away(*args: object, **kwargs: object) -> None:
        raise StorageError("the database is away")

    monkeypatch.setattr(repo, "production_model", away)
    monkeypatch.setattr(repo, "answers_between", away)
    said: list[str] = []
    report = for_agents(settings_for(tmp_path), repo, outcome="promoted v2", echo=said.append)
    assert report.curation is None and report.digest is None
    assert any("skipped" in line for line in said) and any("digest not made" in line for line in said)
