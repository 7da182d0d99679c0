"""Ratings by button and by reaction, and the agents' correction modal: each checked in the store."""

from __future__ import annotations

import asyncio
import json
import threading

import pytest

from bot.slack import blocks, texts
from storage.errors import StorageError
from storage.models import Answer
from storage.repository import Repository, ThreadRef
from tests.bot.slack import payloads
from tests.bot.slack.conftest import MakeBot
from tests.bot.slack.harness import AGENT, CUSTOMER, BotUnderTest, quiesce
from tests.bot.slack.helpers import ask, ephemerals_to, press, shortcut
from tests.bot.slack.standin import TEAM_ID, SlackStandIn
from tests.factories import answered_question


async def test_button_ratings_are_stored_then_confirmed(
    bot: BotUnderTest, standin: SlackStandIn, store: Repository
) -> None:
    asked = await ask(bot, standin, "password?")
    await press(bot, asked, blocks.ACTION_HELPFUL, user=CUSTOMER)
    await standin.wait_for_call("chat.postEphemeral")
    [rating] = store.ratings(asked.answer_id)
    assert (rating.rater_id, rating.rater_role, rating.helpful, rating.source) == (CUSTOMER, "customer", True, "button")
    [confirmation] = standin.calls_to("chat.postEphemeral")
    assert confirmation.params["user"] == CUSTOMER and confirmation.params["thread_ts"] == asked.thread_ts
    assert confirmation.params["text"] == texts.RATED_HELPFUL

    await press(bot, asked, blocks.ACTION_HELPFUL, user=CUSTOMER)  # a double click counts once
    await press(bot, asked, blocks.ACTION_NOT_HELPFUL, user=AGENT)
    await standin.wait_for_call("chat.postEphemeral", n=3)
    await quiesce()
    ratings = sorted((r.rater_id, r.rater_role, r.helpful) for r in store.ratings(asked.answer_id))
    assert ratings == [(AGENT, "agent", False), (CUSTOMER, "customer", True)]

    await press(bot, asked, blocks.ACTION_NOT_HELPFUL, user=CUSTOMER)  # a change of mind replaces the verdict
    await standin.wait_for_call("chat.postEphemeral", n=4)
    assert sorted((r.rater_id, r.helpful) for r in store.ratings(asked.answer_id)) == [
        (AGENT, False),
        (CUSTOMER, False),
    ]
    assert ephemerals_to(standin, CUSTOMER)[-1] == texts.RATED_NOT_HELPFUL


async def test_rating_an_unknown_answer_is_refused_politely(bot: BotUnderTest, standin: SlackStandIn) -> None:
    asked = await ask(bot, standin, "password?")
    payload = payloads.block_action(
        blocks.ACTION_HELPFUL,
        "999999",
        user=CUSTOMER,
        channel=asked.channel,
        message_ts=asked.answer_ts,
        thread_ts=asked.thread_ts,
    )
    assert (await bot.send(payload)).status == 200
    await standin.wait_for_call("chat.postEphemeral")
    assert ephemerals_to(standin, CUSTOMER) == [texts.ANSWER_GONE]


async def test_reactions_rate_and_unrate(bot: BotUnderTest, standin: SlackStandIn, store: Repository) -> None:
    asked = await ask(bot, standin, "password?", channel="CSUPPORT")
    on_answer = {"channel": asked.channel, "ts": asked.answer_ts}
    await bot.event(payloads.reaction("added", "+1::skin-tone-3", user=CUSTOMER, **on_answer))
    await bot.event(payloads.reaction("added", "thumbsdown", user=AGENT, **on_answer))
    await bot.event(payloads.reaction("added", "tada", user=CUSTOMER, **on_answer))  # not a rating
    await bot.event(
        payloads.reaction("added", "-1", user=CUSTOMER, channel=asked.channel, ts=asked.thread_ts, item_user=CUSTOMER)
    )  # on the customer's own message
    await quiesce()
    ratings = sorted((r.rater_id, r.rater_role, r.helpful, r.source) for r in store.ratings(asked.answer_id))
    assert ratings == [(AGENT, "agent", False, "reaction"), (CUSTOMER, "customer", True, "reaction")]

    await bot.event(payloads.reaction("removed", "+1::skin-tone-3", user=CUSTOMER, **on_answer))
    await quiesce()
    assert [(r.rater_id, r.helpful) for r in store.ratings(asked.answer_id)] == [(AGENT, False)]


async def test_agent_correction_modal_end_to_end(bot: BotUnderTest, standin: SlackStandIn, store: Repository) -> None:
    asked = await ask(bot, standin, "where is my invoice?")
    used = await shortcut(bot, asked, user=AGENT)  # the message shortcut on the bot's reply
    [opened] = await standin.wait_for_call("views.open")
    assert opened.params["trigger_id"] == used["trigger_id"]
    view = opened.params["view"]
    assert view["callback_id"] == blocks.CORRECTION_CALLBACK
    details = json.dumps(view["blocks"])  # the diagnostics the customer no longer sees are the agent's
    assert "intent `billing`" in details and "model " in details
    select = next(b for b in view["blocks"] if b.get("block_id") == blocks.INTENT_BLOCK)["element"]
    assert [o["value"] for o in select["options"]] == ["out_of_scope", "reset_password", "billing", "greeting"]
    assert select["initial_option"]["value"] == "billing"  # the bot's prediction

    submission = payloads.view_submission(
        view, user=AGENT, values=payloads.correction_values("reset_password", "Go to Settings > Security.")
    )
    reply = await bot.send(submission)
    assert reply.status == 200 and reply.text == ""  # closes the modal
    await standin.wait_for_call("chat.postEphemeral")
    [rating] = store.ratings(asked.answer_id)
    assert (rating.rater_id, rating.rater_role, rating.source) == (AGENT, "agent", "modal")
    assert (rating.corrected_intent, rating.corrected_answer, rating.helpful) == (
        "reset_password",
        "Go to Settings > Security.",
        False,
    )
    assert ephemerals_to(standin, AGENT) == [texts.CORRECTION_SAVED]

    # confirming the prediction counts as helpful; an empty better answer is not stored
    await bot.send(payloads.view_submission(view, user=AGENT, values=payloads.correction_values("billing", "  ")))
    await standin.wait_for_call("chat.postEphemeral", n=2)
    latest = max(store.ratings(asked.answer_id), key=lambda r: r.id or 0)
    assert (latest.corrected_intent, latest.corrected_answer, latest.helpful) == ("billing", None, True)


async def test_the_correct_button_of_older_answers_still_opens_the_modal(
    bot: BotUnderTest, standin: SlackStandIn
) -> None:
    asked = await ask(bot, standin, "where is my invoice?")
    clicked = await press(bot, asked, blocks.ACTION_CORRECT, user=AGENT)
    [opened] = await standin.wait_for_call("views.open")
    assert opened.params["trigger_id"] == clicked["trigger_id"]


async def test_the_shortcut_on_a_message_that_is_no_answer_says_so(bot: BotUnderTest, standin: SlackStandIn) -> None:
    payload = payloads.message_shortcut(
        blocks.CORRECT_SHORTCUT, user=AGENT, channel="DCUSTOMER", message_ts="1700000000.000009", thread_ts="1.2"
    )
    assert (await bot.send(payload)).status == 200
    await standin.wait_for_call("chat.postEphemeral")
    assert ephemerals_to(standin, AGENT) == [texts.NOT_AN_ANSWER]
    assert standin.calls_to("views.open") == []


async def test_non_agent_cannot_correct(bot: BotUnderTest, standin: SlackStandIn, store: Repository) -> None:
    asked = await ask(bot, standin, "password?")
    await shortcut(bot, asked, user=CUSTOMER)
    await standin.wait_for_call("chat.postEphemeral")
    await press(bot, asked, blocks.ACTION_CORRECT, user=CUSTOMER)  # nor with an older answer's button
    await standin.wait_for_call("chat.postEphemeral", n=2)
    await quiesce()
    assert ephemerals_to(standin, CUSTOMER) == [texts.NOT_AN_AGENT] * 2
    assert standin.calls_to("views.open") == []

    # a forged submission of the modal is refused too
    target = blocks.CorrectionTarget(asked.answer_id, asked.channel, asked.thread_ts, "reset_password")
    view = blocks.correction_modal(
        target, intents=["reset_password"], out_of_scope_label="out_of_scope", question="q", confidence=0.9
    )
    reply = await bot.send(payloads.view_submission(view, user=CUSTOMER, values=payloads.correction_values("billing")))
    assert reply.status == 200 and '"response_action": "errors"' in reply.text.replace('":"', '": "')
    await quiesce()
    assert store.ratings(asked.answer_id) == []


async def test_agents_from_usergroup_and_channel(make_bot: MakeBot, standin: SlackStandIn, store: Repository) -> None:
    standin.usergroups["SAGENTS"] = ["UGROUPED"]
    standin.channel_members["CAGENTS"] = ["UX1", "UX2", "UCHANNEL", "UX3"]  # two pages of two
    bot = await make_bot(agent_user_ids=(), agent_usergroup_id="SAGENTS")
    asked = await ask(bot, standin, "password?")
    for user in ("UGROUPED", "UCHANNEL", "UOUTSIDER"):
        await press(bot, asked, blocks.ACTION_HELPFUL, user=user)
    await standin.wait_for_call("chat.postEphemeral", n=3)
    roles = {r.rater_id: r.rater_role for r in store.ratings(asked.answer_id)}
    assert roles == {"UGROUPED": "agent", "UCHANNEL": "agent", "UOUTSIDER": "customer"}
    assert len(standin.calls_to("usergroups.users.list")) == 1  # cached
    assert len(standin.calls_to("conversations.members")) == 2  # one look-up, two pages


async def test_rating_that_cannot_be_stored_is_not_confirmed(
    bot: BotUnderTest, standin: SlackStandIn, store: Repository, monkeypatch: pytest.MonkeyPatch
) -> None:
    asked = await ask(bot, standin, "password?")

    def database_down(*args: object, **kwargs: object) -> None:
        raise StorageError("database is unreachable")

    monkeypatch.setattr(store, "set_rating", database_down)
    await press(bot, asked, blocks.ACTION_HELPFUL, user=CUSTOMER)
    await standin.wait_for_call("chat.postEphemeral")
    assert ephemerals_to(standin, CUSTOMER) == [texts.RATING_FAILED]
    monkeypatch.undo()
    assert store.ratings(asked.answer_id) == []


async def test_reaction_arriving_before_the_answer_ts_is_stored_still_counts(
    bot: BotUnderTest, standin: SlackStandIn, store: Repository, monkeypatch: pytest.MonkeyPatch
) -> None:
    asked = await ask(bot, standin, "password?")
    first = store.get_answer(asked.answer_id)
    assert first is not None
    late = answered_question(store, "and more?", thread=ThreadRef(TEAM_ID, asked.channel, asked.thread_ts))
    assert late.conversation_id == first.conversation_id  # a second answer in the same thread, not posted yet
    missed = threading.Event()
    find = store.find_answer_by_slack_ts

    def find_and_tell(*, channel_id: str, slack_ts: str) -> Answer | None:
        found = find(channel_id=channel_id, slack_ts=slack_ts)
        if found is None:
            missed.set()
        return found

    monkeypatch.setattr(store, "find_answer_by_slack_ts", find_and_tell)
    await bot.event(payloads.reaction("added", "+1", user=CUSTOMER, channel=asked.channel, ts="1700009999.000001"))
    assert await asyncio.to_thread(missed.wait, 5.0)  # the bot looked the ts up and found nothing...
    store.mark_posted(late.answer_id, channel_id=asked.channel, slack_ts="1700009999.000001")  # ...stored only now
    await quiesce()
    assert [(r.rater_id, r.source) for r in store.ratings(late.answer_id)] == [(CUSTOMER, "reaction")]


async def test_two_identical_reactions_at_once_store_one_rating(
    bot: BotUnderTest, standin: SlackStandIn, store: Repository
) -> None:
    asked = await ask(bot, standin, "password?")
    on_answer = {"channel": asked.channel, "ts": asked.answer_ts}
    for _ in range(5):  # the same reaction delivered twice at once (two events, e.g. two workspaces' apps)
        await asyncio.gather(
            *(bot.event(payloads.reaction("added", "+1", user=CUSTOMER, **on_answer)) for _ in range(2))
        )
    await quiesce()
    [rating] = store.ratings(asked.answer_id)
    assert (rating.rater_id, rating.helpful, rating.source) == (CUSTOMER, True, "reaction")

    await asyncio.gather(*(bot.event(payloads.reaction("added", "-1", user=CUSTOMER, **on_answer)) for _ in range(2)))
    await quiesce()
    assert [(r.rater_id, r.helpful) for r in store.ratings(asked.answer_id)] == [(CUSTOMER, False)]
