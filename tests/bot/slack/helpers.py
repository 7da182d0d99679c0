"""Shared steps for the Slack tests."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bot.slack import blocks
from tests.bot.slack import payloads
from tests.bot.slack.harness import CUSTOMER, BotUnderTest, quiesce
from tests.bot.slack.standin import Call, SlackStandIn


@dataclass(frozen=True)
class Asked:
    """A question the bot answered: the event, the posted reply and the answer's id."""

    event: dict[str, Any]
    reply: Call
    answer_id: int

    @property
    def channel(self) -> str:
        return str(self.reply.params["channel"])

    @property
    def thread_ts(self) -> str:
        return str(self.reply.params["thread_ts"])

    @property
    def answer_ts(self) -> str:
        return str(self.reply.response["ts"])


async def ask(
    bot: BotUnderTest, standin: SlackStandIn, text: str, *, channel: str = "DCUSTOMER", user: str = CUSTOMER
) -> Asked:
    """Ask a question and wait until its answer is posted and stored."""
    before = len(standin.calls_to("chat.postMessage"))
    event = payloads.message(text, channel=channel, user=user)
    await bot.event(event)
    calls = await standin.wait_for_call("chat.postMessage", n=before + 1)
    reply = next(c for c in calls[before:] if c.params.get("thread_ts") == event["ts"])
    await quiesce()
    values = {el["value"] for b in reply.params["blocks"] if b["type"] == "actions" for el in b["elements"]}
    [value] = values
    return Asked(event, reply, int(value))


async def press(
    bot: BotUnderTest, asked: Asked, action_id: str, *, user: str, text: str | None = None
) -> dict[str, Any]:
    """Click one of the answer's buttons; returns the payload sent. Asserts the click was acknowledged."""
    payload = payloads.block_action(
        action_id,
        str(asked.answer_id),
        user=user,
        channel=asked.channel,
        message_ts=asked.answer_ts,
        thread_ts=asked.thread_ts,
        text=text,
    )
    reply = await bot.send(payload)
    assert reply.status == 200, reply
    return payload


async def shortcut(bot: BotUnderTest, asked: Asked, *, user: str) -> dict[str, Any]:
    """Use the agents' "Correct this answer" message shortcut on the answer; returns the payload sent."""
    payload = payloads.message_shortcut(
        blocks.CORRECT_SHORTCUT, user=user, channel=asked.channel, message_ts=asked.answer_ts, thread_ts=asked.thread_ts
    )
    reply = await bot.send(payload)
    assert reply.status == 200, reply
    return payload


def ephemerals_to(standin: SlackStandIn, user: str) -> list[str]:
    return [str(c.params["text"]) for c in standin.calls_to("chat.postEphemeral") if c.params.get("user") == user]


__all__ = ["Asked", "ask", "blocks", "ephemerals_to", "press"]
