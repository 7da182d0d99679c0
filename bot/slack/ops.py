"""The operator's window: `/metrics` (Prometheus), `/healthz` (alive) and `/readyz` (ready to answer).

In HTTP mode they are served beside Slack's events; in Socket Mode on their own port (METRICS_PORT; 0: off).

Ready means all three: the engine serves a model; the database answers, or (while it is away) the local spool
can take the work (`"spool"`, still ready: nothing accepted is lost); and Slack is connected (Socket Mode
connected, or the bot token checked in HTTP mode). `/readyz` answers 200 or 503 with each check as JSON.
"""

from __future__ import annotations

import asyncio
import logging
import os
from pathlib import Path
from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from bot import digest
from bot.slack.deps import Deps
from bot.slack.metrics import StateCollector

logger = logging.getLogger(__name__)

PING_TIMEOUT_S = 2.0


def state_collector(deps: Deps) -> StateCollector:
    """The scrape-time gauges of `deps` (spool, model, last nightly run, last digest)."""

    def last_run() -> tuple[str, float] | None:
        for run in deps.repo.training_runs(limit=20):
            if run.status != "running" and run.finished_at is not None:
                return run.status, run.finished_at.timestamp()
        return None

    def automation_rate() -> float | None:
        posting = deps.repo.latest_posting(digest.KEY_PREFIX)
        if posting is None:
            return None
        content = digest.Digest.from_dict(posting.content)
        return content.automated / content.questions if content.questions else None

    return StateCollector(
        spool_depth=deps.intake.spooled,
        model_info=lambda: deps.engine.model_info,
        last_run=last_run,
        automation_rate=automation_rate,
    )


async def readiness(deps: Deps) -> dict[str, Any]:
    """Each check's state and whether all pass (see the module docstring)."""
    try:
        model = str(deps.engine.model_info.get("version") or "")
    except Exception:
        model = ""
    status = deps.status
    if status.ping is None or status.ping.done():
        status.ping = asyncio.get_running_loop().run_in_executor(status.ops_pool, deps.repo.ping)
    try:
        await asyncio.wait_for(asyncio.shield(status.ping), PING_TIMEOUT_S)
        store = "database"
    except Exception:
        store = "spool" if _can_create(deps.intake.spool_path) else ""
    connected = deps.status.slack_connected
    if connected and deps.status.probe is not None:
        try:
            connected = bool(await asyncio.wait_for(deps.status.probe(), PING_TIMEOUT_S))
        except Exception:
            connected = False
    checks = {"model": model or None, "store": store or None, "slack": connected}
    return {"ready": bool(model and store and connected), "checks": checks}


def _can_create(path: Path) -> bool:
    """Whether `path` can be written: its folder, or the nearest folder above that exists, is writable."""
    folder = path.parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    return folder.is_dir() and os.access(folder, os.W_OK)


def add_routes(web_app: web.Application, deps: Deps | None) -> None:
    """Add `/metrics`, `/healthz` and `/readyz` to `web_app` (without `deps`, only `/healthz`)."""

    async def health(_: web.Request) -> web.Response:
        return web.Response(text="ok")

    web_app.router.add_get("/healthz", health)
    if deps is None:
        return

    async def metrics(_: web.Request) -> web.Response:
        loop = asyncio.get_running_loop()  # the readings query the store: in the ops thread, not the listeners'
        body = await loop.run_in_executor(deps.status.ops_pool, generate_latest, deps.metrics.registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def ready(_: web.Request) -> web.Response:
        state = await readiness(deps)
        return web.json_response(state, status=200 if state["ready"] else 503)

    web_app.router.add_get("/metrics", metrics)
    web_app.router.add_get("/readyz", ready)


async def serve_ops(deps: Deps, *, host: str, port: int) -> web.AppRunner:
    """Serve the three endpoints on host:port (Socket Mode); returns the runner to clean up."""
    web_app = web.Application()
    add_routes(web_app, deps)
    runner = web.AppRunner(web_app, access_log=None, shutdown_timeout=2.0)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
    except OSError as exc:
        await runner.cleanup()
        from bot.slack.server import StartError

        raise StartError(
            f"cannot serve metrics on {host}:{port} ({exc.strerror or exc}): choose another METRICS_PORT (0: off)"
        ) from None
    bound = runner.addresses[0][1] if runner.addresses else port
    logger.info("serving /metrics, /healthz and /readyz on http://%s:%s", host, bound)
    return runner
