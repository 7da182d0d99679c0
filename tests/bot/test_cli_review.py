"""`supportbot review`: the review queue and the proposals in the terminal, labelled as in Slack."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bot.cli import app
from bot.settings import Settings
from storage.repository import NewReviewItem, Repository
from tests.factories import answered_question, new_answer, settings_for

runner = CliRunner()
HANDOFF = new_answer("Passing you to a person.", source="handoff", intent=None, confidence=0.2)


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    current = settings_for(tmp_path / "data")
    monkeypatch.setattr("bot.cli.review.settings", lambda: current)
    return current


@pytest.fixture
def repo(settings: Settings) -> Iterator[Repository]:
    with Repository(settings.db_url) as store:
        yield store


def _queue(repo: Repository, *questions: str) -> list[int]:
    ids = [answered_question(repo, q, HANDOFF).answer_id for q in questions]
    repo.replace_review_queue(
        [
            NewReviewItem(i, 2.0 - n / 10, [("billing", 0.4), ("refund", 0.35)], ["handed off"])
            for n, i in enumerate(ids)
        ],
        model_version="v1",
    )
    return ids


def test_review_labels_with_a_guess_out_of_scope_or_a_new_intent(settings: Settings, repo: Repository) -> None:
    first, second, third, fourth = _queue(repo, "refund or bill?", "sing me a song", "card is cracked", "later")
    typed = "\n".join(["2", "o", "n", "Damaged card", "We send a new card.", "q"]) + "\n"

    result = runner.invoke(app, ["review", "--agent", "UAGENT"], input=typed)

    assert result.exit_code == 0, result.output
    assert "4 questions waiting" in result.output and "3 questions labelled" in result.output
    labels = {
        i: [(r.corrected_intent, r.corrected_answer, r.source, r.rater_id) for r in repo.ratings(i)]
        for i in (first, second, third, fourth)
    }
    assert labels == {
        first: [("refund", None, "review", "UAGENT")],
        second: [("out_of_scope", None, "review", "UAGENT")],
        third: [("damaged_card", "We send a new card.", "review", "UAGENT")],
        fourth: [],
    }
    assert [e.answer.id for e in repo.review_queue()] == [fourth]


def test_review_decides_proposals_and_lists_without_asking(settings: Settings, repo: Repository) -> None:
    members = [answered_question(repo, f"card broken {i}", HANDOFF).answer_id for i in range(3)]
    repo.add_proposal(members, ["card broken 0"], cohesion=0.9, nearest_intent="billing")
    other = repo.add_proposal(
        [answered_question(repo, "x", HANDOFF).answer_id], ["x"], cohesion=0.9, nearest_intent=None
    )

    listed = runner.invoke(app, ["review", "--list"])
    assert listed.exit_code == 0 and "2 proposals" in listed.output and "'card broken 0'" in listed.output

    typed = "\n".join(["d", "a", "damaged_card", "A new card is on its way."]) + "\n"
    result = runner.invoke(app, ["review"], input=typed)

    assert result.exit_code == 0, result.output
    assert "2 proposals decided" in result.output
    assert [p.status for p in repo.proposals()] == ["dismissed", "accepted"]
    assert other.id == repo.proposals("dismissed")[0].id
    assert [r.corrected_intent for m in members for r in repo.ratings(m)] == ["damaged_card"] * 3


def test_refresh_without_a_production_model_says_so_and_changes_nothing(settings: Settings, repo: Repository) -> None:
    _queue(repo, "kept as it was")
    result = runner.invoke(app, ["review", "--refresh", "--list"])
    assert result.exit_code == 0, result.output
    assert "1 questions waiting" in result.output and "no model in production" in result.output
