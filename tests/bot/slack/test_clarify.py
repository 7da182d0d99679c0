"""Clarifying questions end to end through the stand-in: buttons, a pick answers and is stored as a label,
"Something else" hands off, a second or forged click changes nothing."""

from __future__ import annotations

from bot.slack import blocks, texts
from storage.repository import CLARIFY_SOURCE, Repository
from tests.bot.slack.fakes import BILLING_ANSWER, CLARIFY_TEXT
from tests.bot.slack.harness import AGENT, AGENT_CHANNEL, CUSTOMER, BotUnderTest, quiesce
from tests.bot.slack.helpers import Asked, ask, ephemerals_to, press
from tests.bot.slack.standin import TEAM_ID, SlackStandIn

PICK_BILLING = f"{blocks.ACTION_CLARIFY_PREFIX}billing"
SOMETHING_ELSE = f"{blocks.ACTION_CLARIFY_PREFIX}something_else"


def buttons(asked: Asked) -> list[dict[str, object]]:
    return [el for b in asked.reply.params["blocks"] if b["type"] == "actions" for el in b["elements"]]


def thread_posts(standin: SlackStandIn, asked: Asked) -> list[str]:
    return [
        str(c.params["text"])
        for c in standin.calls_to("chat.postMessage")
        if c.params.get("thread_ts") == asked.thread_ts and c.params["channel"] == asked.channel
    ]


async def test_a_pick_answers_in_the_thread_and_is_stored_as_a_label(
    bot: BotUnderTest, standin: SlackStandIn, store: Repository
) -> None:
    asked = await ask(bot, standin, "which one: locked out or charged twice?")
    assert asked.reply.params["text"] == CLARIFY_TEXT
    shown = buttons(asked)
    assert [b["action_id"] for b in shown] == [
        f"{blocks.ACTION_CLARIFY_PREFIX}reset_password",
        PICK_BILLING,
        SOMETHING_ELSE,
    ]
    assert [b["text"]["text"] for b in shown] == [  # type: ignore[index]
        "How do I reset my password?",
        "Where are my invoices?",
        texts.BUTTON_SOMETHING_ELSE,
    ]
    stored = store.get_answer(asked.answer_id)
    assert stored is not None and stored.source == "clarify"

    await press(bot, asked, PICK_BILLING, user=CUSTOMER, text="Where are my invoices?")
    await standin.wait_for_call("chat.postMessage", n=2)
    await quiesce()
    assert thread_posts(standin, asked) == [CLARIFY_TEXT, BILLING_ANSWER]
    [update] = standin.calls_to("chat.update")  # the buttons are replaced by the choice
    assert update.params["ts"] == asked.answer_ts
    assert texts.CLARIFY_PICKED.format(choice="Where are my invoices?") in str(update.params["blocks"])
    assert "actions" not in str(update.params["blocks"])

    [label] = store.ratings(asked.answer_id)
    assert (label.rater_id, label.rater_role, label.helpful, label.corrected_intent, label.source) == (
        CUSTOMER,
        "customer",
        True,
        "billing",
        CLARIFY_SOURCE,
    )
    conversation = store.find_conversation(team_id=TEAM_ID, channel_id=asked.channel, thread_ts=asked.thread_ts)
    assert conversation is not None and conversation.id is not None
    followup = next(c for c in standin.calls_to("chat.postMessage") if c.params["text"] == BILLING_ANSWER)
    answer = store.find_answer_by_slack_ts(channel_id=asked.channel, slack_ts=followup.response["ts"])
    assert answer is not None and (answer.source, answer.intent, answer.status) == ("intent", "billing", "posted")
    assert answer.question_id == stored.question_id  # the same question, now answered
    assert not store.handoffs(conversation.id)

    await press(bot, asked, PICK_BILLING, user=CUSTOMER, text="Where are my invoices?")  # a second click
    await standin.wait_for_call("chat.postEphemeral")
    await quiesce()
    assert ephemerals_to(standin, CUSTOMER) == [texts.CLARIFY_ALREADY]
    assert len(thread_posts(standin, asked)) == 2 and len(store.ratings(asked.answer_id)) == 1


async def test_something_else_hands_off_without_a_label(
    bot: BotUnderTest, standin: SlackStandIn, store: Repository
) -> None:
    asked = await ask(bot, standin, "which one applies to me?")
    await press(bot, asked, SOMETHING_ELSE, user=CUSTOMER, text=texts.BUTTON_SOMETHING_ELSE)
    await standin.wait_for_call("chat.postMessage", n=3)
    await quiesce()
    assert thread_posts(standin, asked) == [CLARIFY_TEXT, texts.HANDOFF_CUSTOMER]
    assert any(c.params["channel"] == AGENT_CHANNEL for c in standin.calls_to("chat.postMessage"))
    [rating] = store.ratings(asked.answer_id)
    assert (rating.helpful, rating.corrected_intent, rating.source) == (False, None, CLARIFY_SOURCE)
    conversation = store.find_conversation(team_id=TEAM_ID, channel_id=asked.channel, thread_ts=asked.thread_ts)
    assert conversation is not None and conversation.id is not None
    [handoff] = store.handoffs(conversation.id)
    assert (handoff.reason, handoff.answer_id) == ("customer_request", asked.answer_id)


async def test_a_forged_pick_or_a_pick_on_an_ordinary_answer_changes_nothing(
    bot: BotUnderTest, standin: SlackStandIn, store: Repository
) -> None:
    asked = await ask(bot, standin, "which one?")
    await press(bot, asked, PICK_BILLING, user=AGENT, text="Where are my invoices?")  # not the asker
    await standin.wait_for_call("chat.postEphemeral")
    assert ephemerals_to(standin, AGENT) == [texts.CLARIFY_NOT_YOURS]
    await press(bot, asked, f"{blocks.ACTION_CLARIFY_PREFIX}drop_all_tables", user=CUSTOMER, text="x")
    answered = await ask(bot, standin, "password?")
    await press(bot, answered, PICK_BILLING, user=CUSTOMER, text="Where are my invoices?")
    await standin.wait_for_call("chat.postEphemeral", n=3)
    await quiesce()
    assert ephemerals_to(standin, CUSTOMER) == [texts.ANSWER_GONE, texts.ANSWER_GONE]
    assert store.ratings(asked.answer_id) == [] and store.ratings(answered.answer_id) == []
    assert len(thread_posts(standin, asked)) == 1 and not standin.calls_to("chat.update")
