"""The app manifest subscribes to what the bot listens to, with the scopes its calls need."""

from __future__ import annotations

from pathlib import Path

import yaml

import bot

MANIFEST = Path(bot.__file__).parent / "slack_manifest.yaml"


def test_manifest_matches_the_bot() -> None:
    manifest = yaml.safe_load(MANIFEST.read_text())
    events = set(manifest["settings"]["event_subscriptions"]["bot_events"])
    assert {
        "message.im",
        "message.channels",
        "message.groups",
        "app_mention",
        "reaction_added",
        "reaction_removed",
        "app_home_opened",
    } <= events
    scopes = set(manifest["oauth_config"]["scopes"]["bot"])
    assert {
        "app_mentions:read",
        "channels:history",
        "groups:history",
        "im:history",
        "chat:write",
        "reactions:read",
        "users:read",
        "usergroups:read",
        "channels:read",
    } <= scopes
    assert manifest["settings"]["socket_mode_enabled"] is True
    assert manifest["settings"]["interactivity"]["is_enabled"] is True
    assert manifest["features"]["app_home"]["home_tab_enabled"] is True
