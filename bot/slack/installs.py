"""Many workspaces: Slack's OAuth install flow, with installations and OAuth states in the bot's own database.

With SLACK_CLIENT_ID and SLACK_CLIENT_SECRET set (HTTP mode), Bolt serves `/slack/install` and
`/slack/oauth_redirect`. A workspace that installs the bot gets its bot token stored by slack_sdk's SQLAlchemy
stores (tables `slack_installations`, `slack_bots`, `slack_oauth_states`; `bot.installations`) on the repository's
engine, so SQLite or PostgreSQL, whichever the bot logs to. Bolt's authorization looks each event's bot up there
(bots only, its auth.test cached per token), and Bolt's own `app_uninstalled` / `tokens_revoked` listeners
delete a workspace's tokens. slack_sdk's stores are
synchronous (its async ones need an async database driver): `Threaded*` run them in worker threads, as every
other store call of the bot is run. The scopes asked for are the manifest's (`bot/slack_manifest.yaml`).
"""

from __future__ import annotations

import asyncio
import logging
from functools import cache
from importlib import resources
from typing import Any
from urllib.parse import urlparse

import yaml
from slack_bolt.authorization.async_authorize import AsyncInstallationStoreAuthorize
from slack_bolt.oauth.async_oauth_settings import AsyncOAuthSettings
from slack_sdk.oauth.installation_store import Bot, Installation
from slack_sdk.oauth.installation_store.async_installation_store import AsyncInstallationStore
from slack_sdk.oauth.installation_store.sqlalchemy import SQLAlchemyInstallationStore
from slack_sdk.oauth.state_store.async_state_store import AsyncOAuthStateStore
from slack_sdk.oauth.state_store.sqlalchemy import SQLAlchemyOAuthStateStore
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy import Engine

from bot import installations
from bot.options import ServingOptions

logger = logging.getLogger(__name__)

STATE_EXPIRATION_S = 600
"""How long an install link stays valid (Bolt's default)."""


@cache
def manifest_scopes() -> tuple[str, ...]:
    """The bot scopes `bot/slack_manifest.yaml` asks for: the install flow asks each workspace for the same."""
    text = resources.files("bot").joinpath("slack_manifest.yaml").read_text(encoding="utf-8")
    return tuple(yaml.safe_load(text)["oauth_config"]["scopes"]["bot"])


class ThreadedInstallations(AsyncInstallationStore):
    """slack_sdk's SQLAlchemy installation store as an `AsyncInstallationStore`, each call in a worker thread.

    Bolt looks every event's bot up here (`async_find_bot`: the app asks for bots only, so a workspace whose
    tokens were revoked is refused at once). While the database is away, the bot last found for a workspace is
    used, so events are still taken (and spooled) as with one bot token; a deletion forgets it.
    """

    def __init__(self, store: SQLAlchemyInstallationStore) -> None:
        self.store = store
        self._known: dict[tuple[str | None, str | None], Bot] = {}

    @property
    def logger(self) -> logging.Logger:
        return logger

    async def async_save(self, installation: Installation) -> None:
        await asyncio.to_thread(self.store.save, installation)

    async def async_save_bot(self, bot: Bot) -> None:
        await asyncio.to_thread(self.store.save_bot, bot)

    async def async_find_bot(
        self, *, enterprise_id: str | None, team_id: str | None, is_enterprise_install: bool | None = False
    ) -> Bot | None:
        key = (enterprise_id, team_id)
        try:
            bot = await asyncio.to_thread(
                lambda: self.store.find_bot(
                    enterprise_id=enterprise_id, team_id=team_id, is_enterprise_install=is_enterprise_install
                )
            )
        except Exception as exc:
            known = self._known.get(key)
            if known is None:
                raise
            logger.warning("installation store unavailable (%s); using workspace %s's last known bot", exc, team_id)
            return known
        if bot is None:
            self._known.pop(key, None)
        else:
            self._known[key] = bot
        return bot

    async def async_find_installation(self, **kwargs: Any) -> Installation | None:
        return await asyncio.to_thread(lambda: self.store.find_installation(**kwargs))

    async def async_delete_bot(self, **kwargs: Any) -> None:
        self._forget(kwargs)
        await asyncio.to_thread(lambda: self.store.delete_bot(**kwargs))

    async def async_delete_installation(self, **kwargs: Any) -> None:
        if kwargs.get("user_id") is None:
            self._forget(kwargs)
        await asyncio.to_thread(lambda: self.store.delete_installation(**kwargs))

    async def async_delete_all(self, **kwargs: Any) -> None:
        self._forget(kwargs)
        await asyncio.to_thread(lambda: self.store.delete_all(**kwargs))

    def _forget(self, kwargs: dict[str, Any]) -> None:
        self._known.pop((kwargs.get("enterprise_id"), kwargs.get("team_id")), None)

    async def bot_token(self, team_id: str) -> str | None:
        """`team_id`'s stored bot token, by workspace alone (`bot.installations.bot_token`)."""
        return await asyncio.to_thread(installations.bot_token, self.store, team_id)

    async def installer(self, team_id: str) -> str | None:
        """Who first installed the bot in `team_id` (`bot.installations.first_installer`)."""
        return await asyncio.to_thread(installations.first_installer, self.store, team_id)


class ThreadedStates(AsyncOAuthStateStore):
    """An `AsyncOAuthStateStore` over a synchronous one, each call in a worker thread."""

    def __init__(self, store: SQLAlchemyOAuthStateStore) -> None:
        self.store = store

    @property
    def logger(self) -> logging.Logger:
        return logger

    async def async_issue(self, *args: Any, **kwargs: Any) -> str:
        return await asyncio.to_thread(lambda: self.store.issue(*args, **kwargs))

    async def async_consume(self, state: str) -> bool:
        return await asyncio.to_thread(self.store.consume, state)


def workspaces(options: ServingOptions, engine: Engine) -> ThreadedInstallations | None:
    """The installations on `engine` when `options` install through the OAuth flow, else None (one bot token)."""
    if not options.oauth or not options.client_id:
        return None
    return ThreadedInstallations(installations.installation_store(options.client_id, engine))


def oauth_settings(options: ServingOptions, store: ThreadedInstallations) -> AsyncOAuthSettings:
    """Bolt's install flow for `options` (SLACK_CLIENT_ID / SECRET set): installations in `store`, OAuth states in
    the same database."""
    if not options.client_id or not options.client_secret:
        raise ValueError("the install flow needs SLACK_CLIENT_ID and SLACK_CLIENT_SECRET")
    engine = store.store.engine
    states = SQLAlchemyOAuthStateStore(expiration_seconds=STATE_EXPIRATION_S, engine=engine, logger=logger)
    installations.create_tables(states.metadata, engine)
    redirect_path = urlparse(options.redirect_uri).path if options.redirect_uri else ""
    settings = AsyncOAuthSettings(
        client_id=options.client_id,
        client_secret=options.client_secret,
        scopes=list(manifest_scopes()),
        redirect_uri=options.redirect_uri,
        redirect_uri_path=redirect_path or "/slack/oauth_redirect",
        authorization_url=options.authorize_url,
        installation_store=store,
        installation_store_bot_only=True,  # a workspace whose tokens were revoked has no bot left: refused
        state_store=ThreadedStates(states),
        state_expiration_seconds=STATE_EXPIRATION_S,
        logger=logger,
    )
    if isinstance(settings.authorize, AsyncInstallationStoreAuthorize):
        # Bolt calls auth.test for every event by default; once per token is enough (the installation itself is
        # still looked up per event, so an uninstalled workspace's events are refused at once)
        settings.authorize.cache_enabled = True
    return settings


async def client_for(
    installs: ThreadedInstallations | None, base: AsyncWebClient, team_id: str
) -> AsyncWebClient | None:
    """The Web API client for `team_id`'s workspace: `base` with one token (no install flow), else `base`'s
    settings with the workspace's stored bot token; None when the workspace has none (uninstalled)."""
    if installs is None:
        return base
    token = await installs.bot_token(team_id) if team_id else None
    if token is None:
        return None
    return AsyncWebClient(
        token=token,
        base_url=base.base_url,
        session=base.session,
        team_id=team_id,
        logger=base.logger,
        retry_handlers=list(base.retry_handlers),
    )
