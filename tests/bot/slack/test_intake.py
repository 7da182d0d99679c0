"""Nothing acknowledged is lost, in process: the database away (spool, refusal, flush) and work left by a dead bot."""

from __future__ import annotations

import logging
from datetime import timedelta
from pathlib import Path

import pytest

from bot.slack.app import deps_of
from bot.slack.intake import Intake
from bot.slack.recovery import Recovery
from bot.slack.slack_io import answer_metadata, post_message
from bot.slack.texts import LATE_APOLOGY, NOT_TAKEN
from storage.models import utcnow
from storage.repository import NewAnswer, Repository, ThreadRef
from storage.spool import Spool
from tests.bot.slack import payloads
from tests.bot.slack.conftest import MakeBot
from tests.bot.slack.fakes import PASSWORD_ANSWER
from tests.bot.slack.harness import AGENT_CHANNEL
from tests.bot.slack.standin import TEAM_ID, SlackStandIn

UNREACHABLE = "postgresql+psycopg://nobody@127.0.0.1:1/gone"  # connection refused at once


async def test_with_the_database_away_the_answer_is_posted_spooled_and_flushed_once_it_is_back(
    make_bot: MakeBot, standin: SlackStandIn, store: Repository, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    spool_path = tmp_path / "spool.sqlite3"
    down = Repository(UNREACHABLE, upgrade=False)
    bot = await make_bot(repo=down, spool_path=spool_path)
    event = payloads.message("password? write to jo@example.com")
    reply = await bot.event(event, event_id="EvDown1")
    assert reply.status == 200
    [call] = await standin.wait_for_call("chat.postMessage")
    await bot.event(payloads.message("password, again?", channel="DOTHER"))
    await standin.wait_for_call("chat.postMessage", n=2)
    assert call.params["text"].startswith(PASSWORD_ANSWER[:20]) and call.params["thread_ts"] == event["ts"]
    assert not [b for b in call.params["blocks"] if b["type"] == "actions"]  # nothing stored to point buttons at
    await bot.handled("on_message", n=2)
    await bot.stop()
    down.close()
    outage = [r for r in caplog.records if r.name.startswith("bot.slack") and r.levelno >= logging.WARNING]
    assert [r.getMessage().split(" (")[0] for r in outage] == ["database unreachable"]  # one line, two questions
    assert not any(r.exc_info for r in outage)
    first, _ = Spool(spool_path).items()
    assert first.kind == "turn" and first.body["text"] == "password? write to [EMAIL]"  # masked, as the store does

    intake = Intake(store, spool_path=spool_path, worker="w", lease_s=60, support_channel_ids=frozenset())
    assert await intake.flush() == 2
    state = store.thread_state(ThreadRef(TEAM_ID, event["channel"], event["ts"]), event_id="EvDown1")
    assert state.seen and state.answer is not None
    assert (state.answer.status, state.answer.slack_ts) == ("posted", call.response["ts"])
    assert intake.spooled() == 0 and store.inbox_size() == 0
    intake.close()


async def test_a_question_that_can_be_stored_nowhere_is_refused_in_its_thread(
    make_bot: MakeBot, standin: SlackStandIn, tmp_path: Path
) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    down = Repository(UNREACHABLE, upgrade=False)
    bot = await make_bot(repo=down, spool_path=blocker / "spool.sqlite3")
    event = payloads.message("password?")
    await bot.event(event)
    [call] = await standin.wait_for_call("chat.postMessage")
    assert (call.params["text"], call.params["thread_ts"]) == (NOT_TAKEN, event["ts"])
    await bot.handled("on_message")
    down.close()


async def test_work_a_dead_bot_held_is_taken_up_and_a_posted_answer_is_not_posted_again(
    make_bot: MakeBot, standin: SlackStandIn, store: Repository
) -> None:
    bot = await make_bot()
    deps = deps_of(bot.app)
    assert deps is not None
    # a bot accepted two questions and died: one never answered, one posted but not marked
    fresh = payloads.message("password?", channel="DFRESH")
    half = payloads.message("password again?", channel="DHALF")
    for event_id, event in (("EvFresh", fresh), ("EvHalf", half)):
        store.accept(event_id, "question", _payload(event, event_id), worker="dead", lease_s=0, text=event["text"])
    turn = store.record_question_turn(
        ThreadRef(TEAM_ID, "DHALF", half["ts"]),
        user_id=half["user"],
        text=half["text"],
        answer=NewAnswer(text=PASSWORD_ANSWER, source="intent", intent="reset_password", confidence=0.9),
        slack_ts=half["ts"],
        event_id="EvHalf",
    )
    posted = await post_message(
        bot.app.client,
        channel="DHALF",
        thread_ts=half["ts"],
        text=PASSWORD_ANSWER,
        metadata=answer_metadata(event_id="EvHalf", answer_id=turn.answer_id),
    )
    recovery = Recovery(deps, bot.app.client)
    assert await recovery.sweep() == 2
    assert await recovery.sweep() == 0  # done work is gone from the inbox
    threads = [c.params["channel"] for c in standin.calls_to("chat.postMessage")]
    assert sorted(threads) == ["DFRESH", "DHALF"]  # DHALF's only post is the one made before the "crash"
    answer = store.get_answer(turn.answer_id or 0)
    assert answer is not None and (answer.status, answer.slack_ts) == ("posted", posted)
    assert store.inbox_size() == 0


async def test_a_question_recovered_too_late_gets_an_apology_and_a_hand_off(
    make_bot: MakeBot, standin: SlackStandIn, store: Repository
) -> None:
    bot = await make_bot(recovery_max_age_s=600)
    deps = deps_of(bot.app)
    assert deps is not None
    event = payloads.message("password?", channel="DLATE")
    asked = utcnow() - timedelta(hours=1)
    store.accept("EvLate", "question", _payload(event, "EvLate"), worker="dead", lease_s=0, text="password?",
                 received_at=asked)  # fmt: skip
    assert await Recovery(deps, bot.app.client).sweep() == 1
    posts = [c for c in standin.calls_to("chat.postMessage") if c.params["channel"] == "DLATE"]
    assert [c.params["text"] for c in posts] == [LATE_APOLOGY]  # no stale answer
    state = store.thread_state(ThreadRef(TEAM_ID, "DLATE", event["ts"]), event_id="EvLate")
    assert state.seen and state.conversation is not None and state.conversation.id is not None
    assert [h.reason for h in store.handoffs(state.conversation.id)] == ["delayed"]
    assert [c.params["channel"] for c in standin.calls_to("chat.postMessage")][-1] == AGENT_CHANNEL  # agents told


def _payload(event: dict[str, object], event_id: str) -> dict[str, object]:
    return {
        "team_id": TEAM_ID,
        "channel_id": event["channel"],
        "user_id": event["user"],
        "ts": event["ts"],
        "thread_ts": None,
        "event_id": event_id,
        "is_dm": True,
        "mentions_bot": False,
    }
