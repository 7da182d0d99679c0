"""Hostile and malformed deliveries are acknowledged or refused cleanly, and the bot keeps answering."""

from __future__ import annotations

from typing import Any

import pytest

from storage.repository import Repository
from tests.bot.slack import payloads
from tests.bot.slack.harness import CUSTOMER, BotUnderTest, quiesce
from tests.bot.slack.helpers import ask
from tests.bot.slack.standin import TEAM_ID, SlackStandIn, signed_headers

FUTURE_EVENT = {"type": "some_future_event", "whatever": True}
WEIRD_EVENTS: list[Any] = [
    {"type": "message"},  # nothing else
    {"type": "message", "user": 123, "text": ["x"], "ts": None, "channel": {}},
    {"type": "message", "user": CUSTOMER, "text": "password", "ts": "1.1", "channel": "D" + "X" * 5000},
    {"type": "message", "user": CUSTOMER, "text": "password", "ts": "1.2", "channel": "DX", "thread_ts": 7},
    {"type": "app_mention", "user": CUSTOMER, "text": None, "ts": "1.3"},
    {"type": "reaction_added", "user": CUSTOMER, "reaction": "+1", "item": "not-a-dict"},
    {"type": "reaction_removed", "reaction": ["+1"], "item": {"type": "message", "channel": 5, "ts": {}}},
    {"type": "app_home_opened", "user": None},
    FUTURE_EVENT,
    {"no_type": True},
]


async def test_malformed_events_are_acked_and_ignored(
    bot: BotUnderTest, standin: SlackStandIn, store: Repository
) -> None:
    statuses = [(await bot.send(payloads.event_callback(event))).status for event in WEIRD_EVENTS]
    not_a_dict = payloads.event_callback({})
    not_a_dict["event"] = "a string"
    statuses.append((await bot.send(not_a_dict)).status)
    no_event = payloads.event_callback({})
    del no_event["event"]
    statuses.append((await bot.send(no_event)).status)
    rate_limited = {"token": "t", "type": "app_rate_limited", "team_id": TEAM_ID, "minute_rate_limited": 1518467820}
    statuses.append((await bot.send(rate_limited)).status)
    assert set(statuses) <= {200, 400, 404}, statuses  # acknowledged, or refused as malformed; never a 500
    assert statuses[WEIRD_EVENTS.index(FUTURE_EVENT)] == 200 and statuses[-1] == 200
    await quiesce()
    assert standin.calls_to("chat.postMessage") == []
    await ask(bot, standin, "password?")


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        ('{"type": "event_callback", "event": {', "application/json"),
        ("[1, 2, 3]", "application/json"),
        ('"just a string"', "application/json"),
        ("payload=%7Bnot-json", "application/x-www-form-urlencoded"),
        ("\udcff", "application/json"),
        ("", "application/json"),
    ],
)
async def test_invalid_bodies_are_refused(
    bot: BotUnderTest, standin: SlackStandIn, body: str, content_type: str
) -> None:
    raw = body.encode("utf-8", "surrogateescape")
    headers = signed_headers(bot.secret, raw.decode("latin-1"), content_type=content_type)
    async with bot.session.post(bot.url, data=raw, headers=headers) as response:
        assert response.status in (400, 401, 404), (response.status, await response.text())
    await ask(bot, standin, "password?")


async def test_malformed_interactions_are_acked(bot: BotUnderTest, standin: SlackStandIn, store: Repository) -> None:
    asked = await ask(bot, standin, "password?")
    good = payloads.block_action(
        "answer_helpful",
        str(asked.answer_id),
        user=CUSTOMER,
        channel=asked.channel,
        message_ts=asked.answer_ts,
        thread_ts=asked.thread_ts,
    )
    variants: list[dict[str, Any]] = []
    for broken in (
        {"actions": []},
        {"actions": "x"},
        {"actions": [{"action_id": "answer_helpful", "value": "not-a-number"}]},
        {"actions": [{"action_id": "answer_helpful", "value": "9" * 40}]},
        {"user": None},
        {"container": None, "channel": None},
        {"actions": [{"action_id": "something_else", "value": "1"}]},
    ):
        variants.append({**good, **broken})
    variants.append({"type": "view_submission", "view": {"callback_id": "correct_answer", "private_metadata": "{"}})
    variants.append({"type": "view_submission", "user": {"id": CUSTOMER}, "view": "nope"})
    variants.append({"type": "view_closed", "view": {"callback_id": "correct_answer"}})
    variants.append({"type": "block_suggestion", "action_id": "x"})
    statuses = [(await bot.send(v)).status for v in variants]
    assert set(statuses) <= {200, 400, 404}, statuses
    assert statuses[2:7] == [200] * 5  # well-formed clicks with bad values are acknowledged
    await quiesce()
    assert store.ratings(asked.answer_id) == []
    assert standin.calls_to("chat.postEphemeral") == []


async def test_megabyte_question_is_answered(bot: BotUnderTest, standin: SlackStandIn, store: Repository) -> None:
    text = "password " + "é" * 1_000_000
    event = payloads.message(text)
    reply = await bot.event(event)
    assert reply.status == 200
    [call] = await standin.wait_for_call("chat.postMessage", timeout=10)
    assert call.params["thread_ts"] == event["ts"]
    await quiesce()
    conversation = store.find_conversation(team_id=TEAM_ID, channel_id="DCUSTOMER", thread_ts=event["ts"])
    assert conversation is not None and len(store.messages(conversation.id)[0].text) == 200  # type: ignore[arg-type]
