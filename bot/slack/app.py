"""`build_app`: the Bolt `AsyncApp` with every listener registered, from plain values."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import uuid
import weakref
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import aiohttp
from slack_bolt.async_app import AsyncApp
from slack_sdk.http_retry.builtin_async_handlers import AsyncRateLimitErrorRetryHandler, AsyncServerErrorRetryHandler
from slack_sdk.web.async_client import AsyncWebClient

from bot.answer import EngineLike
from bot.options import ServingOptions
from bot.slack import installs
from bot.slack.agents import DEFAULT_TTL_S, AgentDirectory, Agents
from bot.slack.deps import Deps
from bot.slack.inflight import TrackedApp
from bot.slack.intake import Intake
from bot.slack.listeners import actions, assistant, curation, home, messages, other, reactions, views
from bot.slack.logs import SafeRecords
from bot.slack.metrics import CountedRetries, Metrics, SlackCallObserver
from bot.slack.ops import state_collector
from storage.repository import Repository

logger = logging.getLogger(__name__)

_DEPS: weakref.WeakKeyDictionary[AsyncApp, Deps] = weakref.WeakKeyDictionary()  # for close_app


def _keepalive_session() -> aiohttp.ClientSession | None:
    """A shared HTTP session (connections, and TLS, reused across calls) when called inside an event loop.

    Without one, slack_sdk opens a new connection for every Web API call.
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return None
    return aiohttp.ClientSession()


def build_client(
    *,
    bot_token: str | None,
    api_base_url: str,
    max_retries: int,
    session: aiohttp.ClientSession | None = None,
    metrics: Metrics | None = None,
) -> AsyncWebClient:
    """A Web API client that retries rate limits (honouring Retry-After), 5xx answers and connection resets;
    with `metrics`, failed calls and retries are counted."""
    client = AsyncWebClient(token=bot_token, base_url=api_base_url, session=session)
    if metrics is not None:
        client.retry_handlers.append(SlackCallObserver(metrics))
    if max_retries > 0:
        handlers = [
            ("rate_limited", AsyncRateLimitErrorRetryHandler(max_retry_count=max_retries)),
            ("server_error", AsyncServerErrorRetryHandler(max_retry_count=max_retries)),
        ]
        for reason, handler in handlers:
            client.retry_handlers.append(CountedRetries(handler, metrics, reason) if metrics else handler)
    return client


class _NoTokenWarning(logging.Filter):
    """Bolt warns that SLACK_BOT_TOKEN from the environment is unused when given a client; it is the same token."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("As you gave `client` as well")


def _bolt_logger() -> logging.Logger:
    """The logger Bolt and every logger it derives from it use (Bolt copies its filters onto them)."""
    bolt_logger = logging.getLogger("bot.slack.bolt")
    for kind in (_NoTokenWarning, SafeRecords):
        if not any(isinstance(f, kind) for f in bolt_logger.filters):
            bolt_logger.addFilter(kind())
    return bolt_logger


def build_app(
    *,
    engine: EngineLike,
    repo: Repository,
    options: ServingOptions,
    agent_cache_ttl_s: float = DEFAULT_TTL_S,
    model_workers: int | None = None,
    worker: str | None = None,
) -> TrackedApp:
    """Build the bot.

    Events are acknowledged as soon as their work is stored (`bot.slack.intake`, a middleware run before
    every listener; `process_before_response=False`); the model and the store run in worker threads
    afterwards. Every listener run is counted (`app.inflight`, see `bot.slack.inflight`), so
    shutdown waits for the answers in flight. Serve it with `bot.slack.server` (Socket Mode or HTTP). Built
    inside a running event loop, the app's client keeps its connections open: release them with
    `close_app(app)`.

    Args:
        engine: answers questions (`bot.runtime.build_engine(settings)` in production).
        repo: the store; Slack retries are deduplicated through it, so processes sharing it answer once.
        options: the serving settings (`ServingOptions.from_settings(settings)`): the bot token (required) and
            signing secret, the Web API base URL (a local stand-in in tests) and its retries, who the agents
            are, the support channels, the question length limit and the out-of-scope label.
        agent_cache_ttl_s: how long group and channel membership is cached.
        model_workers: threads answering with the engine at once, in their own pool so store calls never wait
            behind model work (default: the CPU count, at most 4; measured on 2 busy cores, one worker could
            not keep up with 20 questions/s once other processes took CPU).
        worker: this bot's name in the inbox's claims, the same across restarts of one replica (`supportbot
            serve` keeps it in the data directory); default: one made up for this process.

    Example:
        >>> app = build_app(engine=engine, repo=repo, options=ServingOptions.from_settings(settings))  # doctest: +SKIP
    """
    if not options.bot_token and not options.oauth:
        raise ValueError("build_app needs a bot token (SLACK_BOT_TOKEN), or SLACK_CLIENT_ID and SLACK_CLIENT_SECRET")
    workspaces = installs.workspaces(options, repo.engine)
    oauth = installs.oauth_settings(options, workspaces) if workspaces is not None else None
    if oauth is not None and not options.home_team_id:
        logger.warning(
            "SLACK_HOME_TEAM_ID is not set: no workspace's agents see the review queue, proposals and digest, and "
            "AGENT_* apply nowhere; set it to the workspace running the deployment (docs/slack-setup.md)"
        )
    metrics = Metrics()
    client = build_client(
        bot_token=None if oauth else options.bot_token,
        api_base_url=options.api_base_url,
        max_retries=options.max_retries,
        session=_keepalive_session(),
        metrics=metrics,
    )
    app = TrackedApp(
        client=client,
        signing_secret=options.signing_secret or "",
        process_before_response=False,
        logger=_bolt_logger(),
        oauth_settings=oauth,
    )
    intake = Intake(
        repo,
        spool_path=options.spool_path,
        worker=worker or f"{socket.gethostname()[:40]}-{os.getpid()}-{uuid.uuid4().hex[:6]}",
        lease_s=options.recovery_lease_s,
        support_channel_ids=options.support_channel_ids,
        mask=options.mask_pii,
    )
    deps = Deps(
        engine=engine,
        repo=repo,
        agents=Agents(
            AgentDirectory(
                user_ids=options.agent_user_ids,
                usergroup_id=options.agent_usergroup_id,
                channel_id=options.agent_channel_id,
                ttl_s=agent_cache_ttl_s,
            ),
            options.agent_channel_id,
            installs=workspaces,
            home_team_id=options.home_team_id,
            ttl_s=agent_cache_ttl_s,
        ),
        options=options,
        model_pool=ThreadPoolExecutor(
            max_workers=model_workers or min(4, os.cpu_count() or 1), thread_name_prefix="supportbot-model"
        ),
        intake=intake,
        metrics=metrics,
        installs=workspaces,
    )
    metrics.watch(state_collector(deps))
    _DEPS[app] = deps
    app.use(intake.middleware)  # before every listener, so before every acknowledgement
    assistant.register(app, deps)  # a middleware too: after the intake's
    messages.register(app, deps)
    reactions.register(app, deps)
    home.register(app, deps)
    curation.register(app, deps)  # before actions and views: their catch-alls acknowledge the rest
    actions.register(app, deps)
    views.register(app, deps)
    if oauth is not None:
        app.enable_token_revocation_listeners()  # an uninstalled workspace's tokens are deleted
    other.register(app)  # last: its catch-all acknowledges whatever nothing else matched

    @app.error
    async def on_error(error: Exception, body: dict[str, Any]) -> None:
        kind = body.get("type") if isinstance(body, dict) else None
        logger.error("listener failed on a %s payload", kind, exc_info=error)

    return app


async def close_app(app: AsyncApp) -> None:
    """Release the app's shared HTTP session and model worker. Call after the last listener finished."""
    session = app.client.session
    if session is not None and not session.closed:
        await session.close()
    deps = _DEPS.pop(app, None)
    if deps is not None:
        deps.intake.close()
        deps.status.ops_pool.shutdown(wait=False)
        if isinstance(deps.model_pool, ThreadPoolExecutor):
            deps.model_pool.shutdown(wait=False)


def deps_of(app: AsyncApp) -> Deps | None:
    """The collaborators `build_app` gave the app's listeners (None for another app)."""
    return _DEPS.get(app)
