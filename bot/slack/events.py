"""Pure parsing of Slack event payloads into the few facts the listeners act on.

Anything malformed (missing fields, wrong types, over-long ids) parses to `None` and is dropped: the
event has already been acknowledged, so dropping it is the clean outcome.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from typing import Any

# Message subtypes that carry a person's question; every other subtype (edits, deletions, joins,
# channel topic changes, bot messages...) is not a question.
QUESTION_SUBTYPES = frozenset({None, "thread_broadcast", "file_share"})

# Column widths of the store (PostgreSQL enforces them): longer values are not real Slack ids.
MAX_ID = 32
MAX_CHANNEL = 64
MAX_EVENT_ID = 64

RATING_REACTIONS = {"+1": True, "thumbsup": True, "-1": False, "thumbsdown": False}


@dataclass(frozen=True)
class IncomingMessage:
    """A person's message as the bot sees it.

    Args:
        team_id: workspace id.
        channel_id: where it was posted (`D…` for a DM).
        user_id: who wrote it.
        text: the text with the bot's own mention removed.
        ts: the message's ts.
        thread_ts: the parent's ts when the message is in a thread, else `None`.
        event_id: the dedupe key (Slack's `event_id`, identical across retries).
        is_dm: posted in a direct message with the bot.
        mentions_bot: the text mentions the bot.
    """

    team_id: str
    channel_id: str
    user_id: str
    text: str
    ts: str
    thread_ts: str | None
    event_id: str
    is_dm: bool
    mentions_bot: bool

    @property
    def is_reply(self) -> bool:
        """True for a reply inside a thread (not the thread's parent)."""
        return self.thread_ts is not None and self.thread_ts != self.ts

    @property
    def root_ts(self) -> str:
        """The ts every reply to this message must use as `thread_ts` (the parent's)."""
        return self.thread_ts or self.ts


def _str(value: object, limit: int) -> str | None:
    return value if isinstance(value, str) and 0 < len(value) <= limit else None


def mention_pattern(bot_user_id: str | None) -> re.Pattern[str] | None:
    """Regex matching `<@BOT>` / `<@BOT|name>` in message text."""
    return re.compile(rf"<@{re.escape(bot_user_id)}(?:\|[^>]*)?>") if bot_user_id else None


def parse_message(body: Any, event: Any, *, bot_user_id: str | None) -> IncomingMessage | None:
    """A `message` or `app_mention` event written by a person, else `None`.

    Drops bots (`bot_id`, `bot_message`), the bot itself, edits/deletions and other non-question subtypes,
    hidden events and malformed payloads.
    """
    if not isinstance(body, dict) or not isinstance(event, dict):
        return None
    if event.get("subtype") not in QUESTION_SUBTYPES or event.get("hidden"):
        return None
    if event.get("bot_id") or event.get("bot_profile"):
        return None
    user = _str(event.get("user"), MAX_ID)
    channel = _str(event.get("channel"), MAX_CHANNEL)
    ts = _str(event.get("ts"), MAX_ID)
    if user is None or channel is None or ts is None or user == bot_user_id:
        return None
    thread_ts = event.get("thread_ts")
    if thread_ts is not None and _str(thread_ts, MAX_ID) is None:
        return None
    team = _str(body.get("team_id"), MAX_ID) or _str(event.get("team"), MAX_ID) or ""
    raw_text = event.get("text")
    text = raw_text if isinstance(raw_text, str) else ""
    pattern = mention_pattern(bot_user_id)
    mentions = bool(pattern and pattern.search(text))
    if pattern is not None:
        text = pattern.sub("", text)
    event_id = _str(body.get("event_id"), MAX_EVENT_ID) or f"msg:{channel}:{ts}"[:MAX_EVENT_ID]
    is_dm = event.get("channel_type") == "im" or channel.startswith("D")
    return IncomingMessage(
        team_id=team,
        channel_id=channel,
        user_id=user,
        text=text.strip(),
        ts=ts,
        thread_ts=thread_ts,
        event_id=event_id,
        is_dm=is_dm,
        mentions_bot=mentions or event.get("type") == "app_mention",
    )


@dataclass(frozen=True)
class ReactionRating:
    """A thumbs-up/down reaction added to or removed from a message."""

    user_id: str
    channel_id: str
    message_ts: str
    helpful: bool
    on_bot_message: bool = False  # Slack says the message is the bot's (`item_user`)
    team_id: str = ""  # the workspace (empty in work stored before it was kept)


def rating_reaction(name: object) -> bool | None:
    """`+1`, `thumbsup` (any skin tone) -> True; `-1`, `thumbsdown` -> False; anything else -> None."""
    if not isinstance(name, str):
        return None
    return RATING_REACTIONS.get(name.split("::", 1)[0])


def parse_reaction(event: Any, *, bot_user_id: str | None, team_id: str = "") -> ReactionRating | None:
    """A rating reaction on one of the bot's messages (in workspace `team_id`), else `None`."""
    if not isinstance(event, dict):
        return None
    helpful = rating_reaction(event.get("reaction"))
    item = event.get("item")
    if helpful is None or not isinstance(item, dict) or item.get("type") != "message":
        return None
    item_user = event.get("item_user")
    if item_user is not None and bot_user_id is not None and item_user != bot_user_id:
        return None  # a reaction on someone else's message
    user = _str(event.get("user"), MAX_ID)
    channel = _str(item.get("channel"), MAX_CHANNEL)
    ts = _str(item.get("ts"), MAX_ID)
    if user is None or channel is None or ts is None or user == bot_user_id:
        return None
    on_bot = item_user is not None and item_user == bot_user_id
    return ReactionRating(user, channel, ts, helpful, on_bot_message=on_bot, team_id=_str(team_id, MAX_ID) or "")


@dataclass(frozen=True)
class ButtonPress:
    """A click on one of the answer's buttons.

    Args:
        user_id: who clicked.
        team_id: the workspace.
        channel_id: the answer's channel.
        message_ts: the answer message's ts.
        thread_ts: the thread's parent ts (the conversation's key).
        answer_id: the stored answer the button belongs to.
        trigger_id: lets the bot open a modal for this click (valid for 3 seconds).
    """

    user_id: str
    team_id: str
    channel_id: str
    message_ts: str
    thread_ts: str
    answer_id: int
    trigger_id: str | None


@dataclass(frozen=True)
class MessageShortcut:
    """Who used a message shortcut (the agents' "Correct this answer" on the bot's reply) or pressed a button, and
    on which message (a `ButtonPress` is this plus the answer id).

    Args:
        user_id: who used it.
        team_id: the workspace.
        channel_id: the message's channel.
        message_ts: the message's ts.
        thread_ts: the thread's parent ts (the message's own ts when it is not in a thread).
        trigger_id: lets the bot open a modal (valid for 3 seconds).
    """

    user_id: str
    team_id: str
    channel_id: str
    message_ts: str
    thread_ts: str
    trigger_id: str | None


def parse_message_shortcut(body: Any) -> MessageShortcut | None:
    """A `message_action` payload, else `None`."""
    if not isinstance(body, dict) or body.get("type") != "message_action":
        return None
    return _on_message(body)


def _on_message(body: dict[str, Any]) -> MessageShortcut | None:
    """Who interacted with which message (a button press or a message shortcut); None when a part is missing."""
    user = _dict(body.get("user"))
    container = _dict(body.get("container"))  # button presses only
    message = _dict(body.get("message"))
    user_id = _str(user.get("id"), MAX_ID)
    team_id = _str(_dict(body.get("team")).get("id"), MAX_ID) or _str(user.get("team_id"), MAX_ID) or ""
    channel = _str(container.get("channel_id"), MAX_CHANNEL) or _str(_dict(body.get("channel")).get("id"), MAX_CHANNEL)
    message_ts = (
        _str(container.get("message_ts"), MAX_ID)
        or _str(body.get("message_ts"), MAX_ID)
        or _str(message.get("ts"), MAX_ID)
    )
    if user_id is None or channel is None or message_ts is None:
        return None
    thread_ts = _str(message.get("thread_ts"), MAX_ID) or _str(container.get("thread_ts"), MAX_ID) or message_ts
    trigger = body.get("trigger_id")
    return MessageShortcut(
        user_id=user_id,
        team_id=team_id,
        channel_id=channel,
        message_ts=message_ts,
        thread_ts=thread_ts,
        trigger_id=trigger if isinstance(trigger, str) else None,
    )


def _dict(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def parse_button(body: Any) -> ButtonPress | None:
    """A `block_actions` click on an answer button, else `None`."""
    if not isinstance(body, dict):
        return None
    actions = body.get("actions")
    if not isinstance(actions, list) or not actions or not isinstance(actions[0], dict):
        return None
    value = actions[0].get("value")
    if not isinstance(value, str) or not value.isdigit() or len(value) > 18:
        return None
    on = _on_message(body)
    return None if on is None else ButtonPress(**dataclasses.asdict(on), answer_id=int(value))
