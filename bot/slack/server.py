"""Serving the app: Socket Mode (default) or HTTP Events, with graceful shutdown on SIGTERM / SIGINT."""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Callable
from typing import Literal

from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response
from slack_bolt.adapter.socket_mode.aiohttp import AsyncSocketModeHandler
from slack_bolt.async_app import AsyncApp
from slack_bolt.request.async_request import AsyncBoltRequest

logger = logging.getLogger(__name__)

EVENTS_PATH = "/slack/events"
MAX_BODY_BYTES = 8 * 1024 * 1024  # Slack's payloads are far smaller; a bigger body is refused with 413
DRAIN_S = 10.0

Mode = Literal["socket", "http"]


def make_web_app(app: AsyncApp, *, path: str = EVENTS_PATH) -> web.Application:
    """An aiohttp application serving Slack's events and interactivity on `path`, plus `GET /healthz`.

    Unlike `AsyncApp.web_app()`, a body that is not valid JSON / form data is refused with 400 instead of
    failing with 500. Signatures and timestamps are checked by Bolt (401 when wrong or over 5 minutes old).
    """

    async def handle(request: web.Request) -> web.Response:
        try:
            raw = await request.text()
            bolt_request = AsyncBoltRequest(body=raw, query=request.query_string, headers=dict(request.headers))
        except (ValueError, TypeError):  # invalid JSON or encoding (JSONDecodeError is a ValueError)
            return web.json_response({"error": "invalid_body"}, status=400)
        if not isinstance(bolt_request.body, dict):
            return web.json_response({"error": "invalid_body"}, status=400)
        bolt_response = await app.async_dispatch(bolt_request)
        return await to_aiohttp_response(bolt_response)

    async def health(_: web.Request) -> web.Response:
        return web.Response(text="ok")

    web_app = web.Application(client_max_size=MAX_BODY_BYTES)
    web_app.router.add_post(path, handle)
    web_app.router.add_get("/healthz", health)
    return web_app


async def serve_http(
    app: AsyncApp,
    *,
    host: str,
    port: int,
    stop: asyncio.Event,
    on_ready: Callable[[int], None] | None = None,
    path: str = EVENTS_PATH,
) -> None:
    """Serve HTTP Events on host:port until `stop` is set. `on_ready` receives the bound port (port 0 works)."""
    runner = web.AppRunner(make_web_app(app, path=path), access_log=None, shutdown_timeout=5.0)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port)
        await site.start()
        bound = runner.addresses[0][1] if runner.addresses else port
        logger.info("serving Slack HTTP events on http://%s:%s%s", host, bound, path)
        if on_ready is not None:
            on_ready(bound)
        await stop.wait()
    finally:
        await runner.cleanup()


async def serve_socket(
    app: AsyncApp, *, app_token: str, stop: asyncio.Event, on_ready: Callable[[], None] | None = None
) -> None:
    """Connect over Socket Mode with the `xapp-` token and serve until `stop` is set."""
    handler = AsyncSocketModeHandler(app, app_token=app_token)
    await handler.connect_async()
    logger.info("connected to Slack over Socket Mode")
    try:
        if on_ready is not None:
            on_ready()
        await stop.wait()
    finally:
        await handler.close_async()


async def drain(timeout_s: float = DRAIN_S) -> None:
    """Wait (up to `timeout_s`) for listener tasks still running, e.g. an answer being posted."""
    pending = {task for task in asyncio.all_tasks() if task is not asyncio.current_task() and not task.done()}
    if not pending:
        return
    logger.info("waiting for %d task(s) in flight", len(pending))
    _, still = await asyncio.wait(pending, timeout=timeout_s)
    if still:
        logger.warning("%d task(s) still running after %.0f s; stopping anyway", len(still), timeout_s)


async def serve_until_signalled(
    make_app: Callable[[], AsyncApp],
    *,
    mode: Mode,
    app_token: str | None = None,
    host: str = "0.0.0.0",
    port: int = 3000,
    on_stop: Callable[[], None] | None = None,
) -> None:
    """Build the app in the running loop, serve it, and shut down cleanly on SIGTERM or SIGINT."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    app = make_app()
    try:
        if mode == "socket":
            if not app_token:
                raise ValueError("Socket Mode needs the app-level token (SLACK_APP_TOKEN)")
            await serve_socket(app, app_token=app_token, stop=stop)
        else:
            await serve_http(app, host=host, port=port, stop=stop)
        logger.info("shutting down")
        await drain()
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
        if on_stop is not None:
            on_stop()
