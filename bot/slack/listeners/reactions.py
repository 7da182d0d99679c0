"""Thumbs-up / thumbs-down reactions on the bot's answers, stored as ratings (and removed with them)."""

from __future__ import annotations

import asyncio
import logging

from slack_bolt.async_app import AsyncApp
from slack_bolt.context.async_context import AsyncBoltContext
from slack_sdk.web.async_client import AsyncWebClient

from bot.slack.deps import Deps
from bot.slack.events import ReactionRating
from bot.slack.intake import CLAIM, Claim

logger = logging.getLogger(__name__)


# A reaction can arrive in the moment between posting an answer and storing its ts: when Slack says the
# message is the bot's, look again after these pauses (seconds) before leaving it for a later sweep.
LOOKUP_RETRIES_S = (0.2, 0.5, 1.0, 2.0)
MAX_ATTEMPTS = 10
"""Sweeps a reaction on an unknown bot message gets before it is dropped."""


async def _answer_id(deps: Deps, reaction: ReactionRating) -> int | None:
    """The stored answer the reaction is on, or None (not an answer, or one the store does not know yet)."""
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


async def rate_reaction(deps: Deps, client: AsyncWebClient, claim: Claim) -> bool:
    """Store (or, for `reaction_removed`, delete) the rating a claimed reaction gives. True when done.

    A reaction on a bot message whose answer the store does not know yet (its record is being repaired after a
    crash, or waits in the spool) is tried again later, up to `MAX_ATTEMPTS` times.
    """
    reaction = claim.work.reaction()
    answer_id = await _answer_id(deps, reaction)
    if answer_id is None:
        return not (reaction.on_bot_message and claim.attempts < MAX_ATTEMPTS)  # else: not one of the bot's answers
    if claim.work.kind == "reaction_removed":
        await asyncio.to_thread(
            deps.repo.remove_rating, answer_id, rater_id=reaction.user_id, source="reaction", helpful=reaction.helpful
        )
        return True
    role = await deps.agents.rater_role(client, reaction.user_id)
    stored = await asyncio.to_thread(
        deps.repo.set_rating,
        answer_id,
        rater_id=reaction.user_id,
        rater_role=role,
        helpful=reaction.helpful,
        source="reaction",
    )
    if stored:
        deps.metrics.rating(reaction.helpful)
    return True


def register(app: AsyncApp, deps: Deps) -> None:
    """Listen to `reaction_added` and `reaction_removed` (the intake stored the rating ones before the ack)."""

    async def on_reaction(client: AsyncWebClient, context: AsyncBoltContext) -> None:
        claim = context.get(CLAIM)
        if claim is not None:
            await deps.intake.carry_out(claim, lambda: rate_reaction(deps, client, claim))

    async def on_added(client: AsyncWebClient, context: AsyncBoltContext) -> None:
        await on_reaction(client, context)

    async def on_removed(client: AsyncWebClient, context: AsyncBoltContext) -> None:
        await on_reaction(client, context)

    app.event("reaction_added")(on_added)
    app.event("reaction_removed")(on_removed)
