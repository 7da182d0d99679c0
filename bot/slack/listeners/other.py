"""Acknowledge every other event so Slack never retries it or counts it as a failure (and log it)."""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_bolt.response import BoltResponse

logger = logging.getLogger(__name__)

# Subscribed in the manifest (bot/slack_manifest.yaml) and acknowledged, but not acted on.
QUIET_EVENTS = ("member_joined_channel", "member_left_channel", "app_uninstalled", "tokens_revoked")


async def acknowledge_rate_limit_notice(
    body: dict[str, Any], next_: Callable[[], Awaitable[None]]
) -> BoltResponse | None:
    """Slack's `app_rate_limited` notice has no listener type in Bolt: log it and answer 200."""
    if body.get("type") == "app_rate_limited":
        logger.warning(
            "Slack is dropping event deliveries to this app (rate limited in minute %s)",
            body.get("minute_rate_limited"),
        )
        return BoltResponse(status=200, body="")
    await next_()
    return None


def register(app: AsyncApp) -> None:
    """Listen to the quiet events and, last, to any event type at all. Register this module last."""
    app.middleware(acknowledge_rate_limit_notice)

    async def on_quiet(event: dict[str, Any]) -> None:
        logger.debug("event %s acknowledged", event.get("type"))

    async def on_unknown(body: dict[str, Any]) -> None:
        event = body.get("event")
        kind = event.get("type") if isinstance(event, dict) else None
        logger.info("unhandled event type %r acknowledged and ignored", kind)

    for name in QUIET_EVENTS:
        app.event(name)(on_quiet)
    app.event(re.compile(".*"))(on_unknown)
