"""A structural check of incoming payloads, run before Bolt sees them.

Bolt reads fields such as `event.type`, `team.id` or `authorizations[0]` without checking their types, so a
malformed payload makes it fail with an internal error (HTTP 500, or no Socket Mode ack, and Slack retries).
Payloads failing this check are refused (HTTP 400) or acknowledged and dropped (Socket Mode) instead.
"""

from __future__ import annotations

from typing import Any

# Keys that, when present and not null, Bolt expects to be objects.
OBJECT_KEYS = ("event", "team", "user", "channel", "container", "view", "enterprise", "message", "item")
LIST_KEYS = ("authorizations", "actions")


def shape_problem(body: Any) -> str | None:
    """Why `body` cannot be a Slack payload, or `None` when its structure is fine."""
    if not isinstance(body, dict):
        return f"payload is a {type(body).__name__}, not an object"
    for key in OBJECT_KEYS:
        value = body.get(key)
        if value is not None and not isinstance(value, dict):
            return f"`{key}` is a {type(value).__name__}, not an object"
    for key in LIST_KEYS:
        value = body.get(key)
        if value is not None and (not isinstance(value, list) or not all(isinstance(v, dict) for v in value)):
            return f"`{key}` is not a list of objects"
    if body.get("type") == "block_actions" and not body.get("actions"):
        return "`block_actions` without actions"
    view = body.get("view")
    if isinstance(view, dict) and not isinstance(view.get("type"), str):
        return "`view.type` is missing"
    event = body.get("event")
    if isinstance(event, dict):
        for key in ("type", "subtype", "channel", "user", "channel_type"):
            value = event.get(key)
            if value is not None and not isinstance(value, str):
                return f"`event.{key}` is a {type(value).__name__}, not a string"
        item = event.get("item")
        if item is not None and not isinstance(item, dict):
            return "`event.item` is not an object"
    for key in ("type", "team_id", "api_app_id", "enterprise_id", "callback_id", "trigger_id", "response_url"):
        value = body.get(key)
        if value is not None and not isinstance(value, str):
            return f"`{key}` is a {type(value).__name__}, not a string"
    return None
