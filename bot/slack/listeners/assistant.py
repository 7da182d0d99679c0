"""Slack's assistant surface (the side panel of AI apps), through Bolt's `AsyncAssistant` middleware.

Where the workspace enables it, a customer opens the bot in the side panel: `assistant_thread_started` gets
a greeting and suggested prompts; a question in the assistant thread shows "is thinking..." while the model
runs (`assistant.threads.setStatus`; Slack clears it when the answer is posted), then is answered exactly as a
direct message is: the same intake (stored before the ack), the same answer with its buttons, ratings and
hand-off. Plain DMs, mentions and channels are unchanged: the middleware hears only DM messages in a thread,
which it hands to the same question path (a DM thread that is not an assistant thread refuses the status,
which is ignored).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from slack_bolt.async_app import AsyncApp, AsyncAssistant, AsyncSay, AsyncSetStatus, AsyncSetSuggestedPrompts
from slack_bolt.context.async_context import AsyncBoltContext
from slack_sdk.web.async_client import AsyncWebClient

from bot.slack import texts
from bot.slack.deps import Deps
from bot.slack.inflight import TrackedApp
from bot.slack.intake import CLAIM
from bot.slack.listeners.messages import take_question
from bot.slack.slack_io import CALL_ERRORS, describe

logger = logging.getLogger(__name__)

EVENTS = ("assistant_thread_started", "assistant_thread_context_changed")
"""The events the middleware listens to (besides DM messages): subscribed in the manifest."""


def register(app: AsyncApp, deps: Deps) -> None:
    """Add the assistant middleware (after the intake's, so questions are stored before their ack)."""
    assistant = AsyncAssistant(logger=logger)
    track: Callable[[Callable[..., Awaitable[Any]]], Callable[..., Awaitable[Any]]] = (
        app.inflight.track if isinstance(app, TrackedApp) else (lambda listener: listener)
    )

    async def started(say: AsyncSay, set_suggested_prompts: AsyncSetSuggestedPrompts) -> None:
        prompts = [{"title": title, "message": message} for title, message in texts.ASSISTANT_PROMPTS]
        try:
            await set_suggested_prompts(prompts=prompts, title=texts.ASSISTANT_PROMPTS_TITLE)
        except CALL_ERRORS as exc:
            logger.warning("assistant.threads.setSuggestedPrompts failed: %s", describe(exc))
        try:
            await say(texts.ASSISTANT_GREETING)
        except CALL_ERRORS as exc:
            logger.warning("the assistant greeting could not be posted: %s", describe(exc))

    async def user_message(client: AsyncWebClient, context: AsyncBoltContext, set_status: AsyncSetStatus) -> None:
        if context.get(CLAIM) is not None:
            try:
                await set_status(texts.ASSISTANT_THINKING)
            except CALL_ERRORS as exc:  # a plain DM thread, not an assistant one
                logger.debug("assistant.threads.setStatus refused: %s", describe(exc))
        await take_question(deps, client, context)

    assistant.thread_started(track(started))
    assistant.user_message(track(user_message))
    if isinstance(app, TrackedApp):
        app.track_events(EVENTS)
    app.assistant(assistant)
