"""Parsing Slack payloads into the facts listeners act on; malformed ones parse to None."""

from __future__ import annotations

import pytest

from bot.slack.events import parse_button, parse_message, parse_reaction, rating_reaction
from bot.slack.shape import shape_problem
from tests.bot.slack import payloads
from tests.bot.slack.standin import BOT_USER_ID


def test_mention_is_stripped_and_flagged() -> None:
    event = payloads.message(f"<@{BOT_USER_ID}|supportbot> help  ", channel="CGEN")
    msg = parse_message(payloads.event_callback(event, event_id="Ev1"), event, bot_user_id=BOT_USER_ID)
    assert msg is not None and msg.text == "help" and msg.mentions_bot and not msg.is_dm and msg.event_id == "Ev1"
    assert msg.root_ts == event["ts"] and not msg.is_reply


def test_reply_uses_the_parent_ts() -> None:
    event = payloads.message("more", thread_ts="1.0")
    msg = parse_message(payloads.event_callback(event), event, bot_user_id=BOT_USER_ID)
    assert msg is not None and msg.is_reply and msg.root_ts == "1.0" and msg.is_dm


@pytest.mark.parametrize(
    "extra",
    [
        {"subtype": "message_changed"},
        {"subtype": "bot_message"},
        {"bot_id": "B1"},
        {"hidden": True},
        {"user": BOT_USER_ID},
        {"user": None},
        {"ts": 5},
        {"thread_ts": ["x"]},
        {"channel": "C" * 100},
    ],
)
def test_not_a_question(extra: dict[str, object]) -> None:
    event = {**payloads.message("password"), **extra}
    assert parse_message(payloads.event_callback(event), event, bot_user_id=BOT_USER_ID) is None


def test_missing_event_id_falls_back_to_the_message_identity() -> None:
    event = payloads.message("hi", channel="DX", ts="9.9")
    body = payloads.event_callback(event)
    del body["event_id"]
    msg = parse_message(body, event, bot_user_id=BOT_USER_ID)
    assert msg is not None and msg.event_id == "msg:DX:9.9"


def test_reactions() -> None:
    assert [rating_reaction(n) for n in ("+1", "thumbsup::skin-tone-5", "-1", "thumbsdown", "tada", None)] == [
        True,
        True,
        False,
        False,
        None,
        None,
    ]
    event = payloads.reaction("added", "-1::skin-tone-2", user="U1", channel="C1", ts="1.1")
    parsed = parse_reaction(event, bot_user_id=BOT_USER_ID)
    assert parsed is not None and (parsed.user_id, parsed.channel_id, parsed.message_ts, parsed.helpful) == (
        "U1",
        "C1",
        "1.1",
        False,
    )
    assert parse_reaction({**event, "item_user": "USOMEONE"}, bot_user_id=BOT_USER_ID) is None
    assert parse_reaction({**event, "item": {"type": "file", "file": "F1"}}, bot_user_id=BOT_USER_ID) is None


def test_button_press() -> None:
    body = payloads.block_action("answer_helpful", "42", user="U1", channel="C1", message_ts="2.2", thread_ts="1.1")
    press = parse_button(body)
    assert press is not None and (press.answer_id, press.thread_ts, press.message_ts) == (42, "1.1", "2.2")
    assert parse_button({**body, "actions": [{"value": "-3"}]}) is None
    del body["message"]["thread_ts"], body["container"]["thread_ts"]
    press = parse_button(body)
    assert press is not None and press.thread_ts == "2.2"  # a top-level answer is its own thread


@pytest.mark.parametrize(
    "body",
    [
        [],
        {"type": "event_callback", "event": "x"},
        {"type": "event_callback", "authorizations": "x"},
        {"type": "event_callback", "event": {"type": 3}},
        {"type": "block_actions", "actions": []},
        {"type": "view_submission", "view": {"callback_id": "c"}},
        {"type": 7},
        {"team": "T1"},
    ],
)
def test_shape_problems(body: object) -> None:
    assert shape_problem(body) is not None


def test_real_payloads_have_no_shape_problem() -> None:
    body = payloads.block_action("a", "1", user="U", channel="C", message_ts="1", thread_ts="1")
    assert shape_problem(body) is None
    assert (
        shape_problem(payloads.event_callback(payloads.reaction("added", "+1", user="U", channel="C", ts="1"))) is None
    )
