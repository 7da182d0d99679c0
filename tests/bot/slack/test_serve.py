"""`supportbot serve`: refuses to start without tokens, wires the settings through, serves, stops on SIGTERM."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from slack_bolt.async_app import AsyncApp
from typer.testing import CliRunner

from bot.options import ServingOptions
from bot.settings import ConfigError
from bot.slack import build_app, close_app
from bot.slack.app import deps_of
from bot.slack.server import SlackAuthError, StartError, serve_http, serve_until_signalled
from storage.repository import Repository
from tests.bot.slack import payloads
from tests.bot.slack.fakes import FakeEngine
from tests.bot.slack.faults import free_port
from tests.bot.slack.harness import APP_TOKEN, BOT_TOKEN, SECRET
from tests.bot.slack.standin import SlackStandIn

ROOT = Path(__file__).resolve().parents[3]


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLACK_") and "proxy" not in k.lower()}
    env.update(
        PYTHONPATH=str(ROOT),
        SUPPORTBOT_DATA_DIR=str(tmp_path / "data"),
        DATABASE_URL=f"sqlite:///{tmp_path / 'serve.db'}",
        SUPPORT_CHANNEL_IDS="CSUPPORT",
        LOG_LEVEL="WARNING",
        **({"METRICS_PORT": "0"} | extra),
    )
    env.pop("TEST_DATABASE_URL", None)
    return env


async def _run(args: list[str], env: dict[str, str], cwd: Path) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.bot.slack.serveproc",
        *args,
        cwd=cwd,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


@pytest.mark.slow
async def test_serve_socket_mode_answers_and_stops_on_sigterm(tmp_path: Path, standin: SlackStandIn) -> None:
    ops = free_port()
    env = _env(
        tmp_path,
        SLACK_BOT_TOKEN=BOT_TOKEN,
        SLACK_APP_TOKEN=APP_TOKEN,
        SLACK_API_BASE_URL=standin.api_url,
        METRICS_HOST="127.0.0.1",
        METRICS_PORT=str(ops),
    )
    process = await _run(["serve"], env, tmp_path)
    try:
        connected = asyncio.create_task(standin.wait_connected(timeout=90))
        exited = asyncio.create_task(process.wait())
        await asyncio.wait({connected, exited}, return_when=asyncio.FIRST_COMPLETED)
        if exited.done():
            assert process.stderr is not None
            raise AssertionError(f"serve exited early: {(await process.stderr.read()).decode()[-3000:]}")
        exited.cancel()
        await connected
        event = payloads.message("password?", channel="CSUPPORT")
        envelope_id = await standin.send_envelope("events_api", payloads.event_callback(event))
        await standin.wait_for_ack(envelope_id)
        [call] = await standin.wait_for_call("chat.postMessage")
        assert call.params["thread_ts"] == event["ts"]
        async with aiohttp.ClientSession() as session:  # Socket Mode: the operator's endpoints on their own port
            async with session.get(f"http://127.0.0.1:{ops}/readyz") as ready:
                assert ready.status == 200, await ready.text()
            for _ in range(50):  # counted once the answer is stored, just after it is posted
                async with session.get(f"http://127.0.0.1:{ops}/metrics") as metrics:
                    exposition = await metrics.text()
                if 'supportbot_questions_total{outcome="answer"} 1.0' in exposition:
                    break
                await asyncio.sleep(0.1)
            assert 'supportbot_questions_total{outcome="answer"} 1.0' in exposition
        process.send_signal(signal.SIGTERM)  # at once: the drain lets the answer be marked posted
        assert await asyncio.wait_for(process.wait(), timeout=20) == 0
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    repo = Repository(env["DATABASE_URL"], upgrade=False)
    try:
        answer = repo.find_answer_by_slack_ts(channel_id="CSUPPORT", slack_ts=call.response["ts"])
        assert answer is not None and answer.status == "posted"
    finally:
        repo.close()


@pytest.fixture
def cli_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The data directory in tmp_path (the autouse isolation has cleared the rest of the environment)."""
    monkeypatch.setenv("SUPPORTBOT_DATA_DIR", str(tmp_path / "data"))


def test_serve_refuses_to_start_without_tokens(cli_env: None, monkeypatch: pytest.MonkeyPatch) -> None:
    from bot.cli import app

    monkeypatch.setenv("SLACK_BOT_TOKEN", BOT_TOKEN)
    result = CliRunner().invoke(app, ["serve", "--mode", "http"])
    assert isinstance(result.exception, ConfigError) and "SLACK_SIGNING_SECRET" in str(result.exception)
    result = CliRunner().invoke(app, ["serve"])
    assert isinstance(result.exception, ConfigError) and "SLACK_APP_TOKEN" in str(result.exception)


def test_serve_wires_settings_into_the_app(cli_env: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from bot.cli import app

    for name, value in {
        "SLACK_BOT_TOKEN": BOT_TOKEN,
        "SLACK_SIGNING_SECRET": SECRET,
        "SLACK_API_BASE_URL": "http://127.0.0.1:9/api",
        "AGENT_USER_IDS": "UA1,UA2",
        "SUPPORT_CHANNEL_IDS": "C1",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'wired.db'}",
    }.items():
        monkeypatch.setenv(name, value)
    engines: list[FakeEngine] = []
    monkeypatch.setattr("bot.runtime.build_engine", lambda *a, **kw: engines.append(FakeEngine()) or engines[-1])
    seen: dict[str, Any] = {}

    async def fake_serve(make_app: Callable[[], AsyncApp], **kwargs: Any) -> None:
        seen.update(kwargs, app=make_app())
        await close_app(seen["app"])
        kwargs["on_stop"]()

    monkeypatch.setattr("bot.slack.server.serve_until_signalled", fake_serve)
    result = CliRunner().invoke(app, ["serve", "--mode", "http", "--port", "8123", "--host", "127.0.0.1"])
    assert result.exit_code == 0, result.output
    assert (seen["mode"], seen["port"], seen["host"], seen["app_token"]) == ("http", 8123, "127.0.0.1", None)
    bolt_app: AsyncApp = seen["app"]
    assert bolt_app.client.base_url == "http://127.0.0.1:9/api/" and bolt_app.client.token == BOT_TOKEN
    assert len(bolt_app.client.retry_handlers) == 4  # connection errors (default), the error counter, 429, 5xx


def test_serve_wires_the_oauth_install_flow(cli_env: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from bot.cli import app

    for name, value in {
        "SLACK_MODE": "http",
        "SLACK_SIGNING_SECRET": SECRET,
        "SLACK_CLIENT_ID": "1111.2222",
        "SLACK_CLIENT_SECRET": "client-s3cret",
        "SLACK_HOME_TEAM_ID": "THOME",
        "SLACK_AUTHORIZE_URL": "http://127.0.0.1:9/oauth/v2/authorize",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'oauth.db'}",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr("bot.runtime.build_engine", lambda *a, **kw: FakeEngine())
    seen: dict[str, Any] = {}

    async def fake_serve(make_app: Callable[[], AsyncApp], **kwargs: Any) -> None:
        seen.update(kwargs, app=make_app())
        seen["installs"] = deps_of(seen["app"]).installs  # type: ignore[union-attr]
        await close_app(seen["app"])
        kwargs["on_stop"]()

    monkeypatch.setattr("bot.slack.server.serve_until_signalled", fake_serve)
    result = CliRunner().invoke(app, ["serve"])
    assert result.exit_code == 0, result.output
    bolt_app: AsyncApp = seen["app"]
    flow = bolt_app.oauth_flow
    assert bolt_app.client.token is None and flow is not None and seen["installs"] is not None
    assert (flow.settings.client_id, flow.install_path, flow.redirect_uri_path) == (
        "1111.2222",
        "/slack/install",
        "/slack/oauth_redirect",
    )
    assert flow.settings.authorize_url_generator.authorization_url == "http://127.0.0.1:9/oauth/v2/authorize"


def _app_for(standin: SlackStandIn, store: Repository) -> Callable[[], AsyncApp]:
    options = ServingOptions.defaults(
        bot_token=BOT_TOKEN, signing_secret=SECRET, api_base_url=standin.api_url, max_retries=0
    )
    return lambda: build_app(engine=FakeEngine(), repo=store, options=options)


async def test_refused_tokens_stop_the_start(standin: SlackStandIn, store: Repository) -> None:
    standin.fail("auth.test", status=200, error="invalid_auth")
    with pytest.raises(SlackAuthError, match="SLACK_BOT_TOKEN"):
        await serve_until_signalled(_app_for(standin, store), mode="http", host="127.0.0.1", port=0)
    standin.fail("apps.connections.open", status=200, error="invalid_auth")
    with pytest.raises(SlackAuthError, match="SLACK_APP_TOKEN"):
        await serve_until_signalled(_app_for(standin, store), mode="socket", app_token=APP_TOKEN)


async def test_slack_outage_at_start_only_warns_and_sigterm_stops(standin: SlackStandIn, store: Repository) -> None:
    standin.fail("auth.test", status=503)
    stopped: list[bool] = []
    loop = asyncio.get_running_loop()

    def ready(port: int) -> None:
        loop.call_soon(os.kill, os.getpid(), signal.SIGTERM)

    await asyncio.wait_for(
        serve_until_signalled(
            _app_for(standin, store),
            mode="http",
            host="127.0.0.1",
            port=0,
            on_ready=ready,
            on_stop=lambda: stopped.append(True),
        ),
        timeout=10,
    )
    assert stopped == [True]


async def test_http_mode_keeps_metrics_and_readiness_off_the_public_port(
    standin: SlackStandIn, store: Repository
) -> None:
    ops = free_port()
    seen: dict[str, tuple[int, int, int]] = {}
    loop = asyncio.get_running_loop()

    async def probe(port: int) -> None:
        async with aiohttp.ClientSession() as session:
            statuses = []
            for url in (f"http://127.0.0.1:{port}/metrics", f"http://127.0.0.1:{ops}/metrics",
                        f"http://127.0.0.1:{ops}/readyz"):  # fmt: skip
                async with session.get(url) as response:
                    statuses.append(response.status)
            seen["statuses"] = (statuses[0], statuses[1], statuses[2])
        os.kill(os.getpid(), signal.SIGTERM)

    def ready(port: int) -> None:
        loop.create_task(probe(port))

    await asyncio.wait_for(
        serve_until_signalled(
            _app_for(standin, store), mode="http", host="127.0.0.1", port=0, on_ready=ready,
            metrics_host="127.0.0.1", metrics_port=ops,
        ),
        timeout=15,
    )  # fmt: skip
    assert seen["statuses"] == (404, 200, 200)  # the public port: events and /healthz only


async def test_sigterm_stops_a_socket_mode_bot_that_cannot_connect(standin: SlackStandIn, store: Repository) -> None:
    standin.fail("apps.connections.open", status=503, times=None)
    asyncio.get_running_loop().call_later(0.5, os.kill, os.getpid(), signal.SIGTERM)
    await asyncio.wait_for(
        serve_until_signalled(_app_for(standin, store), mode="socket", app_token=APP_TOKEN), timeout=10
    )
    assert len(standin.calls_to("apps.connections.open", ok_only=False)) >= 2  # the check, then the SDK's try


async def test_a_port_in_use_is_one_clear_error() -> None:
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen()
    busy = holder.getsockname()[1]
    app = AsyncApp(token=BOT_TOKEN, signing_secret="s")
    try:
        with pytest.raises(StartError, match=rf"cannot listen on 127.0.0.1:{busy} .*HTTP_PORT / --port"):
            await serve_http(app, host="127.0.0.1", port=busy, stop=asyncio.Event())
    finally:
        holder.close()


@pytest.mark.slow
async def test_slack_unreachable_is_one_line_per_retry_without_tracebacks(tmp_path: Path) -> None:
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    nobody = closed.getsockname()[1]
    closed.close()  # nothing listens there
    env = _env(
        tmp_path,
        SLACK_BOT_TOKEN=BOT_TOKEN,
        SLACK_APP_TOKEN=APP_TOKEN,
        SLACK_API_BASE_URL=f"http://127.0.0.1:{nobody}/api/",
    )
    env["LOG_LEVEL"] = "INFO"
    process = await _run(["serve"], env, tmp_path)
    assert process.stderr is not None
    lines: list[str] = []
    try:
        async with asyncio.timeout(60):
            while not any("Retrying" in line for line in lines):
                line = (await process.stderr.readline()).decode()
                assert line, f"serve exited: {''.join(lines)[-2000:]}"
                lines.append(line)
        process.send_signal(signal.SIGTERM)
        _, rest = await asyncio.wait_for(process.communicate(), timeout=20)
        lines += rest.decode().splitlines()
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert process.returncode == 0
    assert not any("Traceback" in line for line in lines), "".join(lines)
    assert any("cannot reach Slack to check the bot token" in line for line in lines)
