"""Messages and mentions: which ones are questions, follow-ups or agent replies, and where they go.

Every message in a channel the bot is in arrives as a `message` event; one that mentions the bot also
arrives as an `app_mention` event (another `event_id`, same `ts`). To answer once, the `message` listener
leaves every message that mentions the bot (outside DMs) to the `app_mention` listener.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_bolt.context.async_context import AsyncBoltContext
from slack_sdk.web.async_client import AsyncWebClient

from bot.slack.answering import answer_question, store_agent_message, thread_of
from bot.slack.deps import Deps
from bot.slack.events import IncomingMessage, parse_message

logger = logging.getLogger(__name__)


async def route(deps: Deps, client: AsyncWebClient, msg: IncomingMessage) -> None:
    """Answer a question, log an agent's reply, or ignore the message.

    The thread's state is read once (`Repository.thread_state`): its conversation (whose thread a reply is in),
    whether a human is handling it, and whether this event was already handled (a retry stops here).
    """
    addressed = msg.is_dm or msg.mentions_bot
    if not msg.is_reply and not (addressed or msg.channel_id in deps.options.support_channel_ids):
        return
    state = await asyncio.to_thread(deps.repo.thread_state, thread_of(msg), event_id=msg.event_id)
    if state.seen:
        logger.debug("event %s already handled; dropped", msg.event_id)
        return
    conversation = state.conversation
    if msg.is_reply and conversation is None and not addressed:
        return
    if msg.is_reply and conversation is not None and msg.user_id != conversation.started_by:  # noqa: SIM102
        if await deps.agents.is_agent(client, msg.user_id):  # only then ask Slack who wrote it
            await store_agent_message(deps, msg, conversation)
            return
    await answer_question(deps, client, msg, state)


def register(app: AsyncApp, deps: Deps) -> None:
    """Listen to `message` (all subtypes, so each is acknowledged) and `app_mention`."""

    async def on_message(
        body: dict[str, Any], event: dict[str, Any], client: AsyncWebClient, context: AsyncBoltContext
    ) -> None:
        msg = parse_message(body, event, bot_user_id=context.bot_user_id)
        if msg is None or (msg.mentions_bot and not msg.is_dm):
            return
        await route(deps, client, msg)

    async def on_mention(
        body: dict[str, Any], event: dict[str, Any], client: AsyncWebClient, context: AsyncBoltContext
    ) -> None:
        msg = parse_message(body, event, bot_user_id=context.bot_user_id)
        if msg is None or msg.is_dm:
            return
        await route(deps, client, msg)

    app.event("message")(on_message)
    app.event("app_mention")(on_mention)
