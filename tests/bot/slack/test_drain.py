"""Shutdown's drain: the bot counts its own listener runs and waits for the answers in flight."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from slack_bolt.async_app import AsyncApp, AsyncBoltRequest

from bot.slack.app import build_client
from bot.slack.inflight import TrackedApp
from bot.slack.server import drain
from storage.repository import Repository
from tests.bot.slack import payloads
from tests.bot.slack.conftest import MakeBot
from tests.bot.slack.fakes import FakeEngine
from tests.bot.slack.harness import BOT_TOKEN, BotUnderTest
from tests.bot.slack.standin import SlackStandIn


async def test_drain_finishes_the_answer_in_flight(make_bot: MakeBot, standin: SlackStandIn, store: Repository) -> None:
    bot = await make_bot(engine=FakeEngine(delay_s=0.4))
    await bot.event(payloads.message("password?"))
    assert standin.calls_to("chat.postMessage") == []  # acknowledged, still thinking
    assert await drain(bot.app, timeout_s=5)
    [call] = standin.calls_to("chat.postMessage")  # posted before drain returned, and marked posted
    answer = store.find_answer_by_slack_ts(channel_id="DCUSTOMER", slack_ts=call.response["ts"])
    assert answer is not None and answer.status == "posted"
    assert (bot.inflight.running, bot.inflight.started, bot.inflight.finished["on_message"]) == (0, 1, 1)


async def test_drain_gives_up_after_its_timeout(
    make_bot: MakeBot, standin: SlackStandIn, caplog: pytest.LogCaptureFixture
) -> None:
    bot = await make_bot(engine=FakeEngine(delay_s=0.5))
    await bot.event(payloads.message("password?"))
    with caplog.at_level(logging.INFO, logger="bot.slack.server"):
        assert not await drain(bot.app, timeout_s=0.05)
    assert "waiting for 1 event(s) in flight" in caplog.text and "1 event(s) still in flight" in caplog.text
    assert bot.inflight.running == 1
    await standin.wait_for_call("chat.postMessage")  # the answer still arrives (and teardown waits for it)


async def test_drain_with_nothing_in_flight_returns_at_once(bot: BotUnderTest) -> None:
    assert await drain(bot.app, timeout_s=0)


async def test_drain_cannot_count_an_app_not_built_by_build_app(caplog: pytest.LogCaptureFixture) -> None:
    app = AsyncApp(
        client=build_client(bot_token=BOT_TOKEN, api_base_url="http://127.0.0.1:9/api/", max_retries=3),
        signing_secret="",
    )
    assert not await drain(app, timeout_s=0)
    assert "not built by build_app" in caplog.text


async def test_ack_and_lazy_listeners_are_counted(standin: SlackStandIn) -> None:
    app = TrackedApp(
        client=build_client(bot_token=BOT_TOKEN, api_base_url=standin.api_url, max_retries=3), signing_secret=""
    )
    seen: list[str] = []

    async def first(event: dict[str, Any]) -> None:
        seen.append(f"ack {event['text']}")

    async def later(body: dict[str, Any]) -> None:
        seen.append(f"lazy {body['event']['text']}")

    app.event("message")(ack=first, lazy=[later])
    request = AsyncBoltRequest(mode="socket_mode", body=payloads.event_callback(payloads.message("hello")))
    response = await app.async_dispatch(request)
    assert response.status == 200
    assert await app.inflight.wait_for(lambda f: sum(f.finished.values()) == 2 and f.running == 0, timeout=5)
    assert sorted(seen) == ["ack hello", "lazy hello"]  # both got their own arguments
    assert dict(app.inflight.finished) == {"first": 1, "later": 1}
    assert [(r.kind, r.constraint) for r in app.registrations] == [("event", "message")]
