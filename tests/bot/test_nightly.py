"""The nightly job's work for agents, end to end on the tiny support team of tests/bot/test_retrain.py: questions
nobody could answer become a proposal, an agent accepts it, and the next night the bot knows the new intent.
The digest is stored every night, once per day."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot import digest
from bot.versions import read_answers
from storage.repository import Repository
from tests.bot.test_retrain import holder_for, make_settings, run, write_world
from tests.factories import AGENT, answered_question, new_answer

DAMAGED = [
    "my card arrived damaged",
    "the card you sent me is broken",
    "my new card is cracked",
    "card came bent and does not work",
    "received a damaged card in the post",
    "my card is snapped in half",
    "the card I got is scratched and broken",
    "card arrived broken, what now",
]
SCATTERED = [
    "what's the capital of peru",
    "can you sing me a song",
    "is it going to rain tomorrow",
    "recommend a good pizza place",
    "how tall is mount everest",
    "tell me a joke about cats",
]
HANDOFF = new_answer("Passing you to a person.", source="handoff", intent=None, confidence=0.2)


@pytest.mark.slow
def test_an_accepted_cluster_becomes_an_intent_the_next_night(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, write_world(tmp_path / "world"))
    assert run(settings).status == "promoted"
    with Repository(settings.db_url) as repo:
        members = [answered_question(repo, q, HANDOFF).answer_id for q in DAMAGED]
        for question in SCATTERED:
            answered_question(repo, question, HANDOFF)

        quiet = run(settings)  # no new label: nothing to train, but the agents' lists are made

        assert quiet.status == "nothing_to_do"
        [proposal] = repo.proposals("waiting")
        assert len(set(proposal.answer_ids) & set(members)) >= 6 and len(set(proposal.answer_ids) - set(members)) <= 1
        assert proposal.typical[0] in DAMAGED
        assert repo.review_queue_size() > 0
        posting = repo.posting(digest.key(proposal.created_at))
        assert posting is not None and posting.content["questions"] == len(DAMAGED) + len(SCATTERED)
        assert posting.content["proposals_waiting"] == 1 and "nothing to do" in posting.content["model"]

        assert proposal.id is not None
        repo.decide_proposal(
            proposal.id, status="accepted", agent_id=AGENT, intent="damaged_card", answer="We send a new card at once."
        )
        night = run(settings)

        assert night.status == "promoted", night.message
        assert "damaged_card" in night.metrics["new_intents"]
        assert night.version is not None
        assert read_answers(settings.models_dir / night.version) == {"damaged_card": "We send a new card at once."}
        engine = holder_for(settings, repo)
        try:
            answer = engine.answer("my card arrived broken")
        finally:
            engine.close()
        assert answer.intent == "damaged_card"
        assert repo.proposals("waiting") == []
        assert len(repo.posting(digest.key(proposal.created_at)).content) > 0  # type: ignore[union-attr]
