"""Serving the app: Socket Mode (default) or HTTP Events, with graceful shutdown on SIGTERM / SIGINT."""

from __future__ import annotations

import asyncio
import json
import logging
import signal
import time
from collections.abc import Callable, Sequence
from typing import Any, Literal
from urllib.parse import parse_qsl

from aiohttp import web
from slack_bolt import BoltResponse
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
from slack_bolt.adapter.socket_mode.aiohttp import AsyncSocketModeHandler
from slack_bolt.async_app import AsyncApp, AsyncBoltRequest
from slack_sdk.errors import SlackApiError
from slack_sdk.socket_mode.aiohttp import SocketModeClient
from slack_sdk.socket_mode.request import SocketModeRequest
from slack_sdk.socket_mode.response import SocketModeResponse

from bot.slack.app import close_app, deps_of
from bot.slack.inflight import in_flight
from bot.slack.ops import add_routes, serve_ops
from bot.slack.recovery import Recovery
from bot.slack.shape import shape_problem
from bot.slack.slack_io import CALL_ERRORS, describe

logger = logging.getLogger(__name__)

EVENTS_PATH = "/slack/events"
MAX_BODY_BYTES = 1024 * 1024  # Slack's payloads are far smaller; a bigger body is refused with 413, unread
DRAIN_S = 10.0

Mode = Literal["socket", "http"]


def _invalid_body() -> web.Response:
    return web.json_response({"error": "invalid_body"}, status=400)


def parse_body(raw: str, content_type: str | None) -> Any:
    """A request body as Bolt reads it: JSON (events), a form whose `payload` field is JSON (interactivity),
    or a plain form (slash commands). Raises ValueError on malformed JSON."""
    if not raw:
        return {}
    if content_type == "application/json" or raw.startswith("{"):
        return json.loads(raw)
    params = dict(parse_qsl(raw, keep_blank_values=True))
    if "payload" in raw:
        payload = params.get("payload")
        return json.loads(payload) if payload is not None else {}
    return params


def make_web_app(app: AsyncApp, *, path: str = EVENTS_PATH, ops: bool = True) -> web.Application:
    """An aiohttp application serving Slack's events and interactivity on `path`, plus `GET /healthz`, `/readyz`
    and `/metrics` (`bot.slack.ops`; `ops=False`: `/healthz` only, the others being served on their own port).

    A body over `MAX_BODY_BYTES` is refused with 413 before it is read or verified. Unlike `AsyncApp.web_app()`,
    a malformed body (not a JSON object / form payload, or of a structure Bolt
    cannot parse; see `bot.slack.shape`) is refused with 400 instead of failing with 500. Signatures and
    timestamps are checked by Bolt (401 when wrong or over five minutes old).
    """

    async def handle(request: web.Request) -> web.Response:
        try:
            raw = await request.text()
            problem = shape_problem(parse_body(raw, request.content_type))
            if problem is not None:
                logger.info("refused a malformed request: %s", problem)
                return _invalid_body()
            bolt_request = AsyncBoltRequest(body=raw, query=request.query_string, headers=dict(request.headers))
        except web.HTTPRequestEntityTooLarge:
            logger.info("refused a body over %d bytes (%s announced)", MAX_BODY_BYTES, request.content_length)
            return web.json_response({"error": "body_too_large"}, status=413)
        except Exception as exc:  # Bolt's parsing fails in many ways on malformed payloads
            logger.info("refused a malformed request: %s: %s", type(exc).__name__, str(exc)[:200])
            return _invalid_body()
        started = time.perf_counter()
        bolt_response = await app.async_dispatch(bolt_request)
        deps = deps_of(app)
        if deps is not None:
            deps.metrics.ack_latency.observe(time.perf_counter() - started)
        return await to_aiohttp_response(bolt_response)

    web_app = web.Application(client_max_size=MAX_BODY_BYTES)
    web_app.router.add_post(path, handle)
    flow = app.oauth_flow
    if flow is not None:  # installed in many workspaces: Slack's install link and its redirect back (Bolt's)

        async def install(request: web.Request) -> web.Response:
            return await to_aiohttp_response(await flow.handle_installation(await to_bolt_request(request)))

        async def redirected(request: web.Request) -> web.Response:
            return await to_aiohttp_response(await flow.handle_callback(await to_bolt_request(request)))

        web_app.router.add_get(flow.install_path, install)
        web_app.router.add_get(flow.redirect_uri_path, redirected)
    add_routes(web_app, deps_of(app) if ops else None)  # /healthz; with `ops`, /metrics and /readyz too
    return web_app


async def serve_http(
    app: AsyncApp,
    *,
    host: str,
    port: int,
    stop: asyncio.Event,
    on_ready: Callable[[int], None] | None = None,
    path: str = EVENTS_PATH,
    ops: bool = True,
) -> None:
    """Serve HTTP Events on host:port until `stop` is set. `on_ready` receives the bound port (port 0 works)."""
    runner = web.AppRunner(make_web_app(app, path=path, ops=ops), access_log=None, shutdown_timeout=5.0)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port)
        try:
            await site.start()
        except OSError as exc:
            raise StartError(
                f"cannot listen on {host}:{port} ({exc.strerror or exc}): another process holds the port, or the "
                "address is not this machine's; free it or choose another with HTTP_PORT / --port (HTTP_HOST / --host)"
            ) from None
        bound = runner.addresses[0][1] if runner.addresses else port
        logger.info("serving Slack HTTP events on http://%s:%s%s", host, bound, path)
        if on_ready is not None:
            on_ready(bound)
        await stop.wait()
    finally:
        await runner.cleanup()


def socket_mode_request(req: SocketModeRequest) -> AsyncBoltRequest:
    """The Bolt request for an envelope; a redelivery carries Slack's retry headers, as over HTTP."""
    headers: dict[str, str | Sequence[str]] = {}
    if req.retry_attempt is not None:
        headers["x-slack-retry-num"] = str(req.retry_attempt)
    if req.retry_reason is not None:
        headers["x-slack-retry-reason"] = req.retry_reason
    return AsyncBoltRequest(mode="socket_mode", body=req.payload, headers=headers or None)


def socket_mode_ack(envelope_id: str, response: BoltResponse) -> SocketModeResponse:
    """The ack frame for a dispatched envelope: bare, or with the listener's ack body as its payload."""
    body = response.body
    if not body:
        return SocketModeResponse(envelope_id=envelope_id)
    if response.first_headers().get("content-type", "").startswith("application/json"):
        return SocketModeResponse(envelope_id=envelope_id, payload=json.loads(body))
    return SocketModeResponse(envelope_id=envelope_id, payload={"text": body})


class SocketModeHandler(AsyncSocketModeHandler):
    """Bolt's aiohttp Socket Mode handler, except that every envelope is acknowledged.

    Bolt leaves an envelope unacknowledged when dispatch does not return 200 (a malformed payload), and
    Slack then redelivers it for nothing. Here such envelopes are logged, acknowledged and dropped.
    """

    async def handle(self, client: SocketModeClient, req: SocketModeRequest) -> None:  # type: ignore[override]
        started = time.perf_counter()
        problem = shape_problem(req.payload)
        if problem is None:
            try:
                response = await self.app.async_dispatch(socket_mode_request(req))
            except Exception as exc:  # Bolt's parsing fails in many ways on malformed payloads
                problem = f"{type(exc).__name__}: {str(exc)[:200]}"
            else:
                if response.status == 200:
                    await client.send_socket_mode_response(socket_mode_ack(req.envelope_id, response))
                    logger.debug("envelope %s acknowledged in %.0f ms", req.envelope_id, _ms_since(started))
                    deps = deps_of(self.app)
                    if deps is not None:
                        deps.metrics.ack_latency.observe(time.perf_counter() - started)
                    return
                problem = f"dispatch answered {response.status}"
        logger.info("acknowledged and dropped envelope %s (%s)", req.envelope_id, problem)
        await client.send_socket_mode_response(SocketModeResponse(envelope_id=req.envelope_id))


def _ms_since(started: float) -> float:
    return (time.perf_counter() - started) * 1000


async def serve_socket(
    app: AsyncApp,
    *,
    app_token: str,
    stop: asyncio.Event,
    on_ready: Callable[[SocketModeClient], None] | None = None,
) -> None:
    """Connect over Socket Mode with the `xapp-` token and serve until `stop` is set.

    The SDK keeps retrying a connection Slack does not accept; `stop` ends that too.
    """
    handler = SocketModeHandler(app, app_token=app_token)
    connecting = asyncio.create_task(handler.connect_async())
    stopping = asyncio.create_task(stop.wait())
    try:
        await asyncio.wait({connecting, stopping}, return_when=asyncio.FIRST_COMPLETED)
        if connecting.done():
            connecting.result()
            logger.info("connected to Slack over Socket Mode")
            if on_ready is not None:
                on_ready(handler.client)
            await stopping
    finally:
        stopping.cancel()
        connecting.cancel()
        await handler.close_async()


async def drain(app: AsyncApp, timeout_s: float = DRAIN_S) -> bool:
    """Wait (up to `timeout_s`) for the listener runs still in progress, e.g. an answer being posted.

    Returns True once none is left, False when some still were at the timeout (or the app was not built
    by `build_app`, so its runs are not counted).
    """
    flight = in_flight(app)
    if flight is None:
        logger.warning("cannot wait for the events in flight: the app was not built by build_app")
        return False
    await asyncio.sleep(0)  # runs Bolt scheduled just before the stop start counting now
    if flight.running:
        logger.info("waiting for %d event(s) in flight", flight.running)
    if await flight.wait_idle(timeout_s):
        return True
    logger.warning("%d event(s) still in flight after %.0f s; stopping anyway", flight.running, timeout_s)
    return False


class StartError(Exception):
    """The bot cannot start; the message (one line) says why and what to do."""


class SlackAuthError(StartError):
    """Slack refused one of the bot's tokens; the message says which and what to do."""


REFUSED_TOKEN_ERRORS = frozenset({"invalid_auth", "not_authed", "account_inactive", "token_revoked", "token_expired"})


async def check_token(app: AsyncApp) -> None:
    """Fail fast on a bot token Slack refuses (`auth.test`); a Slack outage only logs a warning."""
    try:
        response = await app.client.auth_test()
    except SlackApiError as exc:
        error = exc.response.get("error")
        if error in REFUSED_TOKEN_ERRORS:
            raise SlackAuthError(
                f"Slack refused SLACK_BOT_TOKEN ({error}): copy the Bot User OAuth Token (xoxb-…) from the app's "
                "OAuth & Permissions page (docs/slack-setup.md)"
            ) from None
        logger.warning("auth.test failed (%s); starting anyway", describe(exc))
    except CALL_ERRORS as exc:
        logger.warning("cannot reach Slack to check the bot token (%s); starting anyway", describe(exc))
    else:
        logger.info("connected to workspace %s as %s", response.get("team"), response.get("user"))


async def check_app_token(app: AsyncApp, app_token: str) -> None:
    """Fail fast on an app-level token Slack refuses (`apps.connections.open`); outages only log."""
    try:
        await app.client.apps_connections_open(app_token=app_token)
    except SlackApiError as exc:
        error = exc.response.get("error")
        if error in REFUSED_TOKEN_ERRORS:
            raise SlackAuthError(
                f"Slack refused SLACK_APP_TOKEN ({error}): generate an app-level token with the "
                "connections:write scope (docs/slack-setup.md)"
            ) from None
        logger.warning("apps.connections.open failed (%s); connecting anyway", describe(exc))
    except CALL_ERRORS as exc:
        logger.warning("cannot reach Slack to check the app token (%s); connecting anyway", describe(exc))


async def serve_until_signalled(
    make_app: Callable[[], AsyncApp],
    *,
    mode: Mode,
    app_token: str | None = None,
    host: str = "0.0.0.0",
    port: int = 3000,
    on_stop: Callable[[], None] | None = None,
    on_ready: Callable[[int], None] | None = None,
    metrics_host: str = "0.0.0.0",
    metrics_port: int = 0,
) -> None:
    """Build the app in the running loop, serve it, and shut down cleanly on SIGTERM or SIGINT.

    `/metrics`, `/healthz` and `/readyz` are served on metrics_host:metrics_port; with metrics_port 0, in HTTP
    mode beside the events (Socket Mode: not at all). `/healthz` is beside the events in HTTP mode either way.

    Shutdown stops taking new events, waits for the answers in flight (`drain`), then calls `on_stop`.
    `on_ready` receives the bound HTTP port (HTTP mode).

    Raises:
        SlackAuthError: Slack refused the bot token or the app-level token.
    """
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    app = make_app()
    deps = deps_of(app)
    recovery: Recovery | None = None
    ops = None
    try:
        if deps is not None and deps.installs is not None:
            logger.info("installed through the OAuth flow: each workspace's token is looked up per event")
        else:
            await check_token(app)
        if deps is not None:
            recovery = Recovery(deps, app.client, in_flight(app))
            recovery.start()
        if mode == "socket":
            if not app_token:
                raise SlackAuthError("Socket Mode needs the app-level token: set SLACK_APP_TOKEN (xapp-…)")
            await check_app_token(app, app_token)
            if deps is not None and metrics_port:
                ops = await serve_ops(deps, host=metrics_host, port=metrics_port)

            def connected(client: SocketModeClient) -> None:
                if deps is not None:
                    deps.status.slack_connected = True
                    deps.status.probe = client.is_connected  # /readyz asks the connection itself

            await serve_socket(app, app_token=app_token, stop=stop, on_ready=connected)
        else:
            if deps is not None:
                deps.status.slack_connected = True  # the token was checked; Slack reaches us over HTTP
                if metrics_port:  # not on the public events port: /metrics and /readyz on their own
                    ops = await serve_ops(deps, host=metrics_host, port=metrics_port)
            await serve_http(app, host=host, port=port, stop=stop, on_ready=on_ready, ops=ops is None)
        logger.info("shutting down")
        if recovery is not None:
            await recovery.stop()
        await drain(app)
    finally:
        if deps is not None:
            deps.status.slack_connected, deps.status.probe = False, None
        if ops is not None:
            await ops.cleanup()
        if recovery is not None:
            await recovery.stop(timeout_s=0)
        await close_app(app)
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
        if on_stop is not None:
            on_stop()
