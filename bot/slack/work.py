"""Units of work the bot accepts from Slack before acknowledging them, as plain data (pure; no I/O).

`work_of(body, ...)` says whether a payload carries work that must not be lost: a question (a message or
mention the bot may answer), a rating reaction added or removed, or a rating button click. Such work is
stored before the event is acknowledged (see `bot.slack.intake`) and rebuilt from what was stored when it is
recovered after a crash, so the payload keeps exactly the facts the work needs.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Literal

from bot.slack import blocks
from bot.slack.events import ButtonPress, IncomingMessage, ReactionRating, parse_button, parse_message, parse_reaction

Kind = Literal["question", "reaction_added", "reaction_removed", "rating"]
KINDS: tuple[Kind, ...] = ("question", "reaction_added", "reaction_removed", "rating")
RATING_ACTIONS = {blocks.ACTION_HELPFUL: True, blocks.ACTION_NOT_HELPFUL: False}


@dataclass(frozen=True)
class Work:
    """One unit of work.

    Args:
        key: unique per event (Slack's `event_id`; for a click, the action's own stamp).
        kind: what to do.
        payload: the ids the work needs (JSON).
        text: what the person wrote (a question's text), kept apart so the store can mask it.
    """

    key: str
    kind: Kind
    payload: dict[str, Any]
    text: str = ""

    def message(self) -> IncomingMessage:
        """The question (kind `question`)."""
        return IncomingMessage(**{**self.payload, "text": self.text})

    def reaction(self) -> ReactionRating:
        """The reaction (kinds `reaction_added` / `reaction_removed`)."""
        return ReactionRating(**self.payload)

    def button(self) -> tuple[ButtonPress, bool]:
        """The click and its verdict (kind `rating`)."""
        fields = dict(self.payload)
        helpful = bool(fields.pop("helpful"))
        return ButtonPress(**fields), helpful


def question_work(msg: IncomingMessage) -> Work:
    fields = dataclasses.asdict(msg)
    text = fields.pop("text")
    return Work(msg.event_id, "question", fields, text)


def _question(
    body: dict[str, Any], event: dict[str, Any], bot_user_id: str | None, support: frozenset[str]
) -> Work | None:
    msg = parse_message(body, event, bot_user_id=bot_user_id)
    if msg is None:
        return None
    if event.get("type") == "message" and msg.mentions_bot and not msg.is_dm:
        return None  # the same message arrives as an app_mention, which is the one answered
    if event.get("type") == "app_mention" and msg.is_dm:
        return None
    if not msg.is_reply and not (msg.is_dm or msg.mentions_bot or msg.channel_id in support):
        return None  # channel chatter
    return question_work(msg)


def _event_key(body: dict[str, Any], fallback: str) -> str:
    event_id = body.get("event_id")
    return event_id if isinstance(event_id, str) and 0 < len(event_id) <= 64 else fallback


def work_of(body: Any, *, bot_user_id: str | None, support_channel_ids: frozenset[str]) -> Work | None:
    """The work a Slack payload carries (an Events API body or an interactivity payload), or None."""
    if not isinstance(body, dict):
        return None
    if body.get("type") == "block_actions":
        actions = body.get("actions")
        action = actions[0] if isinstance(actions, list) and actions and isinstance(actions[0], dict) else {}
        action_id = str(action.get("action_id"))
        press = parse_button(body) if action_id in RATING_ACTIONS else None
        if press is None:
            return None
        stamp = action.get("action_ts")
        key = f"click:{press.user_id}:{press.answer_id}:{stamp if isinstance(stamp, str) else press.message_ts}"
        return Work(key[:96], "rating", {**dataclasses.asdict(press), "helpful": RATING_ACTIONS[action_id]})
    event = body.get("event")
    if body.get("type") != "event_callback" or not isinstance(event, dict):
        return None
    kind = event.get("type")
    if kind in ("message", "app_mention"):
        return _question(body, event, bot_user_id, support_channel_ids)
    if kind in ("reaction_added", "reaction_removed"):
        reaction = parse_reaction(event, bot_user_id=bot_user_id, team_id=body.get("team_id") or "")
        if reaction is None:
            return None
        key = _event_key(body, f"{kind}:{reaction.user_id}:{reaction.channel_id}:{reaction.message_ts}")
        return Work(key, kind, dataclasses.asdict(reaction))
    return None
