"""Thumbs-up / thumbs-down reactions on the bot's answers, stored as ratings (and removed with them)."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_bolt.context.async_context import AsyncBoltContext
from slack_sdk.web.async_client import AsyncWebClient

from bot.slack.deps import Deps
from bot.slack.events import ReactionRating, parse_reaction

logger = logging.getLogger(__name__)


# A reaction can arrive in the moment between posting an answer and storing its ts: when Slack says the
# message is the bot's, look again after these pauses (seconds) before giving up.
LOOKUP_RETRIES_S = (0.2, 0.5, 1.0, 2.0)


async def _answer_id(deps: Deps, reaction: ReactionRating) -> int | None:
    """The stored answer the reaction is on, or None (not an answer, or one the store does not know)."""
    pauses = LOOKUP_RETRIES_S if reaction.on_bot_message else ()
    for pause in (0.0, *pauses):
        if pause:
            await asyncio.sleep(pause)
        answer = await asyncio.to_thread(
            deps.repo.find_answer_by_slack_ts, channel_id=reaction.channel_id, slack_ts=reaction.message_ts
        )
        if answer is not None:
            return answer.id
    return None


async def _rated(deps: Deps, event: dict[str, Any], context: AsyncBoltContext) -> tuple[ReactionRating, int] | None:
    """The rating reaction and the stored answer it is on; None for any other reaction."""
    reaction = parse_reaction(event, bot_user_id=context.bot_user_id)
    if reaction is None:
        return None
    answer_id = await _answer_id(deps, reaction)
    return None if answer_id is None else (reaction, answer_id)


def register(app: AsyncApp, deps: Deps) -> None:
    """Listen to `reaction_added` and `reaction_removed`."""

    async def on_added(event: dict[str, Any], client: AsyncWebClient, context: AsyncBoltContext) -> None:
        rated = await _rated(deps, event, context)
        if rated is None:
            return
        reaction, answer_id = rated
        role = await deps.agents.rater_role(client, reaction.user_id)
        await asyncio.to_thread(
            deps.repo.set_rating,
            answer_id,
            rater_id=reaction.user_id,
            rater_role=role,
            helpful=reaction.helpful,
            source="reaction",
        )

    async def on_removed(event: dict[str, Any], context: AsyncBoltContext) -> None:
        rated = await _rated(deps, event, context)
        if rated is None:
            return
        reaction, answer_id = rated
        await asyncio.to_thread(
            deps.repo.remove_rating, answer_id, rater_id=reaction.user_id, source="reaction", helpful=reaction.helpful
        )

    app.event("reaction_added")(on_added)
    app.event("reaction_removed")(on_removed)
