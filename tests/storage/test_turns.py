"""The conversation log's whole operations on both databases: each one transaction, all or nothing."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

import pytest

from storage.errors import DuplicateEventError, StorageError
from storage.repository import NewAnswer, Repository, ThreadRef

THREAD = ThreadRef(team_id="T1", channel_id="C1", thread_ts="1700000000.000100")
OTHER = ThreadRef(team_id="T1", channel_id="C1", thread_ts="1700000000.000999")
ANSWER = NewAnswer(text="Use the reset link.", source="intent", intent="reset_password", confidence=0.9)
HANDOFF = NewAnswer(text="A colleague will help.", source="handoff", intent="billing", confidence=0.2)
ASKED = datetime(2024, 5, 1, 9, 0, tzinfo=UTC)


def test_thread_state_knows_the_conversation_the_agent_and_the_event(repo: Repository) -> None:
    state = repo.thread_state(THREAD, event_id="Ev1")
    assert (state.conversation, state.human_handling, state.seen) == (None, False, False)
    turn = repo.record_question_turn(THREAD, user_id="U1", text="password?", answer=ANSWER, event_id="Ev1")
    state = repo.thread_state(THREAD, event_id="Ev1")
    assert state.conversation is not None and state.conversation.id == turn.conversation.id
    assert (state.human_handling, state.seen, state.conversation.started_by) == (False, True, "U1")
    assert not repo.thread_state(THREAD, event_id="Ev2").seen
    other = repo.record_question_turn(OTHER, user_id="U2", text="hi", answer=None)
    assert other.conversation.id is not None
    repo.add_message(other.conversation.id, role="agent", text="Sam here", user_id="UAGENT")
    assert repo.thread_state(OTHER).human_handling and not repo.thread_state(THREAD).human_handling


def test_a_question_turn_stores_conversation_question_and_pending_answer(repo: Repository) -> None:
    turn = repo.record_question_turn(
        THREAD, user_id="U1", text="mail jo@example.com", answer=ANSWER, slack_ts="1.1", event_id="Ev1", asked_at=ASKED
    )
    assert turn.answer_id is not None and turn.conversation.id is not None
    assert (turn.conversation.source, turn.conversation.created_at, turn.conversation.started_by) == (
        "slack",
        ASKED,
        "U1",
    )
    [question] = repo.messages(turn.conversation.id)
    assert (question.id, question.role, question.text, question.event_id, question.created_at) == (
        turn.question_id,
        "user",
        "mail [EMAIL]",
        "Ev1",
        ASKED,
    )
    answer = repo.get_answer(turn.answer_id)
    assert answer is not None and (answer.status, answer.question_id, answer.intent) == (
        "pending",
        turn.question_id,
        "reset_password",
    )
    assert answer.created_at > ASKED  # the answer is timed when it was recorded
    again = repo.record_question_turn(THREAD, user_id="U2", text="and now?", answer=None, source="cli")
    assert again.conversation.id == turn.conversation.id and again.answer_id is None
    assert again.conversation.started_by == "U1" and again.conversation.source == "slack"


def test_a_duplicate_event_stores_nothing_not_even_a_new_conversation(repo: Repository) -> None:
    repo.record_question_turn(THREAD, user_id="U1", text="password?", answer=ANSWER, event_id="Ev1")
    with pytest.raises(DuplicateEventError, match="Ev1"):
        repo.record_question_turn(OTHER, user_id="U1", text="password?", answer=ANSWER, event_id="Ev1")
    assert repo.find_conversation(team_id="T1", channel_id="C1", thread_ts=OTHER.thread_ts) is None
    stored = repo.answers_between(datetime(2000, 1, 1, tzinfo=UTC), datetime(2100, 1, 1, tzinfo=UTC))
    assert [item.question.text for item in stored] == ["password?"]


def test_bad_values_are_refused_before_anything_is_written(repo: Repository) -> None:
    with pytest.raises(StorageError, match="source must be one of slack, cli"):
        repo.record_question_turn(THREAD, user_id="U1", text="q", answer=None, source="email")  # type: ignore[arg-type]
    with pytest.raises(StorageError, match="source must be one of intent, retrieval, clarify, handoff"):
        repo.record_question_turn(
            THREAD,
            user_id="U1",
            text="q",
            answer=NewAnswer("a", "llm", None, None),  # type: ignore[arg-type]
        )
    with pytest.raises(StorageError, match="source must be one of slack, cli"):
        repo.get_or_create_conversation(team_id="T", channel_id="C", thread_ts="1", started_by="U", source="x")  # type: ignore[arg-type]
    assert repo.thread_state(THREAD).conversation is None
    turn = repo.record_question_turn(THREAD, user_id="U1", text="q", answer=ANSWER)
    assert turn.answer_id is not None and turn.conversation.id is not None
    with pytest.raises(StorageError, match="reason must be one of abstained, customer_request, engine_error"):
        repo.mark_posted(turn.answer_id, channel_id="C1", slack_ts="2.2", handoff="tired")  # type: ignore[arg-type]
    with pytest.raises(StorageError, match="reason must be one of"):
        repo.record_handoff(turn.conversation.id, answer_id=None, reason="bored")  # type: ignore[arg-type]
    answer = repo.get_answer(turn.answer_id)
    assert answer is not None and answer.status == "pending"
    assert len(repo.messages(turn.conversation.id)) == 1 and repo.handoffs(turn.conversation.id) == []


def test_mark_posted_stores_the_bot_message_and_the_handoff_together(repo: Repository) -> None:
    turn = repo.record_question_turn(THREAD, user_id="U1", text="parrot?", answer=HANDOFF)
    assert turn.answer_id is not None and turn.conversation.id is not None
    repo.mark_posted(turn.answer_id, channel_id="C1", slack_ts="2.2", handoff="abstained", agent_channel_ts="9.9")
    assert [(m.role, m.text, m.slack_ts) for m in repo.messages(turn.conversation.id)] == [
        ("user", "parrot?", None),
        ("bot", "A colleague will help.", "2.2"),
    ]
    [handoff] = repo.handoffs(turn.conversation.id)
    assert (handoff.reason, handoff.answer_id, handoff.agent_channel_ts) == ("abstained", turn.answer_id, "9.9")
    conversation = repo.find_conversation(
        team_id=THREAD.team_id, channel_id=THREAD.channel_id, thread_ts=THREAD.thread_ts
    )
    assert conversation is not None and conversation.last_activity_at > turn.conversation.last_activity_at

    failed = repo.record_question_turn(THREAD, user_id="U1", text="crash", answer=HANDOFF)
    assert failed.answer_id is not None
    repo.mark_failed(failed.answer_id, error="channel_not_found", handoff="engine_error")
    answer = repo.get_answer(failed.answer_id)
    assert answer is not None and (answer.status, answer.error, answer.slack_ts) == (
        "failed",
        "channel_not_found",
        None,
    )
    assert [h.reason for h in repo.handoffs(turn.conversation.id)] == ["abstained", "engine_error"]
    assert [m.role for m in repo.messages(turn.conversation.id)] == ["user", "bot", "user"]  # nothing was posted


def test_record_handoff_with_the_notice_is_all_or_nothing(repo: Repository) -> None:
    turn = repo.record_question_turn(THREAD, user_id="U1", text="q", answer=ANSWER)
    assert turn.answer_id is not None and turn.conversation.id is not None
    repo.record_handoff(
        turn.conversation.id, answer_id=turn.answer_id, reason="customer_request", notice_text="OK", notice_ts="3.3"
    )
    assert [(m.role, m.text, m.slack_ts) for m in repo.messages(turn.conversation.id)][-1] == ("bot", "OK", "3.3")
    with pytest.raises(StorageError, match="cannot hand off conversation"):
        repo.record_handoff(
            turn.conversation.id, answer_id=999, reason="customer_request", notice_text="again", notice_ts="4.4"
        )
    assert [m.text for m in repo.messages(turn.conversation.id)] == ["q", "OK"]  # the notice went with it
    assert len(repo.handoffs(turn.conversation.id)) == 1


def test_answer_context_is_the_answer_in_its_own_thread(repo: Repository) -> None:
    turn = repo.record_question_turn(THREAD, user_id="U1", text="which one?", answer=ANSWER)
    assert turn.answer_id is not None and turn.conversation.id is not None
    context = repo.answer_context(turn.answer_id, THREAD)
    assert context is not None
    assert (context.answer.id, context.conversation.id, context.question) == (
        turn.answer_id,
        turn.conversation.id,
        "which one?",
    )
    assert (context.handed_off, context.picked) == (False, False)
    assert repo.answer_context(turn.answer_id, OTHER) is None  # a button clicked in another thread
    assert repo.answer_context(turn.answer_id + 100, THREAD) is None
    repo.add_rating(turn.answer_id, rater_id="U1", rater_role="customer", helpful=True, source="clarify")
    repo.record_handoff(turn.conversation.id, answer_id=None, reason="customer_request")
    context = repo.answer_context(turn.answer_id, THREAD)
    assert context is not None and (context.handed_off, context.picked) == (True, True)


def test_two_workers_opening_one_thread_at_once_share_its_conversation(db_url: str) -> None:
    repos = [Repository(db_url), Repository(db_url)]
    barrier = threading.Barrier(2, timeout=30)
    errors: list[BaseException] = []

    def ask(repo: Repository, worker: int) -> None:
        try:
            for round_ in range(8):
                thread = ThreadRef("T", "C", f"{round_}.0")
                barrier.wait()
                repo.record_question_turn(
                    thread, user_id=f"U{worker}", text="hi", answer=ANSWER, event_id=f"{worker}-{round_}"
                )
        except BaseException as exc:
            barrier.abort()
            errors.append(exc)

    try:
        workers = [threading.Thread(target=ask, args=(repo, n)) for n, repo in enumerate(repos)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(timeout=60)
        assert errors == []
        for round_ in range(8):
            conversation = repos[0].find_conversation(team_id="T", channel_id="C", thread_ts=f"{round_}.0")
            assert conversation is not None and conversation.id is not None
            assert sorted(m.event_id or "" for m in repos[0].messages(conversation.id)) == [
                f"0-{round_}",
                f"1-{round_}",
            ]
    finally:
        for repo in repos:
            repo.close()
