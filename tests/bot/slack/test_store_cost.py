"""What one answered question costs the store: at most 3 transactions through the real Slack path.

Each transaction is counted where the database sees it (SQLAlchemy's `begin` event on the store's engine), while
the real bot answers over HTTP: a new question, a follow-up in its thread, and a hand-off with its announcement.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import event

from storage.repository import Repository
from tests.bot.slack import payloads
from tests.bot.slack.harness import AGENT_CHANNEL, SUPPORT_CHANNEL, BotUnderTest, quiesce
from tests.bot.slack.standin import TEAM_ID, SlackStandIn

MAX_TRANSACTIONS = 3


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


async def test_a_new_question_costs_at_most_three_transactions(
    bot: BotUnderTest, standin: SlackStandIn, store: Repository
) -> None:
    with transactions(store) as count:
        await bot.event(payloads.message("password?"))
        [reply] = await standin.wait_for_call("chat.postMessage")
        await quiesce()
    assert 1 <= count[0] <= MAX_TRANSACTIONS, count[0]
    answer = store.find_answer_by_slack_ts(channel_id=reply.params["channel"], slack_ts=reply.response["ts"])
    assert answer is not None and answer.status == "posted"


async def test_a_question_in_its_thread_costs_at_most_three_transactions(
    bot: BotUnderTest, standin: SlackStandIn, store: Repository
) -> None:
    first = payloads.message("password?", channel=SUPPORT_CHANNEL)
    await bot.event(first)
    await standin.wait_for_call("chat.postMessage")
    await quiesce()
    with transactions(store) as count:
        await bot.event(payloads.message("and my invoice?", channel=SUPPORT_CHANNEL, thread_ts=first["ts"]))
        await standin.wait_for_call("chat.postMessage", n=2)
        await quiesce()
    assert 1 <= count[0] <= MAX_TRANSACTIONS, count[0]
    conversation = store.find_conversation(team_id=TEAM_ID, channel_id=SUPPORT_CHANNEL, thread_ts=first["ts"])
    assert conversation is not None and conversation.id is not None
    assert [m.role for m in store.messages(conversation.id)] == ["user", "bot", "user", "bot"]


async def test_a_handed_off_question_costs_at_most_three_transactions(
    bot: BotUnderTest, standin: SlackStandIn, store: Repository
) -> None:
    first = payloads.message("password?", channel=SUPPORT_CHANNEL)
    await bot.event(first)
    await standin.wait_for_call("chat.postMessage")
    await quiesce()
    with transactions(store) as count:
        await bot.event(payloads.message("my parrot ate it", channel=SUPPORT_CHANNEL, thread_ts=first["ts"]))
        await standin.wait_for_call("chat.postMessage", n=3)
        await quiesce()
    assert 1 <= count[0] <= MAX_TRANSACTIONS, count[0]
    assert any(c.params["channel"] == AGENT_CHANNEL for c in standin.calls_to("chat.postMessage"))
    conversation = store.find_conversation(team_id=TEAM_ID, channel_id=SUPPORT_CHANNEL, thread_ts=first["ts"])
    assert conversation is not None and conversation.id is not None
    [handoff] = store.handoffs(conversation.id)
    assert handoff.reason == "abstained" and handoff.agent_channel_ts is not None
