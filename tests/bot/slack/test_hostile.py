"""Hostile and malformed deliveries are acknowledged or refused cleanly, and the bot keeps answering."""

from __future__ import annotations

from typing import Any

import pytest

from bot.slack.server import parse_body
from storage.repository import Repository
from tests.bot.slack import payloads
from tests.bot.slack.harness import CUSTOMER, BotUnderTest, quiesce
from tests.bot.slack.helpers import ask
from tests.bot.slack.standin import TEAM_ID, SlackStandIn, signed_headers

FUTURE_EVENT = {"type": "some_future_event", "whatever": True}
ACKED, REFUSED, UNHANDLED = 200, 400, 404  # acknowledged; refused as malformed (bot.slack.shape); Bolt's 404
# Each malformed event and what the bot answers: never a 500.
WEIRD_EVENTS: list[tuple[Any, int]] = [
    ({"type": "message"}, ACKED),  # nothing else
    ({"type": "message", "user": 123, "text": ["x"], "ts": None, "channel": {}}, REFUSED),
    ({"type": "message", "user": CUSTOMER, "text": "password", "ts": "1.1", "channel": "D" + "X" * 5000}, ACKED),
    ({"type": "message", "user": CUSTOMER, "text": "password", "ts": "1.2", "channel": "DX", "thread_ts": 7}, ACKED),
    ({"type": "app_mention", "user": CUSTOMER, "text": None, "ts": "1.3"}, ACKED),
    ({"type": "reaction_added", "user": CUSTOMER, "reaction": "+1", "item": "not-a-dict"}, REFUSED),
    ({"type": "reaction_removed", "reaction": ["+1"], "item": {"type": "message", "channel": 5, "ts": {}}}, REFUSED),
    ({"type": "app_home_opened", "user": None}, ACKED),
    (FUTURE_EVENT, ACKED),
    ({"no_type": True}, UNHANDLED),  # no event type: no listener can match
]


async def test_malformed_events_are_acked_and_ignored(
    bot: BotUnderTest, standin: SlackStandIn, store: Repository
) -> None:
    statuses = [(await bot.send(payloads.event_callback(event))).status for event, _ in WEIRD_EVENTS]
    expected = [status for _, status in WEIRD_EVENTS]
    not_a_dict = payloads.event_callback({})
    not_a_dict["event"] = "a string"
    statuses.append((await bot.send(not_a_dict)).status)
    expected.append(REFUSED)
    no_event = payloads.event_callback({})
    del no_event["event"]
    statuses.append((await bot.send(no_event)).status)
    expected.append(UNHANDLED)
    rate_limited = {"token": "t", "type": "app_rate_limited", "team_id": TEAM_ID, "minute_rate_limited": 1518467820}
    statuses.append((await bot.send(rate_limited)).status)
    expected.append(ACKED)
    assert statuses == expected
    await quiesce()
    assert standin.calls_to("chat.postMessage") == []
    await ask(bot, standin, "password?")


@pytest.mark.parametrize(
    ("body", "content_type", "status"),
    [
        ('{"type": "event_callback", "event": {', "application/json", REFUSED),
        ("[1, 2, 3]", "application/json", REFUSED),
        ('"just a string"', "application/json", REFUSED),
        ("payload=%7Bnot-json", "application/x-www-form-urlencoded", REFUSED),
        ("\udcff", "application/json", REFUSED),
        ("", "application/json", UNHANDLED),  # an empty body is an empty payload, which nothing matches
    ],
)
async def test_invalid_bodies_are_refused(
    bot: BotUnderTest, standin: SlackStandIn, body: str, content_type: str, status: int
) -> None:
    raw = body.encode("utf-8", "surrogateescape")
    headers = signed_headers(bot.secret, raw.decode("latin-1"), content_type=content_type)
    async with bot.session.post(bot.url, data=raw, headers=headers) as response:
        assert response.status == status, (response.status, await response.text())
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
    variants: list[tuple[dict[str, Any], int]] = [
        ({**good, "actions": []}, REFUSED),
        ({**good, "actions": "x"}, REFUSED),
        # well-formed clicks with bad values are acknowledged
        ({**good, "actions": [{"action_id": "answer_helpful", "value": "not-a-number"}]}, ACKED),
        ({**good, "actions": [{"action_id": "answer_helpful", "value": "9" * 40}]}, ACKED),
        ({**good, "user": None}, ACKED),
        ({**good, "container": None, "channel": None}, ACKED),
        ({**good, "actions": [{"action_id": "something_else", "value": "1"}]}, ACKED),
        ({"type": "view_submission", "view": {"callback_id": "correct_answer", "private_metadata": "{"}}, REFUSED),
        ({"type": "view_submission", "user": {"id": CUSTOMER}, "view": "nope"}, REFUSED),
        ({"type": "view_closed", "view": {"callback_id": "correct_answer"}}, REFUSED),  # no view.type
        ({"type": "block_suggestion", "action_id": "x"}, UNHANDLED),  # the bot has no options listener
    ]
    statuses = [(await bot.send(variant)).status for variant, _ in variants]
    assert statuses == [status for _, status in variants]
    await quiesce()
    assert store.ratings(asked.answer_id) == []
    assert standin.calls_to("chat.postEphemeral") == []


async def test_megabyte_question_is_answered(bot: BotUnderTest, standin: SlackStandIn, store: Repository) -> None:
    text = "password " + "é" * 150_000  # ~0.9 MB as JSON (\u00e9): under the 1 MiB body cap; Slack sends far less
    event = payloads.message(text)
    reply = await bot.event(event)
    assert reply.status == 200
    [call] = await standin.wait_for_call("chat.postMessage", timeout=10)
    assert call.params["thread_ts"] == event["ts"]
    await quiesce()
    conversation = store.find_conversation(team_id=TEAM_ID, channel_id="DCUSTOMER", thread_ts=event["ts"])
    assert conversation is not None and len(store.messages(conversation.id)[0].text) == 200  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("raw", "content_type", "parsed"),
    [
        ("", "application/json", {}),
        ('{"type": "event_callback"}', "application/json", {"type": "event_callback"}),
        ('{"a": 1}', "text/plain", {"a": 1}),  # a JSON object whatever the content type, as Bolt reads it
        (
            "payload=%7B%22type%22%3A%20%22block_actions%22%7D",
            "application/x-www-form-urlencoded",
            {"type": "block_actions"},
        ),
        ("command=%2Fhelp&text=", "application/x-www-form-urlencoded", {"command": "/help", "text": ""}),
        ("payloads=1", "application/x-www-form-urlencoded", {}),  # mentions a payload but has none
    ],
)
def test_bodies_parse_as_bolt_reads_them(raw: str, content_type: str, parsed: dict[str, Any]) -> None:
    assert parse_body(raw, content_type) == parsed


@pytest.mark.parametrize(("raw", "content_type"), [("{", "application/json"), ("payload=%7B", "x-www-form-urlencoded")])
def test_malformed_json_bodies_do_not_parse(raw: str, content_type: str) -> None:
    with pytest.raises(ValueError):
        parse_body(raw, content_type)
