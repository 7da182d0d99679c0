"""Hand-offs to humans: announced in the agents' channel, stored, and the thread left to the agent."""

from __future__ import annotations

from typing import Any

from bot.slack import blocks, texts
from storage.repository import Repository
from tests.bot.slack import payloads
from tests.bot.slack.conftest import MakeBot
from tests.bot.slack.fakes import HANDOFF_TEXT
from tests.bot.slack.harness import AGENT, AGENT_CHANNEL, CUSTOMER, SUPPORT_CHANNEL, BotUnderTest, quiesce
from tests.bot.slack.helpers import ephemerals_to, press
from tests.bot.slack.standin import TEAM_ID, Call, SlackStandIn


def posts_to(standin: SlackStandIn, channel: str) -> list[Call]:
    return [c for c in standin.calls_to("chat.postMessage") if c.params["channel"] == channel]


def text_of(call: Call) -> str:
    return " ".join(b["text"]["text"] for b in call.params["blocks"] if b["type"] == "section")


async def handed_off(bot: BotUnderTest, standin: SlackStandIn) -> dict[str, Any]:
    """A question the bot is unsure of, asked in the support channel; returns once it is handed off."""
    event = payloads.message("my parrot ate the router", channel=SUPPORT_CHANNEL)
    await bot.event(event)
    await standin.wait_for_call("chat.postMessage", n=2)  # the customer's reply and the agents' announcement
    await quiesce()
    return event


async def test_unsure_answer_is_handed_off_to_the_agents_channel(
    bot: BotUnderTest, standin: SlackStandIn, store: Repository
) -> None:
    event = await handed_off(bot, standin)
    [customer_reply] = posts_to(standin, SUPPORT_CHANNEL)
    assert customer_reply.params["thread_ts"] == event["ts"] and customer_reply.params["text"] == HANDOFF_TEXT
    assert all(b["type"] != "actions" for b in customer_reply.params["blocks"])  # a person replies next

    [announcement] = posts_to(standin, AGENT_CHANNEL)
    assert "thread_ts" not in announcement.params or not announcement.params["thread_ts"]
    body = text_of(announcement)
    assert "my parrot ate the router" in body and "`billing` (22%)" in body and f"<@{CUSTOMER}>" in body
    [permalink] = standin.calls_to("chat.getPermalink")
    assert permalink.params["message_ts"] == event["ts"] and permalink.response["permalink"] in body

    conversation = store.find_conversation(team_id=TEAM_ID, channel_id=SUPPORT_CHANNEL, thread_ts=event["ts"])
    assert conversation is not None and conversation.id is not None
    [handoff] = store.handoffs(conversation.id)
    answer = store.find_answer_by_slack_ts(channel_id=SUPPORT_CHANNEL, slack_ts=customer_reply.response["ts"])
    assert answer is not None and answer.source == "handoff"
    assert (handoff.reason, handoff.answer_id, handoff.agent_channel_ts) == (
        "abstained",
        answer.id,
        announcement.response["ts"],
    )


async def test_agent_reply_is_stored_and_the_bot_steps_back(
    bot: BotUnderTest, standin: SlackStandIn, store: Repository
) -> None:
    event = await handed_off(bot, standin)
    await bot.event(
        payloads.message("Hi, I'm Sam; sending a new one.", user=AGENT, channel=SUPPORT_CHANNEL, thread_ts=event["ts"])
    )
    await quiesce()
    await bot.event(payloads.message("thanks! and my password?", channel=SUPPORT_CHANNEL, thread_ts=event["ts"]))
    await quiesce()
    assert len(standin.calls_to("chat.postMessage")) == 2  # no answer to the agent, none after the agent
    conversation = store.find_conversation(team_id=TEAM_ID, channel_id=SUPPORT_CHANNEL, thread_ts=event["ts"])
    assert conversation is not None and conversation.id is not None
    messages = store.messages(conversation.id)
    assert [(m.role, m.user_id) for m in messages] == [
        ("user", CUSTOMER),
        ("bot", None),
        ("agent", AGENT),
        ("user", CUSTOMER),
    ]
    assert messages[2].text == "Hi, I'm Sam; sending a new one."


async def test_customer_asks_for_a_human(bot: BotUnderTest, standin: SlackStandIn, store: Repository) -> None:
    event = payloads.message("password?", channel=SUPPORT_CHANNEL)
    await bot.event(event)
    [answer_call] = await standin.wait_for_call("chat.postMessage")
    await quiesce()
    answer = store.find_answer_by_slack_ts(channel_id=SUPPORT_CHANNEL, slack_ts=answer_call.response["ts"])
    assert answer is not None
    from tests.bot.slack.helpers import Asked

    asked = Asked(event, answer_call, answer.id or 0)
    await press(bot, asked, blocks.ACTION_HUMAN, user=CUSTOMER)
    await standin.wait_for_call("chat.postMessage", n=3)
    await quiesce()
    notice = [c for c in posts_to(standin, SUPPORT_CHANNEL) if c.params["text"] == texts.HANDOFF_CUSTOMER]
    assert len(notice) == 1 and notice[0].params["thread_ts"] == event["ts"]
    [announcement] = posts_to(standin, AGENT_CHANNEL)
    assert "password?" in text_of(announcement) and "`reset_password` (95%)" in text_of(announcement)
    [handoff] = store.handoffs(answer.conversation_id)
    assert (handoff.reason, handoff.answer_id) == ("customer_request", answer.id)

    await press(bot, asked, blocks.ACTION_HUMAN, user=CUSTOMER)  # again: no second hand-off
    await standin.wait_for_call("chat.postEphemeral")
    await quiesce()
    assert ephemerals_to(standin, CUSTOMER) == [texts.HANDOFF_ALREADY]
    assert len(store.handoffs(answer.conversation_id)) == 1 and len(posts_to(standin, AGENT_CHANNEL)) == 1


async def test_engine_failure_is_handed_off_not_dropped(
    bot: BotUnderTest, standin: SlackStandIn, store: Repository
) -> None:
    event = payloads.message("this will crash the model")
    await bot.event(event)
    calls = await standin.wait_for_call("chat.postMessage", n=2)
    await quiesce()
    reply = next(c for c in calls if c.params["channel"] == "DCUSTOMER")
    assert reply.params["text"] == texts.ENGINE_FAILED
    answer = store.find_answer_by_slack_ts(channel_id="DCUSTOMER", slack_ts=reply.response["ts"])
    assert answer is not None and answer.source == "handoff"
    [handoff] = store.handoffs(answer.conversation_id)
    assert handoff.reason == "engine_error"


async def test_without_permalink_or_agents_channel(make_bot: MakeBot, standin: SlackStandIn, store: Repository) -> None:
    standin.fail("chat.getPermalink", status=200, times=None, error="message_not_found")
    bot = await make_bot()
    event = payloads.message("my parrot ate the router")
    await bot.event(event)
    calls = await standin.wait_for_call("chat.postMessage", n=2)
    link = f"https://slack.com/archives/DCUSTOMER/p{event['ts'].replace('.', '')}"
    assert any(link in text_of(c) for c in calls if c.params["channel"] == AGENT_CHANNEL)

    quiet = await make_bot(agent_channel_id=None)
    event = payloads.message("my parrot ate the router again")
    await quiet.event(event)
    await standin.wait_for_call("chat.postMessage", n=3)
    await quiesce()
    conversation = store.find_conversation(team_id=TEAM_ID, channel_id="DCUSTOMER", thread_ts=event["ts"])
    assert conversation is not None and conversation.id is not None
    [handoff] = store.handoffs(conversation.id)
    assert handoff.agent_channel_ts is None and len(standin.calls_to("chat.postMessage")) == 3
