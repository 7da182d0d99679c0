"""Purge and forget-user delete exactly what they say, and nothing else."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from storage.repository import Repository, ThreadRef
from tests.factories import answered_question, new_answer

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
DAY = timedelta(days=1)


@dataclass
class Thread:
    conversation: int
    questions: list[int]
    answers: list[int]
    thread_ts: str


def _thread(repo: Repository, name: str, *, by: str, at: datetime, turns: int = 1, rater: str = "U9") -> Thread:
    """A conversation started by `by`: `turns` questions, each answered and rated, plus one hand-off."""
    conversation = repo.get_or_create_conversation(
        team_id="T", channel_id="C", thread_ts=name, started_by=by, created_at=at
    )
    assert conversation.id is not None
    thread = Thread(conversation.id, [], [], name)
    for turn in range(turns):
        thread.questions.append(_turn(repo, thread, by=by, at=at + turn * timedelta(minutes=1), rater=rater))
    repo.record_handoff(conversation.id, answer_id=thread.answers[-1], reason="not_helpful", created_at=at)
    return thread


def _turn(repo: Repository, thread: Thread, *, by: str, at: datetime, rater: str = "U9", text: str = "q") -> int:
    """`by` asks `text` at `at`; the answer, the bot's reply and an agent's rating are dated `at` too."""
    logged = answered_question(
        repo,
        text,
        new_answer("a", intent="greet"),
        user_id=by,
        thread=ThreadRef("T", "C", thread.thread_ts),
        asked_at=at,
    )
    assert logged.conversation_id == thread.conversation
    thread.answers.append(logged.answer_id)
    repo.add_message(thread.conversation, role="bot", text="a", created_at=at)  # not mark_posted: that is dated now
    repo.add_rating(logged.answer_id, rater_id=rater, rater_role="agent", helpful=True, created_at=at)
    return logged.question_id


def _everything(repo: Repository, threads: list[Thread]) -> dict[str, int]:
    """Count what is still stored in these threads."""
    counts = {"conversations": 0, "messages": 0, "answers": 0, "ratings": 0, "handoffs": 0}
    for thread in threads:
        counts["conversations"] += (
            repo.find_conversation(team_id="T", channel_id="C", thread_ts=thread.thread_ts) is not None
        )
        counts["messages"] += len(repo.messages(thread.conversation))
        counts["handoffs"] += len(repo.handoffs(thread.conversation))
        for answer_id in thread.answers:
            counts["answers"] += repo.get_answer(answer_id) is not None
            counts["ratings"] += len(repo.ratings(answer_id))
    return counts


# --- purge -----------------------------------------------------------------------------------------
def test_purge_deletes_idle_conversations_with_everything_under_them(repo: Repository) -> None:
    old = _thread(repo, "old", by="U1", at=T0 - 40 * DAY, turns=2)
    revived = _thread(repo, "revived", by="U2", at=T0 - 40 * DAY)
    _turn(repo, revived, by="U2", at=T0 - DAY)  # new activity keeps it
    at_cutoff = _thread(repo, "at-cutoff", by="U3", at=T0 - 30 * DAY)
    recent = _thread(repo, "recent", by="U1", at=T0)
    cutoff = T0 - 30 * DAY
    expected = {"conversations": 1, "messages": 4, "answers": 2, "ratings": 2, "handoffs": 1}
    kept_before = _everything(repo, [revived, at_cutoff, recent])

    assert repo.purge_older_than(cutoff, dry_run=True) == expected | {"proposals": 0}
    assert _everything(repo, [old])["conversations"] == 1  # a dry run deletes nothing

    assert repo.purge_older_than(cutoff) == expected | {"proposals": 0}
    assert _everything(repo, [old]) == dict.fromkeys(expected, 0)
    assert _everything(repo, [revived, at_cutoff, recent]) == kept_before
    assert repo.purge_older_than(cutoff) == dict.fromkeys([*expected, "proposals"], 0)


def test_purge_keeps_the_model_registry_and_evaluation_set(repo: Repository) -> None:
    _thread(repo, "old", by="U1", at=T0 - 40 * DAY)
    repo.register_model("v1", path="/m", metrics={}, dataset_hash="h", status="production")
    repo.add_eval_examples([("q", "greet", "log")])
    run = repo.start_training_run(trigger="cron")
    repo.purge_older_than(T0)
    assert [m.version for m in repo.models()] == ["v1"]
    assert len(repo.eval_examples()) == 1
    assert [r.id for r in repo.training_runs()] == [run.id]


# --- forget-user -------------------------------------------------------------------------------------
def test_forget_user_deletes_their_data_and_nothing_else(repo: Repository) -> None:
    own = _thread(repo, "own", by="U1", at=T0, turns=2, rater="U9")  # started by U1, rated by an agent
    other = _thread(repo, "other", by="U2", at=T0, rater="U2")  # U2's thread...
    _turn(repo, other, by="U1", at=T0 + DAY, rater="U2", text="U1 chimes in")  # ...where U1 asks too
    rated_by_user = _thread(repo, "rated", by="U3", at=T0, rater="U1")  # U3's thread, answer rated by U1
    untouched = _thread(repo, "untouched", by="U4", at=T0, rater="U9")
    repo.add_eval_examples([("U1 chimes in", "chat", "log"), ("q", "greet", "seed"), ("other text", "x", "log")])
    before = {
        "other": _everything(repo, [other]),
        "rated": _everything(repo, [rated_by_user]),
        "untouched": _everything(repo, [untouched]),
    }

    expected = {
        "conversations": 1,
        "messages": 4 + 1,  # own thread (2 questions + 2 bot replies) + U1's question in U2's thread
        "answers": 2 + 1,
        "ratings": 2 + 1 + 1,  # own thread's, the answer to U1's question, U1's rating in U3's thread
        "handoffs": 1,
        "eval_examples": 1,  # taken from U1's message; the seed example with the same text stays
        "proposals": 0,
    }
    assert repo.forget_user("U1", dry_run=True) == expected
    assert repo.forget_user("U1") == expected

    assert _everything(repo, [own]) == {"conversations": 0, "messages": 0, "answers": 0, "ratings": 0, "handoffs": 0}
    assert _everything(repo, [other]) == {
        "conversations": 1,
        "messages": before["other"]["messages"] - 1,
        "answers": before["other"]["answers"] - 1,
        "ratings": before["other"]["ratings"] - 1,
        "handoffs": 1,
    }
    assert all(m.user_id != "U1" for m in repo.messages(other.conversation))
    assert _everything(repo, [rated_by_user]) == {**before["rated"], "ratings": before["rated"]["ratings"] - 1}
    assert _everything(repo, [untouched]) == before["untouched"]
    assert [(e.text, e.origin) for e in repo.eval_examples()] == [("q", "seed"), ("other text", "log")]
    assert repo.forget_user("U1") == dict.fromkeys(expected, 0)


def test_forget_unknown_user_deletes_nothing(repo: Repository) -> None:
    _thread(repo, "t", by="U2", at=T0)
    assert sum(repo.forget_user("U404").values()) == 0


def test_deleting_questions_takes_them_out_of_new_intent_proposals(repo: Repository) -> None:
    mine = _thread(repo, "mine", by="U1", at=T0)
    theirs = _thread(repo, "theirs", by="U2", at=T0)
    only_mine = _thread(repo, "only", by="U1", at=T0)
    copied = "my card broke, I am Jo Bloggs"  # what the proposal copied of U1's question
    shared = repo.add_proposal([*mine.answers, *theirs.answers], [copied], cohesion=0.9, nearest_intent=None)
    repo.add_proposal(only_mine.answers, [copied], cohesion=0.9, nearest_intent=None)

    assert repo.forget_user("U1")["proposals"] == 2

    [left] = repo.proposals()  # the one with none of its questions left is gone
    assert left.id == shared.id and left.answer_ids == theirs.answers
    assert left.typical == [repo.question_text(theirs.answers[0])] and copied not in left.typical
