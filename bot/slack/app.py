"""`build_app`: the Bolt `AsyncApp` with every listener registered, from plain values."""

from __future__ import annotations

import asyncio
import logging
import os
import weakref
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import aiohttp
from slack_bolt.async_app import AsyncApp
from slack_sdk.http_retry.builtin_async_handlers import AsyncRateLimitErrorRetryHandler, AsyncServerErrorRetryHandler
from slack_sdk.web.async_client import AsyncWebClient

from bot.answer import EngineLike
from bot.slack.agents import DEFAULT_TTL_S, AgentDirectory
from bot.slack.deps import Deps
from bot.slack.inflight import TrackedApp
from bot.slack.listeners import actions, home, messages, other, reactions, views
from storage.repository import Repository

logger = logging.getLogger(__name__)

SLACK_API = "https://slack.com/api/"
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
    bot_token: str,
    api_base_url: str = SLACK_API,
    max_retries: int = 3,
    session: aiohttp.ClientSession | None = None,
) -> AsyncWebClient:
    """A Web API client that retries rate limits (honouring Retry-After), 5xx answers and connection resets."""
    client = AsyncWebClient(token=bot_token, base_url=api_base_url, session=session)
    if max_retries > 0:
        client.retry_handlers.append(AsyncRateLimitErrorRetryHandler(max_retry_count=max_retries))
        client.retry_handlers.append(AsyncServerErrorRetryHandler(max_retry_count=max_retries))
    return client


class _NoTokenWarning(logging.Filter):
    """Bolt warns that SLACK_BOT_TOKEN from the environment is unused when given a client; it is the same token."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("As you gave `client` as well")


def _bolt_logger() -> logging.Logger:
    bolt_logger = logging.getLogger("bot.slack.bolt")
    if not any(isinstance(f, _NoTokenWarning) for f in bolt_logger.filters):
        bolt_logger.addFilter(_NoTokenWarning())
    return bolt_logger


def build_app(
    *,
    engine: EngineLike,
    repo: Repository,
    bot_token: str,
    signing_secret: str | None = None,
    api_base_url: str = SLACK_API,
    agent_channel_id: str | None = None,
    agent_usergroup_id: str | None = None,
    agent_user_ids: Iterable[str] = (),
    support_channel_ids: Iterable[str] = (),
    max_retries: int = 3,
    max_question_chars: int = 4000,
    out_of_scope_label: str = "out_of_scope",
    agent_cache_ttl_s: float = DEFAULT_TTL_S,
    model_workers: int | None = None,
) -> TrackedApp:
    """Build the bot.

    Events are acknowledged at once (`process_before_response=False`); the model and the store run in
    worker threads afterwards. Every listener run is counted (`app.inflight`, see `bot.slack.inflight`), so
    shutdown waits for the answers in flight. Serve it with `bot.slack.server` (Socket Mode or HTTP). Built
    inside a running event loop, the app's client keeps its connections open: release them with
    `close_app(app)`.

    Args:
        engine: answers questions (`bot.runtime.build_engine(settings)` in production).
        repo: the store; Slack retries are deduplicated through it, so processes sharing it answer once.
        bot_token: the `xoxb-` bot token.
        signing_secret: verifies HTTP requests (not needed in Socket Mode).
        api_base_url: Slack Web API base URL (a local stand-in in tests).
        agent_channel_id: agents' channel: hand-offs are posted there, and its members are agents.
        agent_usergroup_id: user group whose members are agents.
        agent_user_ids: users who are always agents.
        support_channel_ids: channels where every new top-level message is a question.
        max_retries: retries of a Web API call on 429 (after Retry-After) and on 5xx.
        max_question_chars: longer questions are truncated for the model.
        out_of_scope_label: the intent agents choose for questions the bot should hand off.
        agent_cache_ttl_s: how long group and channel membership is cached.
        model_workers: threads answering with the engine at once, in their own pool so store calls never wait
            behind model work (default: the CPU count, at most 4; measured on 2 busy cores, one worker could
            not keep up with 20 questions/s once other processes took CPU).

    Example:
        >>> app = build_app(engine=engine, repo=Repository(url), bot_token="xoxb-...")  # doctest: +SKIP
    """
    client = build_client(
        bot_token=bot_token, api_base_url=api_base_url, max_retries=max_retries, session=_keepalive_session()
    )
    app = TrackedApp(
        client=client,
        signing_secret=signing_secret or "",
        process_before_response=False,
        logger=_bolt_logger(),
    )
    deps = Deps(
        engine=engine,
        repo=repo,
        agents=AgentDirectory(
            user_ids=agent_user_ids,
            usergroup_id=agent_usergroup_id,
            channel_id=agent_channel_id,
            ttl_s=agent_cache_ttl_s,
        ),
        agent_channel_id=agent_channel_id or None,
        support_channel_ids=frozenset(support_channel_ids),
        max_question_chars=max_question_chars,
        out_of_scope_label=out_of_scope_label,
        model_pool=ThreadPoolExecutor(
            max_workers=model_workers or min(4, os.cpu_count() or 1), thread_name_prefix="supportbot-model"
        ),
    )
    _DEPS[app] = deps
    messages.register(app, deps)
    reactions.register(app, deps)
    home.register(app, deps)
    actions.register(app, deps)
    views.register(app, deps)
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
    if deps is not None and isinstance(deps.model_pool, ThreadPoolExecutor):
        deps.model_pool.shutdown(wait=False)
