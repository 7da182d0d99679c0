"""Fixtures for the Slack suite: a clean environment, the Slack stand-in, a real store, the bot under test."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import pytest

from storage.repository import Repository
from tests.bot.slack.fakes import FakeEngine
from tests.bot.slack.harness import BotUnderTest, start_bot
from tests.bot.slack.standin import SlackStandIn

PROXY_VARS = ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY", "all_proxy")


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No SLACK_* settings and no proxies: slack_sdk would send loopback traffic to a proxy."""
    for name in list(os.environ):
        if name.startswith("SLACK_") or name in PROXY_VARS:
            monkeypatch.delenv(name, raising=False)


@pytest.fixture
async def standin() -> AsyncIterator[SlackStandIn]:
    server = await SlackStandIn().start()
    yield server
    await server.close()


@pytest.fixture
def store(sqlite_url: str) -> Iterator[Repository]:
    """The real store on a fresh, migrated SQLite file."""
    repo = Repository(sqlite_url)
    yield repo
    repo.close()


@pytest.fixture
def engine() -> FakeEngine:
    return FakeEngine()


MakeBot = Callable[..., Awaitable[BotUnderTest]]


@pytest.fixture
async def make_bot(standin: SlackStandIn, store: Repository, engine: FakeEngine) -> AsyncIterator[MakeBot]:
    """Start bots (each with its own HTTP endpoint) against the stand-in; all stopped after the test."""
    started: list[BotUnderTest] = []

    async def factory(**options: Any) -> BotUnderTest:
        options.setdefault("repo", store)
        options.setdefault("engine", engine)
        bot = await start_bot(standin=standin, **options)
        started.append(bot)
        return bot

    yield factory
    for bot in started:
        await bot.stop()


@pytest.fixture
async def bot(make_bot: MakeBot) -> BotUnderTest:
    return await make_bot()
