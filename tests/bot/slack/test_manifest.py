"""The app manifest subscribes to what the bot listens to, with the scopes its calls need.

Derived from the real app: the events come from the listeners `build_app` registers, the Web API methods
from the calls in the bot's source. Only Slack's own facts are tables here (which scope an event or a method
needs: https://api.slack.com/events, https://api.slack.com/methods).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

import bot
from bot.options import ServingOptions
from bot.slack import build_app, close_app
from bot.slack.inflight import TrackedApp
from bot.slack.listeners import other
from storage.repository import Repository
from tests.bot.slack.fakes import FakeEngine

BOT_DIR = Path(bot.__file__).parent
MANIFEST = BOT_DIR / "slack_manifest.yaml"

# A `message` listener hears messages wherever the bot is: DMs, public and private channels.
MESSAGE_SUBSCRIPTIONS = frozenset({"message.im", "message.channels", "message.groups"})
EVENT_SCOPES: dict[str, frozenset[str]] = {
    "message.im": frozenset({"im:history"}),
    "message.channels": frozenset({"channels:history"}),
    "message.groups": frozenset({"groups:history"}),
    "message.mpim": frozenset({"mpim:history"}),
    "app_mention": frozenset({"app_mentions:read"}),
    "reaction_added": frozenset({"reactions:read"}),
    "reaction_removed": frozenset({"reactions:read"}),
    "member_joined_channel": frozenset({"channels:read", "groups:read"}),
    "member_left_channel": frozenset({"channels:read", "groups:read"}),
    "app_home_opened": frozenset(),
    "assistant_thread_started": frozenset({"assistant:write"}),
    "assistant_thread_context_changed": frozenset({"assistant:write"}),
    "app_uninstalled": frozenset(),
    "tokens_revoked": frozenset(),
}
METHOD_SCOPES: dict[str, frozenset[str]] = {
    "chat_postMessage": frozenset({"chat:write"}),
    "chat_postEphemeral": frozenset({"chat:write"}),
    "chat_update": frozenset({"chat:write"}),
    "chat_getPermalink": frozenset(),
    "views_open": frozenset(),
    "views_publish": frozenset(),
    "usergroups_users_list": frozenset({"usergroups:read"}),
    "conversations_members": frozenset({"channels:read", "groups:read"}),  # public or private agents' channel
    # a recovered question's thread: was it answered before the crash? (DMs, public and private channels)
    "conversations_replies": frozenset({"im:history", "channels:history", "groups:history"}),
    "auth_test": frozenset(),
    "apps_connections_open": frozenset(),  # the app-level token's connections:write
}
WEB_API_CALL = re.compile(r"\.((?:chat|views|usergroups|conversations|users|reactions|auth|apps|team)_\w+)\(")
INTERACTIVE_KINDS = frozenset(
    {"action", "block_action", "view", "view_submission", "view_closed", "shortcut", "options", "command"}
)


def registered(store: Repository) -> TrackedApp:
    app = build_app(engine=FakeEngine(), repo=store, options=ServingOptions.defaults(bot_token="xoxb-manifest"))
    assert isinstance(app, TrackedApp)
    return app


def listened_events(app: TrackedApp) -> set[str]:
    """The event types the app has a listener for by name (the catch-all pattern aside)."""
    names = {r.constraint for r in app.registrations if r.kind == "event" and isinstance(r.constraint, str)}
    if any(r.kind == "message" for r in app.registrations):
        names.add("message")
    return names


def subscriptions_for(events: set[str]) -> set[str]:
    return {sub for name in events for sub in (MESSAGE_SUBSCRIPTIONS if name == "message" else {name})}


def web_api_methods() -> set[str]:
    return {m for path in BOT_DIR.rglob("*.py") for m in WEB_API_CALL.findall(path.read_text(encoding="utf-8"))}


async def test_manifest_subscribes_exactly_to_the_registered_listeners(store: Repository) -> None:
    app = registered(store)
    try:
        manifest: dict[str, Any] = yaml.safe_load(MANIFEST.read_text())
        subscribed = set(manifest["settings"]["event_subscriptions"]["bot_events"])
        expected = subscriptions_for(listened_events(app))
        assert {"message.im", "app_mention", "reaction_added", "app_home_opened"} <= expected  # not vacuous
        assert set(other.QUIET_EVENTS) <= expected  # only acknowledged (and logged), but listened to: subscribed
        # Every event the bot listens to is subscribed, and every subscription has a listener of its own.
        assert expected <= subscribed, expected - subscribed
        assert {s.split(".")[0] for s in subscribed} <= listened_events(app), subscribed

        interactive = {r.kind for r in app.registrations} & INTERACTIVE_KINDS
        assert interactive and manifest["settings"]["interactivity"]["is_enabled"] is True
        assert "app_home_opened" in subscribed and manifest["features"]["app_home"]["home_tab_enabled"] is True
        assert manifest["settings"]["socket_mode_enabled"] is True
    finally:
        await close_app(app)


def test_manifest_has_the_scopes_the_events_and_calls_need() -> None:
    manifest: dict[str, Any] = yaml.safe_load(MANIFEST.read_text())
    scopes = set(manifest["oauth_config"]["scopes"]["bot"])
    subscribed = set(manifest["settings"]["event_subscriptions"]["bot_events"])
    methods = web_api_methods()
    assert {"chat_postMessage", "views_publish", "usergroups_users_list"} <= methods  # the scan finds calls
    assert methods <= set(METHOD_SCOPES), f"add the scopes of {methods - set(METHOD_SCOPES)} to METHOD_SCOPES"
    assert subscribed <= set(EVENT_SCOPES), f"add the scopes of {subscribed - set(EVENT_SCOPES)} to EVENT_SCOPES"
    needed = set().union(*(EVENT_SCOPES[e] for e in subscribed), *(METHOD_SCOPES[m] for m in methods))
    assert needed <= scopes, needed - scopes
    assert "users:read" in scopes  # user look-ups (docs/slack-setup.md)
