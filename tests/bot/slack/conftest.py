"""Fixtures for the Slack suite: the Slack stand-in, a real store, the bot under test (the environment is cleared
for every test by the autouse isolation in tests/conftest.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import pytest

from storage.repository import Repository
from tests.bot.slack.fakes import FakeEngine
from tests.bot.slack.harness import BotUnderTest, start_bot
from tests.bot.slack.standin import SlackStandIn


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
