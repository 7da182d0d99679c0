"""Slack's assistant side panel through the stand-in: thread started -> greeting and suggested prompts;
question -> "is thinking..." -> the answer with its buttons -> a rating stored. Plain DM threads still work."""

from __future__ import annotations

from bot.slack import blocks, texts
from storage.repository import Repository
from tests.bot.slack import payloads
from tests.bot.slack.harness import CUSTOMER, BotUnderTest, quiesce
from tests.bot.slack.helpers import Asked, ask, press
from tests.bot.slack.standin import SlackStandIn

PANEL = "DPANEL"


def thread_started(thread_ts: str) -> dict:
    return {
        "type": "assistant_thread_started",
        "assistant_thread": {
            "user_id": CUSTOMER,
            "context": {"channel_id": "CSUPPORT", "team_id": payloads.TEAM_ID, "enterprise_id": None},
            "channel_id": PANEL,
            "thread_ts": thread_ts,
        },
        "event_ts": payloads.new_ts(),
    }


async def test_the_assistant_thread_end_to_end(bot: BotUnderTest, standin: SlackStandIn, store: Repository) -> None:
    root = payloads.new_ts()
    assert (await bot.event(thread_started(root))).status == 200
    [prompts] = await standin.wait_for_call("assistant.threads.setSuggestedPrompts")
    assert prompts.params["channel_id"] == PANEL and prompts.params["thread_ts"] == root
    assert [p["message"] for p in prompts.params["prompts"]] == [m for _, m in texts.ASSISTANT_PROMPTS]
    [greeting] = await standin.wait_for_call("chat.postMessage")
    assert greeting.params["thread_ts"] == root and greeting.params["text"] == texts.ASSISTANT_GREETING

    question = payloads.message("password?", channel=PANEL, thread_ts=root)
    await bot.event(question)
    [status] = await standin.wait_for_call("assistant.threads.setStatus")
    assert status.params["status"] == texts.ASSISTANT_THINKING and status.params["thread_ts"] == root
    calls = await standin.wait_for_call("chat.postMessage", n=2)
    await quiesce()
    reply = calls[-1]
    assert reply.params["thread_ts"] == root and reply.params["channel"] == PANEL
    [answer_id] = {el["value"] for b in reply.params["blocks"] if b["type"] == "actions" for el in b["elements"]}
    asked = Asked(question, reply, int(answer_id))
    await press(bot, asked, blocks.ACTION_HELPFUL, user=CUSTOMER)
    await standin.wait_for_call("chat.postEphemeral")
    [rating] = store.ratings(asked.answer_id)
    assert (rating.rater_id, rating.helpful) == (CUSTOMER, True)
    stored = store.get_answer(asked.answer_id)
    assert stored is not None and stored.status == "posted" and stored.intent == "reset_password"


async def test_plain_dms_and_their_threads_still_answer(bot: BotUnderTest, standin: SlackStandIn) -> None:
    first = await ask(bot, standin, "password?")
    before = len(standin.calls_to("chat.postMessage"))
    await bot.event(payloads.message("invoice please", channel=first.channel, thread_ts=first.thread_ts))
    calls = await standin.wait_for_call("chat.postMessage", n=before + 1)
    await quiesce()
    assert calls[-1].params["thread_ts"] == first.thread_ts  # answered in the same DM thread
