"""Acknowledge every other event so Slack never retries it or counts it as a failure (and log it)."""

from __future__ import annotations

import logging
import re
from typing import Any

from slack_bolt.async_app import AsyncApp

logger = logging.getLogger(__name__)

# Subscribed in the manifest but not acted on.
QUIET_EVENTS = ("member_joined_channel", "member_left_channel", "app_uninstalled", "tokens_revoked")


def register(app: AsyncApp) -> None:
    """Listen to the quiet events and, last, to any event type at all. Register this module last."""

    async def on_quiet(event: dict[str, Any]) -> None:
        logger.debug("event %s acknowledged", event.get("type"))

    async def on_unknown(body: dict[str, Any]) -> None:
        event = body.get("event")
        kind = event.get("type") if isinstance(event, dict) else None
        logger.info("unhandled event type %r acknowledged and ignored", kind)

    for name in QUIET_EVENTS:
        app.event(name)(on_quiet)
    app.event(re.compile(".*"))(on_unknown)
