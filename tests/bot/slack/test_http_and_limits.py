"""HTTP mode's request checks, Slack's rate limits and outages, and the App Home."""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime, timedelta

import pytest

from bot.slack import texts
from bot.slack.logs import protect
from storage.repository import Repository
from tests.bot.slack import payloads
from tests.bot.slack.conftest import MakeBot
from tests.bot.slack.harness import AGENT, CUSTOMER, BotUnderTest, quiesce
from tests.bot.slack.helpers import ask
from tests.bot.slack.standin import SlackStandIn, json_body, signed_headers


def an_hour_ago() -> datetime:
    return datetime.now(UTC) - timedelta(hours=1)


async def test_forged_and_replayed_requests_are_refused(
    bot: BotUnderTest, standin: SlackStandIn, store: Repository
) -> None:
    body = payloads.event_callback(payloads.message("password?"))
    forged = await bot.send(body, secret="not-the-secret")
    replayed = await bot.send(body, timestamp=time.time() - 360)
    from_the_future = await bot.send(body, timestamp=time.time() + 360)
    raw, content_type = json_body(body)
    headers = signed_headers(bot.secret, raw, content_type=content_type)
    tampered = await bot.post_raw(raw.replace("password", "passw0rd"), headers)
    unsigned = await bot.post_raw(raw, {"Content-Type": content_type})
    assert [r.status for r in (forged, replayed, from_the_future, tampered, unsigned)] == [401] * 5
    await quiesce()
    assert standin.calls_to("chat.postMessage") == [] and store.stats(an_hour_ago()).questions == 0
    accepted = await bot.send(body, timestamp=time.time() - 240)  # within five minutes: fine
    assert accepted.status == 200
    await standin.wait_for_call("chat.postMessage")


async def test_url_verification_and_health(bot: BotUnderTest) -> None:
    reply = await bot.send({"token": "t", "challenge": "abc123", "type": "url_verification"})
    assert reply.status == 200 and "abc123" in reply.text
    async with bot.session.get(bot.url.replace("/slack/events", "/healthz")) as response:
        assert response.status == 200


async def test_rate_limited_answer_arrives_after_retry_after(
    bot: BotUnderTest, standin: SlackStandIn, store: Repository
) -> None:
    standin.fail("chat.postMessage", status=429, retry_after=1)
    event = payloads.message("password?")
    reply = await bot.event(event)
    assert reply.elapsed_ms < 900  # acknowledged without waiting for the rate-limited reply (>= 1 s)
    [posted] = await standin.wait_for_call("chat.postMessage", timeout=5)
    [limited, _] = standin.calls_to("chat.postMessage", ok_only=False)
    assert limited.status == 429 and posted.at - limited.at >= 1.0
    await quiesce()
    answer = store.find_answer_by_slack_ts(channel_id="DCUSTOMER", slack_ts=posted.response["ts"])
    assert answer is not None and answer.status == "posted"


async def test_persistent_failure_marks_the_answer_failed_and_the_bot_carries_on(
    make_bot: MakeBot, standin: SlackStandIn, store: Repository
) -> None:
    bot = await make_bot(max_retries=1)
    standin.fail("chat.postMessage", status=500, times=None)
    await bot.event(payloads.message("password?"))
    await quiesce(timeout=10)
    attempts = standin.calls_to("chat.postMessage", ok_only=False)
    assert [a.status for a in attempts] == [500, 500]  # the first try and one retry
    [logged] = store.answers_between(an_hour_ago(), datetime.now(UTC) + timedelta(minutes=1))
    assert logged.answer.status == "failed" and "500" in (logged.answer.error or "")

    standin.heal()
    asked = await ask(bot, standin, "and the invoice?")
    answer = store.get_answer(asked.answer_id)
    assert answer is not None and answer.status == "posted"


async def test_app_home_for_agents_and_customers(bot: BotUnderTest, standin: SlackStandIn) -> None:
    await ask(bot, standin, "password?")
    await bot.event(payloads.home_opened(AGENT))
    await bot.event(payloads.home_opened(CUSTOMER))
    await bot.event({**payloads.home_opened(CUSTOMER), "tab": "messages"})
    await standin.wait_for_call("views.publish", n=2)
    await quiesce()
    published = {c.params["user_id"]: c.params["view"] for c in standin.calls_to("views.publish")}
    assert set(published) == {AGENT, CUSTOMER}
    agent_text = str(published[AGENT]["blocks"])
    assert "Questions: *1*" in agent_text and "v-test-1" in agent_text and "0.912" in agent_text
    customer_texts = [b["text"]["text"] for b in published[CUSTOMER]["blocks"] if b["type"] == "section"]
    assert customer_texts == [texts.HOME_CUSTOMER]
    assert "Questions" not in str(published[CUSTOMER]["blocks"])


async def test_oversized_and_forged_bodies_are_refused_and_never_logged(
    bot: BotUnderTest, standin: SlackStandIn, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    card, email = "4111 1111 1111 1111", "jo.doe@example.com"
    huge = payloads.event_callback(payloads.message("x" * (5 * 1024 * 1024)))
    too_big = await bot.send(huge)  # validly signed, but Slack never sends that much
    pii = payloads.event_callback(payloads.message(f"my card {card}, mail {email} " * 2000))
    forged = await bot.send(pii, secret="not-the-secret")
    assert (too_big.status, forged.status) == (413, 401)
    await quiesce()
    assert standin.calls_to("chat.postMessage") == []
    lines = [record.getMessage() for record in caplog.records]
    assert max(len(line) for line in lines) < 4096
    assert not any(card in line or email in line for line in lines)
    assert any("refused a request with an invalid signature" in line for line in lines)


async def test_debug_logs_of_the_slack_libraries_hold_no_unmasked_pii(
    bot: BotUnderTest, standin: SlackStandIn, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    protect(caplog.handler)  # as `supportbot serve` protects its handlers
    card, email = "4111 1111 1111 1111", "jo.doe@example.com"
    await bot.event(payloads.message(f"my parrot ate card {card}, write to {email}"))  # handed off: announced
    await standin.wait_for_call("chat.postMessage", n=2)
    await quiesce()
    slack = [r for r in caplog.records if r.name.startswith(("slack_sdk", "slack_bolt", "bot.slack.bolt"))]
    assert slack, "the Slack libraries logged nothing at DEBUG"
    lines = [caplog.handler.format(record) for record in slack]
    assert not any(card in line or email in line for line in lines)
