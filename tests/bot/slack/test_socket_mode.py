"""Socket Mode end to end: apps.connections.open -> websocket -> envelope -> ack frame -> answer."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from bot.options import ServingOptions
from bot.slack import blocks, build_app, close_app
from bot.slack.server import serve_socket
from storage.repository import Repository
from tests.bot.slack import payloads
from tests.bot.slack.fakes import FakeEngine
from tests.bot.slack.harness import APP_TOKEN, BOT_TOKEN, CUSTOMER, quiesce, watch
from tests.bot.slack.standin import SlackStandIn


@pytest.fixture
async def socket_bot(standin: SlackStandIn, store: Repository, engine: FakeEngine) -> AsyncIterator[SlackStandIn]:
    options = ServingOptions.defaults(bot_token=BOT_TOKEN, api_base_url=standin.api_url, max_retries=1)
    app = watch(build_app(engine=engine, repo=store, options=options))
    stop = asyncio.Event()
    task = asyncio.create_task(serve_socket(app, app_token=APP_TOKEN, stop=stop))
    await standin.wait_connected()
    yield standin
    await quiesce()
    stop.set()
    await asyncio.wait_for(task, timeout=5)
    await close_app(app)


async def test_event_envelope_is_acked_then_answered(socket_bot: SlackStandIn, store: Repository) -> None:
    standin = socket_bot
    [opened] = standin.calls_to("apps.connections.open")
    assert opened.headers["Authorization"] == f"Bearer {APP_TOKEN}"
    event = payloads.message("password?")
    envelope_id = await standin.send_envelope("events_api", payloads.event_callback(event))
    ack = await standin.wait_for_ack(envelope_id)
    assert ack.payload is None  # exactly {"envelope_id": ...}
    [call] = await standin.wait_for_call("chat.postMessage")
    assert call.params["thread_ts"] == event["ts"]
    await quiesce()
    answer = store.find_answer_by_slack_ts(channel_id="DCUSTOMER", slack_ts=call.response["ts"])
    assert answer is not None and answer.status == "posted"


async def test_redelivered_envelope_is_acked_and_answered_once(socket_bot: SlackStandIn) -> None:
    standin = socket_bot
    body = payloads.event_callback(payloads.message("password?"))
    first = await standin.send_envelope("events_api", body)
    again = await standin.send_envelope("events_api", body, retry_attempt=1)
    await standin.wait_for_ack(first)
    await standin.wait_for_ack(again)
    await standin.wait_for_call("chat.postMessage")
    await quiesce()
    assert len(standin.calls_to("chat.postMessage")) == 1


async def test_interactive_envelope_stores_the_rating(socket_bot: SlackStandIn, store: Repository) -> None:
    standin = socket_bot
    event = payloads.message("password?")
    await standin.send_envelope("events_api", payloads.event_callback(event))
    [call] = await standin.wait_for_call("chat.postMessage")
    await quiesce()
    answer = store.find_answer_by_slack_ts(channel_id="DCUSTOMER", slack_ts=call.response["ts"])
    assert answer is not None and answer.id is not None
    click = payloads.block_action(
        blocks.ACTION_HELPFUL,
        str(answer.id),
        user=CUSTOMER,
        channel="DCUSTOMER",
        message_ts=call.response["ts"],
        thread_ts=event["ts"],
    )
    envelope_id = await standin.send_envelope("interactive", click, accepts_response_payload=True)
    await standin.wait_for_ack(envelope_id)
    await standin.wait_for_call("chat.postEphemeral")
    assert [(r.rater_id, r.helpful) for r in store.ratings(answer.id)] == [(CUSTOMER, True)]


async def test_malformed_envelopes_are_acked_and_dropped(socket_bot: SlackStandIn) -> None:
    standin = socket_bot
    broken = payloads.event_callback({})
    broken["event"] = "not an object"
    ids = [
        await standin.send_envelope("events_api", broken),
        await standin.send_envelope("events_api", {"type": "event_callback"}),
        await standin.send_envelope("interactive", {"type": "block_actions", "actions": []}),
    ]
    for envelope_id in ids:
        await standin.wait_for_ack(envelope_id)
    await standin.send_envelope("events_api", {}, raw="this is not json")
    await standin.send_envelope("events_api", payloads.event_callback(payloads.message("password?")))
    await standin.wait_for_call("chat.postMessage")


async def test_reconnects_when_slack_asks(socket_bot: SlackStandIn) -> None:
    standin = socket_bot
    await standin.disconnect_all("refresh_requested")
    await standin.wait_for_call("apps.connections.open", n=2, timeout=10)
    await standin.wait_for_call("ws:connect", n=2, timeout=10)
    event = payloads.message("password?")
    envelope_id = await standin.send_envelope("events_api", payloads.event_callback(event))
    await standin.wait_for_ack(envelope_id)
    [call] = await standin.wait_for_call("chat.postMessage")
    assert call.params["thread_ts"] == event["ts"]
