"""Messages and mentions: which ones are questions, follow-ups or agent replies, and where they go.

Every message in a channel the bot is in arrives as a `message` event; one that mentions the bot also
arrives as an `app_mention` event (another `event_id`, same `ts`). To answer once, the `message` listener
leaves every message that mentions the bot (outside DMs) to the `app_mention` listener.
"""

from __future__ import annotations

import asyncio
import logging

from slack_bolt.async_app import AsyncApp
from slack_bolt.context.async_context import AsyncBoltContext
from slack_sdk.web.async_client import AsyncWebClient

from bot.slack.answering import answer_question, refuse, store_agent_message, thread_of
from bot.slack.deps import Deps
from bot.slack.events import IncomingMessage
from bot.slack.intake import CLAIM, REFUSED, Claim
from bot.slack.repair import apologise_late, settle_answered
from bot.slack.slack_io import SlackCallError, find_answer
from storage.errors import StoreUnavailable
from storage.models import utcnow
from storage.repository import ThreadState

logger = logging.getLogger(__name__)


async def answer_claim(deps: Deps, client: AsyncWebClient, claim: Claim) -> bool:
    """Carry out a claimed question: answer it, log an agent's reply, or ignore the message. True when done.

    The thread's state is read once (`Repository.thread_state`): its conversation (whose thread a reply is in),
    whether a human is handling it, and whether this event was already stored (a re-delivery, or work taken
    over after a crash: `settle_answered` finishes it). A question recovered past `recovery_max_age_s` gets an
    apology and a hand-off. With the database away, a question to the bot is answered from memory; a reply in
    a thread waits (whose thread it is cannot be known).
    """
    msg = claim.work.message()
    try:
        state = await asyncio.to_thread(deps.repo.thread_state, thread_of(msg), event_id=msg.event_id)
    except StoreUnavailable as exc:
        deps.intake.health.failed(exc)
        if msg.is_reply and not (msg.is_dm or msg.mentions_bot):
            return False
        await answer_question(deps, client, msg, None, claim)
        return True
    if state.seen:
        await settle_answered(deps, client, msg, state, claim)
        return True
    if claim.recovered:
        age = (utcnow() - claim.received_at).total_seconds()
        if age > deps.options.recovery_max_age_s:
            await apologise_late(deps, client, msg, claim)
            return True
        try:
            posted = await find_answer(client, channel=msg.channel_id, thread_ts=msg.root_ts, event_id=msg.event_id)
        except SlackCallError as exc:
            raise RuntimeError(f"cannot tell whether {msg.event_id} was answered: {exc}") from exc
        if posted is not None:  # answered while the database was away; that worker's spool brings the turn
            return True
    await route(deps, client, msg, state, claim)
    return True


async def route(deps: Deps, client: AsyncWebClient, msg: IncomingMessage, state: ThreadState, claim: Claim) -> None:
    """Answer a question, log an agent's reply, or ignore the message (`state`: the thread's, read once)."""
    addressed = msg.is_dm or msg.mentions_bot
    conversation = state.conversation
    if msg.is_reply and conversation is None and not addressed:
        return
    if msg.is_reply and conversation is not None and msg.user_id != conversation.started_by:  # noqa: SIM102
        if await deps.agents.is_agent(client, msg.user_id):  # only then ask Slack who wrote it
            await store_agent_message(deps, msg, conversation)
            return
    await answer_question(deps, client, msg, state, claim)


async def take_question(deps: Deps, client: AsyncWebClient, context: AsyncBoltContext) -> None:
    """Carry out the claim the intake left in the context, or tell the person their question was not taken."""
    claim = context.get(CLAIM)
    if claim is not None:
        await deps.intake.carry_out(claim, lambda: answer_claim(deps, client, claim))
    elif (refused := context.get(REFUSED)) is not None:
        deps.metrics.refused()
        await refuse(client, refused.message())


def register(app: AsyncApp, deps: Deps) -> None:
    """Listen to `message` (all subtypes, so each is acknowledged) and `app_mention`.

    Which of them are questions was decided before the ack (`bot.slack.work.work_of`, run by the intake
    middleware): the listener carries out the claim it left in the context, or tells the person their question
    could not be taken.
    """

    async def on_message(client: AsyncWebClient, context: AsyncBoltContext) -> None:
        await take_question(deps, client, context)

    async def on_mention(client: AsyncWebClient, context: AsyncBoltContext) -> None:
        await take_question(deps, client, context)

    app.event("message")(on_message)
    app.event("app_mention")(on_mention)
