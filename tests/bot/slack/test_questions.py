"""Questions from DMs, mentions and support channels: answered once, in the right thread, with the buttons."""

from __future__ import annotations

from typing import Any

from bot.slack import blocks
from storage.repository import Repository
from tests.bot.slack import payloads
from tests.bot.slack.fakes import INVOICE_PASSAGE, PASSWORD_ANSWER, FakeEngine
from tests.bot.slack.harness import AGENT, CUSTOMER, SUPPORT_CHANNEL, BotUnderTest, quiesce
from tests.bot.slack.standin import BOT_USER_ID, TEAM_ID, Call, SlackStandIn

ALL_BUTTONS = [blocks.ACTION_HELPFUL, blocks.ACTION_NOT_HELPFUL, blocks.ACTION_HUMAN]


def buttons(call: Call) -> list[dict[str, Any]]:
    return [el for block in call.params["blocks"] if block["type"] == "actions" for el in block["elements"]]


def assert_answer_posted(store: Repository, call: Call) -> int:
    """The stored answer behind a posted reply: marked posted with the reply's ts; returns its id."""
    ts = call.response["ts"]
    answer = store.find_answer_by_slack_ts(channel_id=call.params["channel"], slack_ts=ts)
    assert answer is not None and answer.status == "posted"
    assert [b["value"] for b in buttons(call)] == [str(answer.id)] * len(buttons(call))
    assert answer.id is not None
    return answer.id


async def test_dm_is_answered_in_its_thread_with_buttons(
    bot: BotUnderTest, standin: SlackStandIn, store: Repository
) -> None:
    event = payloads.message("How do I reset my password?")
    reply = await bot.event(event)
    assert reply.status == 200
    [call] = await standin.wait_for_call("chat.postMessage")
    assert call.params["channel"] == "DCUSTOMER" and call.params["thread_ts"] == event["ts"]
    assert PASSWORD_ANSWER in call.params["text"]
    assert [b["action_id"] for b in buttons(call)] == ALL_BUTTONS
    await quiesce()
    answer_id = assert_answer_posted(store, call)
    conversation = store.find_conversation(team_id=TEAM_ID, channel_id="DCUSTOMER", thread_ts=event["ts"])
    assert conversation is not None and conversation.started_by == CUSTOMER
    messages = store.messages(conversation.id)  # type: ignore[arg-type]
    assert [(m.role, m.user_id) for m in messages] == [("user", CUSTOMER), ("bot", None)]
    assert messages[1].slack_ts == call.response["ts"]
    answer = store.get_answer(answer_id)
    assert answer is not None and answer.intent == "reset_password" and answer.question_id == messages[0].id


async def test_mention_is_answered_in_thread_without_the_mention(
    bot: BotUnderTest, standin: SlackStandIn, engine: FakeEngine
) -> None:
    event = payloads.mention("where is my invoice?", channel="CGENERAL")
    await bot.event(event)
    [call] = await standin.wait_for_call("chat.postMessage")
    assert call.params["channel"] == "CGENERAL" and call.params["thread_ts"] == event["ts"]
    assert engine.questions == ["where is my invoice?"]
    section_texts = " ".join(b["text"]["text"] for b in call.params["blocks"] if b["type"] == "section")
    assert "&amp;" in section_texts and "&lt;Billing&gt;" in section_texts  # KB passages are escaped
    assert "<https://help.example.com/invoices|Invoices &amp; receipts>" in section_texts
    assert INVOICE_PASSAGE in call.params["text"]


async def test_support_channel_message_is_answered_and_followup_joins_the_conversation(
    bot: BotUnderTest, standin: SlackStandIn, store: Repository
) -> None:
    first = payloads.message("I forgot my password", channel=SUPPORT_CHANNEL)
    await bot.event(first)
    [call] = await standin.wait_for_call("chat.postMessage")
    assert call.params["thread_ts"] == first["ts"]
    await quiesce()  # the bot's reply is stored just after it is posted
    followup = payloads.message("and my invoice?", channel=SUPPORT_CHANNEL, thread_ts=first["ts"])
    await bot.event(followup)
    calls = await standin.wait_for_call("chat.postMessage", n=2)
    assert calls[1].params["thread_ts"] == first["ts"]  # the parent's ts, never the reply's
    await quiesce()
    conversation = store.find_conversation(team_id=TEAM_ID, channel_id=SUPPORT_CHANNEL, thread_ts=first["ts"])
    assert conversation is not None
    roles = [m.role for m in store.messages(conversation.id)]  # type: ignore[arg-type]
    assert roles == ["user", "bot", "user", "bot"]
    assert store.find_conversation(team_id=TEAM_ID, channel_id=SUPPORT_CHANNEL, thread_ts=followup["ts"]) is None


async def test_mention_in_support_channel_is_answered_once(bot: BotUnderTest, standin: SlackStandIn) -> None:
    """Slack delivers both a `message` and an `app_mention` event for it."""
    ts = payloads.new_ts()
    text = f"<@{BOT_USER_ID}> password help please"
    await bot.event(payloads.message(text, channel=SUPPORT_CHANNEL, ts=ts))
    await bot.event(payloads.mention("password help please", channel=SUPPORT_CHANNEL, ts=ts))
    await standin.wait_for_call("chat.postMessage")
    await quiesce()
    assert len(standin.calls_to("chat.postMessage")) == 1


async def test_unrelated_channel_messages_and_unknown_threads_are_ignored(
    bot: BotUnderTest, standin: SlackStandIn, store: Repository
) -> None:
    await bot.event(payloads.message("password?", channel="CRANDOM"))
    await bot.event(payloads.message("password?", channel=SUPPORT_CHANNEL, thread_ts=payloads.new_ts()))
    await quiesce()
    assert standin.calls_to("chat.postMessage") == []
    assert store.stats(payloads_since()).questions == 0


def payloads_since() -> Any:
    from datetime import UTC, datetime, timedelta

    return datetime.now(UTC) - timedelta(hours=1)


async def test_mention_inside_someone_elses_thread_starts_a_conversation_there(
    bot: BotUnderTest, standin: SlackStandIn, store: Repository
) -> None:
    parent = payloads.new_ts()
    event = payloads.mention("password?", channel="CGENERAL", thread_ts=parent)
    await bot.event(event)
    [call] = await standin.wait_for_call("chat.postMessage")
    assert call.params["thread_ts"] == parent
    await quiesce()
    assert store.find_conversation(team_id=TEAM_ID, channel_id="CGENERAL", thread_ts=parent) is not None


async def test_noise_is_acked_and_ignored(bot: BotUnderTest, standin: SlackStandIn, store: Repository) -> None:
    parent = payloads.message("password?", channel=SUPPORT_CHANNEL)
    await bot.event(parent)
    await standin.wait_for_call("chat.postMessage")
    thread = parent["ts"]
    noise = [
        payloads.own_message("my own answer", channel=SUPPORT_CHANNEL, thread_ts=thread),
        payloads.message("beep password", channel=SUPPORT_CHANNEL, user="UOTHERBOT", bot_id="BOTHER"),
        payloads.message("integration password", channel=SUPPORT_CHANNEL, subtype="bot_message", bot_id="BHOOK"),
        {
            "type": "message",
            "subtype": "message_changed",
            "hidden": True,
            "channel": SUPPORT_CHANNEL,
            "ts": payloads.new_ts(),
            "message": {"type": "message", "user": CUSTOMER, "text": "password (edited)", "ts": thread},
        },
        {
            "type": "message",
            "subtype": "message_deleted",
            "hidden": True,
            "channel": SUPPORT_CHANNEL,
            "ts": payloads.new_ts(),
            "deleted_ts": thread,
        },
        payloads.message("joined", channel=SUPPORT_CHANNEL, subtype="channel_join"),
        {"type": "member_joined_channel", "user": AGENT, "channel": SUPPORT_CHANNEL, "event_ts": payloads.new_ts()},
    ]
    for event in noise:
        reply = await bot.event(event)
        assert reply.status == 200
    await quiesce()
    assert len(standin.calls_to("chat.postMessage")) == 1
    conversation = store.find_conversation(team_id=TEAM_ID, channel_id=SUPPORT_CHANNEL, thread_ts=thread)
    assert [m.role for m in store.messages(conversation.id)] == ["user", "bot"]  # type: ignore[union-attr, arg-type]


async def test_thread_broadcast_and_file_share_with_text_are_questions(
    bot: BotUnderTest, standin: SlackStandIn
) -> None:
    first = payloads.message("password?", channel=SUPPORT_CHANNEL)
    await bot.event(first)
    await standin.wait_for_call("chat.postMessage")
    await quiesce()
    broadcast = payloads.message("invoice?", channel=SUPPORT_CHANNEL, thread_ts=first["ts"], subtype="thread_broadcast")
    shared = payloads.message("password again", channel=SUPPORT_CHANNEL, subtype="file_share", files=[{"id": "F1"}])
    await bot.event(broadcast)
    await bot.event(shared)
    calls = await standin.wait_for_call("chat.postMessage", n=3)
    assert sorted(c.params["thread_ts"] for c in calls[1:]) == sorted([first["ts"], shared["ts"]])


async def test_empty_dm_gets_a_hint_and_empty_channel_post_is_ignored(
    bot: BotUnderTest, standin: SlackStandIn, engine: FakeEngine
) -> None:
    await bot.event(payloads.message("   "))
    await bot.event(payloads.message("", channel=SUPPORT_CHANNEL, subtype="file_share", files=[{"id": "F1"}]))
    [call] = await standin.wait_for_call("chat.postMessage")
    await quiesce()
    assert call.params["channel"] == "DCUSTOMER" and "blocks" not in call.params
    assert engine.questions == [] and len(standin.calls_to("chat.postMessage")) == 1


async def test_long_question_is_truncated_for_the_model(
    bot: BotUnderTest, standin: SlackStandIn, engine: FakeEngine, store: Repository
) -> None:
    text = "password " + "x" * 5000
    await bot.event(payloads.message(text))
    [call] = await standin.wait_for_call("chat.postMessage")
    assert engine.questions == [text[:200]]
    context = " ".join(el["text"] for b in call.params["blocks"] if b["type"] == "context" for el in b["elements"])
    assert "200" in context
    await quiesce()
    answer = store.find_answer_by_slack_ts(channel_id="DCUSTOMER", slack_ts=call.response["ts"])
    assert answer is not None
    question = next(m for m in store.messages(answer.conversation_id) if m.id == answer.question_id)
    assert len(question.text) == 200
