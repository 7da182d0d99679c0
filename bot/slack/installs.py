"""Many workspaces: Slack's OAuth install flow, with installations and OAuth states in the bot's own database.

With SLACK_CLIENT_ID and SLACK_CLIENT_SECRET set (HTTP mode), Bolt serves `/slack/install` and
`/slack/oauth_redirect`. A workspace that installs the bot gets its bot token stored by slack_sdk's SQLAlchemy
stores (tables `slack_installations`, `slack_bots`, `slack_oauth_states`) on the repository's engine, so
SQLite or PostgreSQL, whichever the bot logs to; Bolt's authorization looks each event's token up there, and
Bolt's own `app_uninstalled` / `tokens_revoked` listeners delete a workspace's tokens. slack_sdk's stores are
synchronous (its async ones need an async database driver): `Threaded*` run them in worker threads, as every
other store call of the bot is run. The scopes asked for are the manifest's (`bot/slack_manifest.yaml`).
"""

from __future__ import annotations

import asyncio
import logging
from functools import cache
from importlib import resources
from typing import Any

import yaml
from slack_bolt.authorization.async_authorize import AsyncInstallationStoreAuthorize
from slack_bolt.oauth.async_oauth_settings import AsyncOAuthSettings
from slack_sdk.oauth.installation_store import Bot, Installation, InstallationStore
from slack_sdk.oauth.installation_store.async_installation_store import AsyncInstallationStore
from slack_sdk.oauth.installation_store.sqlalchemy import SQLAlchemyInstallationStore
from slack_sdk.oauth.state_store import OAuthStateStore
from slack_sdk.oauth.state_store.async_state_store import AsyncOAuthStateStore
from slack_sdk.oauth.state_store.sqlalchemy import SQLAlchemyOAuthStateStore
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

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
    """An `AsyncInstallationStore` over a synchronous one, each call in a worker thread."""

    def __init__(self, store: InstallationStore) -> None:
        self.store = store

    @property
    def logger(self) -> logging.Logger:
        return logger

    async def async_save(self, installation: Installation) -> None:
        await asyncio.to_thread(self.store.save, installation)

    async def async_save_bot(self, bot: Bot) -> None:
        await asyncio.to_thread(self.store.save_bot, bot)

    async def async_find_bot(self, **kwargs: Any) -> Bot | None:
        return await asyncio.to_thread(lambda: self.store.find_bot(**kwargs))

    async def async_find_installation(self, **kwargs: Any) -> Installation | None:
        return await asyncio.to_thread(lambda: self.store.find_installation(**kwargs))

    async def async_delete_bot(self, **kwargs: Any) -> None:
        await asyncio.to_thread(lambda: self.store.delete_bot(**kwargs))

    async def async_delete_installation(self, **kwargs: Any) -> None:
        await asyncio.to_thread(lambda: self.store.delete_installation(**kwargs))

    async def async_delete_all(self, **kwargs: Any) -> None:
        await asyncio.to_thread(lambda: self.store.delete_all(**kwargs))


class ThreadedStates(AsyncOAuthStateStore):
    """An `AsyncOAuthStateStore` over a synchronous one, each call in a worker thread."""

    def __init__(self, store: OAuthStateStore) -> None:
        self.store = store

    @property
    def logger(self) -> logging.Logger:
        return logger

    async def async_issue(self, *args: Any, **kwargs: Any) -> str:
        return await asyncio.to_thread(lambda: self.store.issue(*args, **kwargs))

    async def async_consume(self, state: str) -> bool:
        return await asyncio.to_thread(self.store.consume, state)


def installation_store(client_id: str, engine: Engine) -> SQLAlchemyInstallationStore:
    """slack_sdk's installation store on `engine`, its tables created if missing (the nightly job reads it too)."""
    store = SQLAlchemyInstallationStore(client_id=client_id, engine=engine, logger=logger)
    _create(store.metadata, engine)
    return store


def oauth_settings(options: ServingOptions, engine: Engine) -> AsyncOAuthSettings:
    """Bolt's install flow for `options` (SLACK_CLIENT_ID / SECRET set), its stores on `engine`."""
    if not options.client_id or not options.client_secret:
        raise ValueError("the install flow needs SLACK_CLIENT_ID and SLACK_CLIENT_SECRET")
    states = SQLAlchemyOAuthStateStore(expiration_seconds=STATE_EXPIRATION_S, engine=engine, logger=logger)
    _create(states.metadata, engine)
    settings = AsyncOAuthSettings(
        client_id=options.client_id,
        client_secret=options.client_secret,
        scopes=list(manifest_scopes()),
        redirect_uri=options.redirect_uri,
        authorization_url=options.authorize_url,
        installation_store=ThreadedInstallations(installation_store(options.client_id, engine)),
        state_store=ThreadedStates(states),
        state_expiration_seconds=STATE_EXPIRATION_S,
        logger=logger,
    )
    if isinstance(settings.authorize, AsyncInstallationStoreAuthorize):
        # Bolt calls auth.test for every event by default; once per token is enough (the installation itself is
        # still looked up per event, so an uninstalled workspace's events are refused at once)
        settings.authorize.cache_enabled = True
    return settings


def _create(metadata: Any, engine: Engine) -> None:
    """Create the store's tables; a replica starting at the same moment may create them first (then retried)."""
    try:
        metadata.create_all(engine)
    except SQLAlchemyError:
        metadata.create_all(engine)


async def client_for(
    installs: AsyncInstallationStore | None, base: AsyncWebClient, team_id: str
) -> AsyncWebClient | None:
    """The Web API client for `team_id`'s workspace: `base` with one token (no install flow), else `base`'s
    settings with the workspace's stored bot token; None when the workspace has no installation (uninstalled)."""
    if installs is None:
        return base
    bot = await installs.async_find_bot(enterprise_id=None, team_id=team_id or None)
    if bot is None or not bot.bot_token:
        return None
    return AsyncWebClient(
        token=bot.bot_token,
        base_url=base.base_url,
        session=base.session,
        team_id=team_id,
        logger=base.logger,
        retry_handlers=list(base.retry_handlers),
    )
