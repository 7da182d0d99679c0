"""The nightly job's messages to the agents' channel (sync `slack_sdk.WebClient`; the job has no event loop).

Every call logs and returns instead of raising: a message that cannot be posted never fails the job.
"""

from __future__ import annotations

import logging
from typing import Any

from bot.settings import Settings
from training.pipeline import one_line

log = logging.getLogger(__name__)


def bot_token(settings: Settings) -> str:
    """SLACK_BOT_TOKEN; installed in many workspaces (OAuth), the token SLACK_HOME_TEAM_ID's install stored in the
    database (`bot.installations`); "" when there is none."""
    if settings.slack_bot_token:
        return settings.slack_bot_token.get_secret_value()
    if not (settings.oauth and settings.slack_client_id and settings.slack_home_team_id):
        return ""
    from bot.installations import bot_token as stored_token
    from bot.installations import installation_store
    from storage.db import make_engine

    try:
        engine = make_engine(settings.db_url)
        try:
            token = stored_token(installation_store(settings.slack_client_id, engine), settings.slack_home_team_id)
        finally:
            engine.dispose()
    except Exception as exc:  # database away: nothing is posted
        log.warning("no bot token for workspace %s: %s", settings.slack_home_team_id, one_line(exc))
        return ""
    return token or ""


class AgentChannel:
    """AGENT_CHANNEL_ID through the home workspace's bot token (`bot_token`); `ready` is False (and nothing is
    sent) when either is unset."""

    def __init__(self, settings: Settings) -> None:
        token = bot_token(settings)
        self.channel = settings.agent_channel_id or ""
        self.ready = bool(token and self.channel)
        self._client: Any = None
        if self.ready:
            from slack_sdk import WebClient

            self._client = WebClient(token=token, base_url=settings.slack_api_base_url, timeout=15)

    def post(self, text: str, blocks: list[dict[str, Any]] | None = None) -> str | None:
        """Post a message; its ts ("" if Slack gave none), or None when not posted."""
        if not self.ready:
            return None
        try:
            reply = self._client.chat_postMessage(channel=self.channel, text=text, blocks=blocks)
        except Exception as exc:  # never fail the job
            log.warning("could not post to the agents' channel %s: %s", self.channel, one_line(exc))
            return None
        ts = reply.get("ts")
        return ts if isinstance(ts, str) else ""

    def update(self, ts: str, text: str, blocks: list[dict[str, Any]] | None = None) -> bool:
        """Replace the text of message `ts`; False when that failed."""
        if not self.ready:
            return False
        try:
            self._client.chat_update(channel=self.channel, ts=ts, text=text, blocks=blocks)
        except Exception as exc:
            log.warning("could not update message %s in %s: %s", ts, self.channel, one_line(exc))
            return False
        return True
