"""The conversation log on both databases: conversations, messages, answers, ratings, hand-offs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from storage.db import make_engine
from storage.errors import DuplicateEventError, StorageError
from storage.models import Conversation
from storage.repository import NewAnswer, Repository, ThreadRef

T0 = datetime(2024, 5, 1, 9, 0, tzinfo=UTC)


def _conversation(repo: Repository, thread: str = "1700000000.000100", user: str = "U1") -> Conversation:
    return repo.get_or_create_conversation(team_id="T1", channel_id="C1", thread_ts=thread, started_by=user)


def _id(conversation: Conversation) -> int:
    assert conversation.id is not None
    return conversation.id


# --- conversations ---------------------------------------------------------------------------------
def test_one_conversation_per_thread(repo: Repository) -> None:
    first = _conversation(repo)
    again = _conversation(repo, user="U2")
    other = _conversation(repo, thread="1700000000.000200")
    assert again.id == first.id and again.started_by == "U1"
    assert other.id != first.id
    found = repo.find_conversation(team_id="T1", channel_id="C1", thread_ts="1700000000.000100")
    assert found is not None and found.id == first.id
    assert repo.find_conversation(team_id="T1", channel_id="C2", thread_ts="1700000000.000100") is None
    assert first.created_at.tzinfo is not None and first.source == "slack"


def test_returned_objects_are_detached_and_readable(repo: Repository) -> None:
    conversation = _conversation(repo)
    message = repo.add_message(_id(conversation), role="user", text="hello")
    for row in (conversation, message, repo.messages(_id(conversation))[0]):
        assert sa.inspect(row).detached
    assert message.text == "hello" and message.id is not None


# --- messages --------------------------------------------------------------------------------------
def test_message_round_trip_is_masked_and_in_utc(repo: Repository) -> None:
    conversation_id = _id(_conversation(repo))
    message = repo.add_message(
        conversation_id,
        role="user",
        text="I'm jo@example.com, call +44 20 7946 0958 about order #123456",
        user_id="U1",
        slack_ts="1700000000.000100",
        event_id="Ev1",
    )
    [stored] = repo.messages(conversation_id)
    assert stored.text == "I'm [EMAIL], call [PHONE] about order #123456"
    assert (stored.id, stored.role, stored.user_id, stored.slack_ts, stored.event_id) == (
        message.id,
        "user",
        "U1",
        "1700000000.000100",
        "Ev1",
    )
    assert stored.created_at.utcoffset() == timedelta(0)


def test_masking_can_be_switched_off(db_url: str) -> None:
    with Repository(db_url, mask_pii=False) as repo:
        conversation_id = _id(_conversation(repo))
        repo.add_message(conversation_id, role="user", text="jo@example.com")
        assert repo.messages(conversation_id)[0].text == "jo@example.com"


def test_messages_come_oldest_first(repo: Repository) -> None:
    conversation_id = _id(_conversation(repo))
    for minutes, text in [(5, "third"), (1, "first"), (3, "second")]:
        repo.add_message(conversation_id, role="user", text=text, created_at=T0 + timedelta(minutes=minutes))
    assert [m.text for m in repo.messages(conversation_id)] == ["first", "second", "third"]
    assert [m.created_at for m in repo.messages(conversation_id)] == [T0 + timedelta(minutes=m) for m in (1, 3, 5)]


def test_new_messages_move_last_activity_forward_only(repo: Repository) -> None:
    conversation = repo.get_or_create_conversation(
        team_id="T1", channel_id="C1", thread_ts="1", started_by="U1", created_at=T0
    )
    repo.add_message(_id(conversation), role="user", text="later", created_at=T0 + timedelta(hours=2))
    repo.add_message(_id(conversation), role="bot", text="backfilled", created_at=T0 + timedelta(hours=1))
    refreshed = repo.find_conversation(team_id="T1", channel_id="C1", thread_ts="1")
    assert refreshed is not None
    assert refreshed.created_at == T0 and refreshed.last_activity_at == T0 + timedelta(hours=2)


def test_duplicate_event_id_is_refused_and_the_store_stays_usable(repo: Repository) -> None:
    conversation_id = _id(_conversation(repo))
    repo.add_message(conversation_id, role="user", text="original", event_id="Ev1")
    with pytest.raises(DuplicateEventError, match="Ev1"):
        repo.add_message(conversation_id, role="user", text="retry", event_id="Ev1")
    repo.add_message(conversation_id, role="user", text="next", event_id="Ev2")
    repo.add_message(conversation_id, role="bot", text="no event id")
    repo.add_message(conversation_id, role="bot", text="no event id either")
    assert [m.text for m in repo.messages(conversation_id)] == ["original", "next", "no event id", "no event id either"]


def test_message_for_unknown_conversation_is_refused(repo: Repository) -> None:
    with pytest.raises(StorageError, match="conversation 999 does not exist") as raised:
        repo.add_message(999, role="user", text="hello", event_id="Ev1")
    assert not isinstance(raised.value, DuplicateEventError)


def test_unknown_role_is_refused(repo: Repository) -> None:
    with pytest.raises(StorageError, match="role must be one of user, bot, agent"):
        repo.add_message(_id(_conversation(repo)), role="admin", text="hi")  # type: ignore[arg-type]


# --- answers -----------------------------------------------------------------------------------------
THREAD = ThreadRef(team_id="T1", channel_id="C1", thread_ts="1700000000.000100")
RESET = NewAnswer(
    text="Use the reset link. Questions? support@example.com",
    source="retrieval",
    intent=None,
    confidence=0.61,
    doc_ids=["kb/reset.md#0", "kb/faq.csv#4"],
    doc_scores=[0.61, 0.58],
    model_version="v1",
    latency_ms=12.5,
)


def test_answer_lifecycle(repo: Repository) -> None:
    turn = repo.record_question_turn(THREAD, user_id="U1", text="how do I reset my password?", answer=RESET)
    assert turn.answer_id is not None
    answer = repo.get_answer(turn.answer_id)
    assert answer is not None and answer.status == "pending" and answer.question_id == turn.question_id
    repo.mark_posted(turn.answer_id, channel_id="C1", slack_ts="1700000001.000200")
    found = repo.find_answer_by_slack_ts(channel_id="C1", slack_ts="1700000001.000200")
    assert found is not None
    assert (found.id, found.status, found.text, found.doc_ids, found.doc_scores, found.model_version) == (
        turn.answer_id,
        "posted",
        "Use the reset link. Questions? [EMAIL]",
        ["kb/reset.md#0", "kb/faq.csv#4"],
        [0.61, 0.58],
        "v1",
    )
    assert [(m.role, m.text, m.slack_ts) for m in repo.messages(found.conversation_id)] == [
        ("user", "how do I reset my password?", None),
        ("bot", "Use the reset link. Questions? [EMAIL]", "1700000001.000200"),
    ]
    assert repo.find_answer_by_slack_ts(channel_id="C2", slack_ts="1700000001.000200") is None
    repo.mark_failed(turn.answer_id, error="channel_not_found")
    failed = repo.get_answer(turn.answer_id)
    assert failed is not None and (failed.status, failed.error) == ("failed", "channel_not_found")
    assert repo.get_answer(turn.answer_id + 1000) is None


def test_answer_errors(repo: Repository) -> None:
    conversation_id = _id(_conversation(repo))
    with pytest.raises(StorageError, match="does not exist"):
        repo.record_answer(
            conversation_id=conversation_id, question_id=999, text="x", source="intent", intent="a", confidence=1.0
        )
    with pytest.raises(StorageError, match="source must be one of"):
        repo.record_answer(
            conversation_id=conversation_id, question_id=1, text="x", source="llm", intent=None, confidence=None
        )  # type: ignore[arg-type]
    with pytest.raises(StorageError, match="no answer with id 999"):
        repo.mark_posted(999, channel_id="C", slack_ts="1")
    with pytest.raises(StorageError, match="no answer with id 999"):
        repo.mark_failed(999, error="x")


def _answer(repo: Repository, conversation_id: int, text: str = "q", at: datetime | None = None) -> int:
    question = repo.add_message(conversation_id, role="user", text=text, user_id="U1", created_at=at)
    assert question.id is not None
    answer = repo.record_answer(
        conversation_id=conversation_id,
        question_id=question.id,
        text="a",
        source="intent",
        intent="greet",
        confidence=0.9,
        created_at=at,
    )
    assert answer.id is not None
    return answer.id


# --- ratings and hand-offs -----------------------------------------------------------------------
def test_ratings_round_trip_oldest_first_and_masked(repo: Repository) -> None:
    answer_id = _answer(repo, _id(_conversation(repo)))
    repo.add_rating(answer_id, rater_id="U1", rater_role="customer", helpful=True, source="reaction", created_at=T0)
    repo.add_rating(
        answer_id,
        rater_id="U9",
        rater_role="agent",
        helpful=False,
        corrected_intent="billing",
        corrected_answer="Call us on 020 7946 0958.",
        source="modal",
        created_at=T0 - timedelta(minutes=1),
    )
    ratings = repo.ratings(answer_id)
    assert [(r.rater_id, r.helpful, r.source) for r in ratings] == [("U9", False, "modal"), ("U1", True, "reaction")]
    assert (ratings[0].corrected_intent, ratings[0].corrected_answer) == ("billing", "Call us on [PHONE].")


def test_rating_an_unknown_answer_is_refused(repo: Repository) -> None:
    with pytest.raises(StorageError, match="cannot rate answer 999"):
        repo.add_rating(999, rater_id="U1", rater_role="agent", helpful=True)
    with pytest.raises(StorageError, match="rater_role must be one of"):
        repo.add_rating(999, rater_id="U1", rater_role="boss", helpful=True)  # type: ignore[arg-type]


def test_remove_rating_deletes_only_the_matching_ones(repo: Repository) -> None:
    answer_id = _answer(repo, _id(_conversation(repo)))
    other_answer = _answer(repo, _id(_conversation(repo)), text="other")
    for rater, source, helpful in [
        ("U1", "modal", True),
        ("U1", "modal", True),  # corrections are rows of their own (verdict sources hold one per rater)
        ("U1", "reaction", False),
        ("U1", "button", True),
        ("U2", "reaction", True),
        ("U1", "modal", None),
    ]:
        repo.add_rating(answer_id, rater_id=rater, rater_role="customer", helpful=helpful, source=source)
    repo.add_rating(other_answer, rater_id="U1", rater_role="customer", helpful=True, source="reaction")
    assert repo.remove_rating(answer_id, rater_id="U1", source="modal", helpful=True) == 2
    assert repo.remove_rating(answer_id, rater_id="U1", source="modal", helpful=None) == 1
    assert repo.remove_rating(answer_id, rater_id="U1", source="modal", helpful=True) == 0
    assert repo.remove_rating(answer_id, rater_id="U1", source="reaction", helpful=True) == 0
    remaining = {(r.rater_id, r.source, r.helpful) for r in repo.ratings(answer_id)}
    assert remaining == {("U1", "reaction", False), ("U1", "button", True), ("U2", "reaction", True)}
    assert len(repo.ratings(other_answer)) == 1


def test_handoffs_round_trip(repo: Repository) -> None:
    conversation_id = _id(_conversation(repo))
    answer_id = _answer(repo, conversation_id)
    repo.record_handoff(
        conversation_id, answer_id=answer_id, reason="abstained", agent_channel_ts="17.1", created_at=T0
    )
    repo.record_handoff(conversation_id, answer_id=None, reason="customer_request", created_at=T0 - timedelta(hours=1))
    assert [(h.reason, h.answer_id, h.agent_channel_ts) for h in repo.handoffs(conversation_id)] == [
        ("customer_request", None, None),
        ("abstained", answer_id, "17.1"),
    ]
    with pytest.raises(StorageError, match="cannot hand off conversation 999"):
        repo.record_handoff(999, answer_id=None, reason="abstained")


# --- the database's own integrity ----------------------------------------------------------------------
def test_deleting_a_conversation_cascades_to_everything_under_it(repo: Repository, db_url: str) -> None:
    doomed = _id(_conversation(repo))
    kept = _id(_conversation(repo, thread="2"))
    doomed_answer = _answer(repo, doomed)
    kept_answer = _answer(repo, kept)
    for answer_id in (doomed_answer, kept_answer):
        repo.add_rating(answer_id, rater_id="U9", rater_role="agent", helpful=True)
    repo.record_handoff(doomed, answer_id=doomed_answer, reason="abstained")
    repo.record_handoff(kept, answer_id=doomed_answer, reason="not_helpful")  # refers across conversations
    engine = make_engine(db_url)
    with engine.begin() as connection:
        connection.execute(sa.text("DELETE FROM conversations WHERE id = :id"), {"id": doomed})
    engine.dispose()
    assert repo.messages(doomed) == [] and repo.handoffs(doomed) == []
    assert repo.get_answer(doomed_answer) is None and repo.ratings(doomed_answer) == []
    assert len(repo.messages(kept)) == 1 and len(repo.ratings(kept_answer)) == 1
    [handoff] = repo.handoffs(kept)
    assert handoff.answer_id is None  # ON DELETE SET NULL
