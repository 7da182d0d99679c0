"""Which payloads carry work that must not be lost, and the work rebuilt from what was stored."""

from __future__ import annotations

import json

from bot.slack import blocks
from bot.slack.work import work_of
from tests.bot.slack import payloads
from tests.bot.slack.harness import SUPPORT_CHANNEL
from tests.bot.slack.standin import BOT_USER_ID

SUPPORT = frozenset({SUPPORT_CHANNEL})


def _work(body: object):  # type: ignore[no-untyped-def]
    return work_of(json.loads(json.dumps(body)), bot_user_id=BOT_USER_ID, support_channel_ids=SUPPORT)


def test_questions_are_work_and_chatter_is_not() -> None:
    dm = _work(payloads.event_callback(payloads.message("password?"), event_id="Ev1"))
    assert dm is not None and (dm.key, dm.kind, dm.text) == ("Ev1", "question", "password?")
    assert dm.message().is_dm and dm.message().event_id == "Ev1"  # rebuilt from the stored payload
    assert _work(payloads.event_callback(payloads.message("hi all", channel="CRANDOM"))) is None
    assert _work(payloads.event_callback(payloads.message("help?", channel=SUPPORT_CHANNEL))) is not None
    reply = payloads.message("and?", channel="CRANDOM", thread_ts=payloads.new_ts())
    assert _work(payloads.event_callback(reply)) is not None  # maybe a follow-up: decided with the store


def test_a_mention_is_one_question_not_two() -> None:
    text = f"<@{BOT_USER_ID}> password?"
    as_message = payloads.message(text, channel="CRANDOM")
    as_mention = payloads.mention(text, channel="CRANDOM", ts=as_message["ts"])
    assert _work(payloads.event_callback(as_message)) is None
    mention = _work(payloads.event_callback(as_mention))
    assert mention is not None and mention.text == "password?"


def test_rating_reactions_and_clicks_are_work() -> None:
    reaction = _work(
        payloads.event_callback(payloads.reaction("added", "+1", user="U1", channel="D1", ts="1.2"), event_id="EvR")
    )
    assert reaction is not None and reaction.kind == "reaction_added" and reaction.reaction().helpful
    assert _work(payloads.event_callback(payloads.reaction("added", "tada", user="U1", channel="D1", ts="1.2"))) is None
    click = payloads.block_action(
        blocks.ACTION_HELPFUL, "7", user="U1", channel="D1", message_ts="1.3", thread_ts="1.1"
    )
    work = _work(click)
    assert work is not None and work.kind == "rating"
    press, helpful = work.button()
    assert (press.answer_id, helpful) == (7, True)
    assert (
        _work(
            payloads.block_action(blocks.ACTION_HUMAN, "7", user="U1", channel="D1", message_ts="1.3", thread_ts="1.1")
        )
        is None
    )
