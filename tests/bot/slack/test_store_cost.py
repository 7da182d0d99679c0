"""What one answered question costs the store: at most 4 transactions through the real Slack path.

They are: the work stored before the ack (the inbox), the thread's state, the question with its answer, and the
post's outcome with the work removed from the inbox (one transaction).

Each transaction is counted where the database sees it (SQLAlchemy's `begin` event on the store's engine), while
the real bot answers over HTTP: a new question, a follow-up in its thread, and a hand-off with its announcement.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import event

from storage.repository import Repository
from tests.bot.slack import payloads
from tests.bot.slack.harness import AGENT_CHANNEL, SUPPORT_CHANNEL, BotUnderTest, quiesce
from tests.bot.slack.standin import TEAM_ID, Call, SlackStandIn

MAX_TRANSACTIONS = 4


@contextmanager
def transactions(store: Repository) -> Iterator[list[int]]:
    """Count the transactions begun on the store's engine inside the block (the list holds the count)."""
    count = [0]

    def began(_connection: object) -> None:
        count[0] += 1

    engine = store._engine
    event.listen(engine, "begin", began)
    try:
        yield count
    finally:
        event.remove(engine, "begin", began)


async def cost(
    bot: BotUnderTest, standin: SlackStandIn, store: Repository, event: dict[str, Any], *, posts: int
) -> tuple[int, list[Call]]:
    """Deliver `event`, wait for the `posts`-th `chat.postMessage` and for the bot to settle; returns the
    transactions that cost and the posts so far."""
    with transactions(store) as count:
        await bot.event(event)
        calls = await standin.wait_for_call("chat.postMessage", n=posts)
        await quiesce()
    return count[0], calls


async def test_a_new_question_costs_at_most_four_transactions(
    bot: BotUnderTest, standin: SlackStandIn, store: Repository
) -> None:
    spent, [reply] = await cost(bot, standin, store, payloads.message("password?"), posts=1)
    assert 1 <= spent <= MAX_TRANSACTIONS, spent
    answer = store.find_answer_by_slack_ts(channel_id=reply.params["channel"], slack_ts=reply.response["ts"])
    assert answer is not None and answer.status == "posted"


async def follow_up(
    bot: BotUnderTest, standin: SlackStandIn, store: Repository, text: str, *, posts: int
) -> tuple[int, int]:
    """Answer a first question, then send `text` in its thread and wait for the `posts`-th post; returns the
    transactions the follow-up cost and the thread's conversation id."""
    first = payloads.message("password?", channel=SUPPORT_CHANNEL)
    await cost(bot, standin, store, first, posts=1)
    event = payloads.message(text, channel=SUPPORT_CHANNEL, thread_ts=first["ts"])
    spent, _ = await cost(bot, standin, store, event, posts=posts)
    conversation = store.find_conversation(team_id=TEAM_ID, channel_id=SUPPORT_CHANNEL, thread_ts=first["ts"])
    assert conversation is not None and conversation.id is not None
    return spent, conversation.id


async def test_a_question_in_its_thread_costs_at_most_four_transactions(
    bot: BotUnderTest, standin: SlackStandIn, store: Repository
) -> None:
    spent, conversation_id = await follow_up(bot, standin, store, "and my invoice?", posts=2)
    assert 1 <= spent <= MAX_TRANSACTIONS, spent
    assert [m.role for m in store.messages(conversation_id)] == ["user", "bot", "user", "bot"]


async def test_a_handed_off_question_costs_at_most_four_transactions(
    bot: BotUnderTest, standin: SlackStandIn, store: Repository
) -> None:
    spent, conversation_id = await follow_up(bot, standin, store, "my parrot ate it", posts=3)
    assert 1 <= spent <= MAX_TRANSACTIONS, spent
    assert any(c.params["channel"] == AGENT_CHANNEL for c in standin.calls_to("chat.postMessage"))
    [handoff] = store.handoffs(conversation_id)
    assert handoff.reason == "abstained" and handoff.agent_channel_ts is not None
