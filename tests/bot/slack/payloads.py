"""Builders for the payloads Slack sends (Events API bodies, block_actions, view_submission)."""

from __future__ import annotations

import itertools
import time
import uuid
from typing import Any

from tests.bot.slack.standin import APP_ID, BOT_ID, BOT_USER_ID, TEAM_ID

_ts = itertools.count(1)


def new_ts() -> str:
    """A fresh message ts (distinct from the stand-in's, which start at 1700000001)."""
    n = next(_ts)
    return f"{1_600_000_000 + n}.{n:06d}"


def new_event_id() -> str:
    return "Ev" + uuid.uuid4().hex[:16].upper()


def event_callback(event: dict[str, Any], *, event_id: str | None = None, team_id: str = TEAM_ID) -> dict[str, Any]:
    """An Events API `event_callback` body wrapping `event`."""
    return {
        "token": "verification-token",
        "team_id": team_id,
        "api_app_id": APP_ID,
        "event": event,
        "type": "event_callback",
        "event_id": event_id or new_event_id(),
        "event_time": int(time.time()),
        "authorizations": [{"team_id": team_id, "user_id": BOT_USER_ID, "is_bot": True, "enterprise_id": None}],
        "is_ext_shared_channel": False,
        "event_context": "4-" + uuid.uuid4().hex,
    }


def message(
    text: str,
    *,
    user: str = "UCUSTOMER",
    channel: str = "DCUSTOMER",
    ts: str | None = None,
    thread_ts: str | None = None,
    channel_type: str | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """A `message` event (a DM when the channel starts with D)."""
    ts = ts or new_ts()
    event: dict[str, Any] = {
        "type": "message",
        "user": user,
        "text": text,
        "ts": ts,
        "event_ts": ts,
        "channel": channel,
        "channel_type": channel_type or ("im" if channel.startswith("D") else "channel"),
        "team": TEAM_ID,
    }
    if thread_ts:
        event["thread_ts"] = thread_ts
    event.update(extra)
    return event


def mention(
    text: str,
    *,
    user: str = "UCUSTOMER",
    channel: str = "CGENERAL",
    ts: str | None = None,
    thread_ts: str | None = None,
) -> dict[str, Any]:
    """An `app_mention` event; `text` gets the bot's mention in front."""
    ts = ts or new_ts()
    event: dict[str, Any] = {
        "type": "app_mention",
        "user": user,
        "text": f"<@{BOT_USER_ID}> {text}",
        "ts": ts,
        "event_ts": ts,
        "channel": channel,
        "team": TEAM_ID,
    }
    if thread_ts:
        event["thread_ts"] = thread_ts
    return event


def own_message(text: str, *, channel: str, ts: str | None = None, thread_ts: str | None = None) -> dict[str, Any]:
    """A message the bot itself posted, as Slack echoes it back."""
    event = message(text, user=BOT_USER_ID, channel=channel, ts=ts, thread_ts=thread_ts)
    event["bot_id"] = BOT_ID
    return event


def reaction(
    kind: str, name: str, *, user: str, channel: str, ts: str, item_user: str | None = BOT_USER_ID
) -> dict[str, Any]:
    """`reaction_added` / `reaction_removed` (`kind` is `added` or `removed`)."""
    event: dict[str, Any] = {
        "type": f"reaction_{kind}",
        "user": user,
        "reaction": name,
        "item": {"type": "message", "channel": channel, "ts": ts},
        "event_ts": new_ts(),
    }
    if item_user is not None:
        event["item_user"] = item_user
    return event


def home_opened(user: str) -> dict[str, Any]:
    return {"type": "app_home_opened", "user": user, "channel": "DHOME", "tab": "home", "event_ts": new_ts()}


def block_action(
    action_id: str,
    value: str,
    *,
    user: str,
    channel: str,
    message_ts: str,
    thread_ts: str,
    response_url: str = "http://127.0.0.1:9/hooks/none",
    block_id: str = "answer_actions",
    text: str | None = None,
) -> dict[str, Any]:
    """A `block_actions` payload for a button on a message in a thread (`text`: the button's label)."""
    action: dict[str, Any] = {
        "action_id": action_id,
        "block_id": block_id,
        "type": "button",
        "value": value,
        "action_ts": str(time.time()),
    }
    if text is not None:
        action["text"] = {"type": "plain_text", "text": text, "emoji": True}
    return {
        "type": "block_actions",
        "user": {"id": user, "username": user.lower(), "name": user.lower(), "team_id": TEAM_ID},
        "api_app_id": APP_ID,
        "token": "verification-token",
        "container": {
            "type": "message",
            "message_ts": message_ts,
            "channel_id": channel,
            "is_ephemeral": False,
            "thread_ts": thread_ts,
        },
        "trigger_id": f"{int(time.time())}.trigger.{uuid.uuid4().hex[:8]}",
        "team": {"id": TEAM_ID, "domain": "standin"},
        "enterprise": None,
        "is_enterprise_install": False,
        "channel": {"id": channel, "name": "support"},
        "message": {"type": "message", "user": BOT_USER_ID, "ts": message_ts, "thread_ts": thread_ts, "text": "…"},
        "response_url": response_url,
        "actions": [action],
    }


def message_shortcut(callback_id: str, *, user: str, channel: str, message_ts: str, thread_ts: str) -> dict[str, Any]:
    """A `message_action` payload: a message shortcut used on a message in a thread."""
    return {
        "type": "message_action",
        "token": "verification-token",
        "action_ts": str(time.time()),
        "team": {"id": TEAM_ID, "domain": "standin"},
        "user": {"id": user, "username": user.lower(), "team_id": TEAM_ID, "name": user.lower()},
        "channel": {"id": channel, "name": "support"},
        "is_enterprise_install": False,
        "enterprise": None,
        "callback_id": callback_id,
        "trigger_id": f"{int(time.time())}.trigger.{uuid.uuid4().hex[:8]}",
        "response_url": "http://127.0.0.1:9/hooks/none",
        "message_ts": message_ts,
        "message": {"type": "message", "user": BOT_USER_ID, "ts": message_ts, "thread_ts": thread_ts, "text": "…"},
    }


def view_submission(view: dict[str, Any], *, user: str, values: dict[str, Any]) -> dict[str, Any]:
    """A `view_submission` for the modal `view` (as opened), with the user's input `values`."""
    submitted = dict(view)
    submitted.update({"id": "V" + uuid.uuid4().hex[:8].upper(), "team_id": TEAM_ID, "state": {"values": values}})
    return {
        "type": "view_submission",
        "team": {"id": TEAM_ID, "domain": "standin"},
        "user": {"id": user, "username": user.lower(), "name": user.lower(), "team_id": TEAM_ID},
        "api_app_id": APP_ID,
        "token": "verification-token",
        "trigger_id": f"{int(time.time())}.trigger.{uuid.uuid4().hex[:8]}",
        "view": submitted,
        "response_urls": [],
        "is_enterprise_install": False,
        "enterprise": None,
    }


def correction_values(intent: str, better_answer: str | None = None) -> dict[str, Any]:
    """The modal's `state.values` for a chosen intent and an optional better answer."""
    return {
        "intent": {
            "intent": {
                "type": "static_select",
                "selected_option": {"text": {"type": "plain_text", "text": intent}, "value": intent},
            }
        },
        "better_answer": {"better_answer": {"type": "plain_text_input", "value": better_answer}},
    }
