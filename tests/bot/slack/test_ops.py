"""The operator's window through the real app: `/metrics` after real traffic, `/readyz` flipping when the
database goes away, and a real Prometheus server (Debian's `prometheus`) scraping the bot."""

from __future__ import annotations

import asyncio
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from bot.slack import blocks
from bot.slack.app import deps_of
from storage.errors import StoreUnavailable
from storage.repository import Repository
from tests.bot.slack import payloads
from tests.bot.slack.faults import free_port
from tests.bot.slack.harness import CUSTOMER, BotUnderTest, quiesce
from tests.bot.slack.helpers import ask, press
from tests.bot.slack.standin import SlackStandIn


def _base(bot: BotUnderTest) -> str:
    return bot.url.removesuffix("/slack/events")


async def _get(bot: BotUnderTest, path: str) -> tuple[int, str]:
    async with bot.session.get(_base(bot) + path) as response:
        return response.status, await response.text()


def _sample(text: str, name: str) -> float:
    """The value of one sample line (`name{labels} value`) of the exposition text."""
    [line] = [line for line in text.splitlines() if line.split(" ")[0] == name]
    return float(line.rsplit(" ", 1)[1])


async def test_metrics_count_real_traffic(bot: BotUnderTest, standin: SlackStandIn, store: Repository) -> None:
    asked = await ask(bot, standin, "password?")
    await ask(bot, standin, "invoice?")  # a knowledge-base passage
    await bot.event(payloads.message("something else", channel="DCUSTOMER", user=CUSTOMER))  # a hand-off
    await press(bot, asked, blocks.ACTION_HELPFUL, user=CUSTOMER)
    await standin.wait_for_call("chat.postEphemeral")
    await quiesce()

    status, text = await _get(bot, "/metrics")

    assert status == 200
    assert _sample(text, 'supportbot_questions_total{outcome="answer"}') == 1
    assert _sample(text, 'supportbot_questions_total{outcome="passage"}') == 1
    assert _sample(text, 'supportbot_questions_total{outcome="handoff"}') == 1
    assert _sample(text, 'supportbot_questions_total{outcome="refused"}') == 0
    assert _sample(text, "supportbot_answer_latency_seconds_count") == 3
    assert _sample(text, "supportbot_ack_latency_seconds_count") >= 4
    assert _sample(text, 'supportbot_ratings_total{verdict="helpful"}') == 1
    assert _sample(text, 'supportbot_model_info{version="v-test-1"}') == 1
    assert _sample(text, "supportbot_spool_depth") == 0


async def test_slack_errors_and_retries_are_counted(bot: BotUnderTest, standin: SlackStandIn) -> None:
    standin.fail("chat.postMessage", status=500, times=1)  # retried once, then posted
    await ask(bot, standin, "password?")
    _, text = await _get(bot, "/metrics")
    assert _sample(text, 'supportbot_slack_api_errors_total{method="chat.postMessage"}') == 1
    assert _sample(text, 'supportbot_slack_api_retries_total{reason="server_error"}') == 1


async def test_readyz_flips_when_the_database_goes_away(
    bot: BotUnderTest, store: Repository, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    deps = deps_of(bot.app)
    assert deps is not None
    status, _ = await _get(bot, "/readyz")
    assert status == 503  # Slack is not connected yet: the server sets that
    deps.status.slack_connected = True
    status, body = await _get(bot, "/readyz")
    assert status == 200 and '"store": "database"' in body and '"model": "v-test-1"' in body

    def gone() -> None:
        raise StoreUnavailable("the database is away")

    monkeypatch.setattr(store, "ping", gone)
    status, body = await _get(bot, "/readyz")
    assert status == 200 and '"store": "spool"' in body  # still takes work: the spool keeps it
    (tmp_path / "a-file").write_text("")
    monkeypatch.setattr(deps.intake, "spool_path", tmp_path / "a-file" / "spool.jsonl")  # nowhere to write
    status, body = await _get(bot, "/readyz")
    assert status == 503 and '"store": null' in body
    assert (await _get(bot, "/healthz"))[0] == 200  # alive all along


async def test_readyz_asks_the_socket_mode_connection(bot: BotUnderTest) -> None:
    deps = deps_of(bot.app)
    assert deps is not None
    open_socket = True

    async def is_connected() -> bool:
        return open_socket

    deps.status.slack_connected, deps.status.probe = True, is_connected
    assert (await _get(bot, "/readyz"))[0] == 200
    open_socket = False  # the socket dropped; the SDK is reconnecting
    status, body = await _get(bot, "/readyz")
    assert status == 503 and '"slack": false' in body


@pytest.fixture
def prometheus(tmp_path: Path) -> Iterator[tuple[int, Path]]:
    """A real Prometheus on a free port; the test writes its scrape target into `targets.json`."""
    binary = shutil.which("prometheus")
    if binary is None:
        pytest.skip("needs Debian's prometheus package (CI installs it)")
    port, targets = free_port(), tmp_path / "targets.json"
    targets.write_text("[]")
    config = tmp_path / "prometheus.yml"
    config.write_text(
        "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
        "scrape_configs:\n"
        "  - job_name: supportbot\n"
        "    scrape_interval: 1s\n"
        f"    file_sd_configs: [{{files: ['{targets}'], refresh_interval: 1s}}]\n"
    )
    process = subprocess.Popen(
        [binary, f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
         f"--web.listen-address=127.0.0.1:{port}"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        yield port, targets
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()


async def _query(session: aiohttp.ClientSession, port: int, query: str) -> list[dict[str, Any]]:
    async with session.get(f"http://127.0.0.1:{port}/api/v1/query", params={"query": query}) as response:
        data = await response.json()
    return list(data.get("data", {}).get("result", [])) if data.get("status") == "success" else []


@pytest.mark.slow
async def test_a_real_prometheus_scrapes_the_bot(
    bot: BotUnderTest, standin: SlackStandIn, prometheus: tuple[int, Path]
) -> None:
    port, targets = prometheus
    targets.write_text(f'[{{"targets": ["{_base(bot).removeprefix("http://")}"]}}]')
    await ask(bot, standin, "password?")
    await ask(bot, standin, "password again?")
    found: list[dict[str, Any]] = []
    deadline = time.monotonic() + 60
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < deadline:
            try:
                found = await _query(session, port, 'supportbot_questions_total{outcome="answer"}')
            except aiohttp.ClientError:
                found = []  # Prometheus still starting
            if found and float(found[0]["value"][1]) == 2:
                break
            await asyncio.sleep(0.5)
        assert found and float(found[0]["value"][1]) == 2, found
        [up] = await _query(session, port, 'up{job="supportbot"}')
        assert up["value"][1] == "1"
        latency = await _query(session, port, "supportbot_answer_latency_seconds_count")
        model = await _query(session, port, "supportbot_model_info")
    assert float(latency[0]["value"][1]) == 2 and model[0]["metric"]["version"] == "v-test-1"


async def test_a_metrics_port_already_taken_stops_the_start(bot: BotUnderTest) -> None:
    from bot.slack.ops import serve_ops
    from bot.slack.server import StartError

    deps = deps_of(bot.app)
    assert deps is not None
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        with pytest.raises(StartError, match="METRICS_PORT"):
            await serve_ops(deps, host="127.0.0.1", port=taken.getsockname()[1])
