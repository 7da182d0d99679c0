"""Never twice: Slack's retries, and two bot processes sharing one database, give exactly one answer."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from storage.repository import Repository
from tests.bot.slack import payloads
from tests.bot.slack.conftest import MakeBot
from tests.bot.slack.harness import SECRET, BotUnderTest
from tests.bot.slack.standin import TEAM_ID, SlackStandIn

ROOT = Path(__file__).resolve().parents[3]


async def test_retried_event_is_answered_once(bot: BotUnderTest, standin: SlackStandIn, store: Repository) -> None:
    event = payloads.message("password?")
    event_id = payloads.new_event_id()
    replies = await asyncio.gather(*(bot.event(event, event_id=event_id, retry_num=n) for n in (None, 1, 2)))
    assert [r.status for r in replies] == [200, 200, 200]
    await bot.event(event, event_id=event_id, retry_num=3)  # a late retry, after the answer
    await standin.wait_for_call("chat.postMessage")
    await bot.handled("on_message", n=4)  # every delivery handled: a second answer would be posted by now
    assert len(standin.calls_to("chat.postMessage")) == 1
    conversation = store.find_conversation(team_id=TEAM_ID, channel_id="DCUSTOMER", thread_ts=event["ts"])
    assert conversation is not None
    assert [m.role for m in store.messages(conversation.id)] == ["user", "bot"]  # type: ignore[arg-type]


async def test_retry_whose_first_delivery_never_arrived_is_answered(bot: BotUnderTest, standin: SlackStandIn) -> None:
    await bot.event(payloads.message("password?"), retry_num=1)
    await standin.wait_for_call("chat.postMessage")


@asynccontextmanager
async def bot_process(
    db_url: str, standin: SlackStandIn, *, delay_s: float = 0.0
) -> AsyncIterator[tuple[str, asyncio.subprocess.Process]]:
    """A second bot in its own process; yields (events URL, process)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLACK_") and "proxy" not in k.lower()}
    env.update(
        BOTPROC_DB_URL=db_url,
        BOTPROC_API_URL=standin.api_url,
        BOTPROC_SECRET=SECRET,
        BOTPROC_ENGINE_DELAY_S=str(delay_s),
        PYTHONPATH=str(ROOT),
    )
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests.bot.slack.botproc", cwd=ROOT, env=env, stdout=asyncio.subprocess.PIPE
    )
    try:
        assert process.stdout is not None
        line = (await asyncio.wait_for(process.stdout.readline(), timeout=30)).decode()
        assert line.startswith("READY "), line
        yield f"http://127.0.0.1:{int(line.split()[1])}/slack/events", process
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


@pytest.mark.postgres
@pytest.mark.slow
async def test_two_processes_sharing_postgresql_answer_once(
    pg_url: str, standin: SlackStandIn, make_bot: MakeBot
) -> None:
    repo = Repository(pg_url)  # migrates the fresh database
    try:
        local = await make_bot(repo=repo)
        async with bot_process(pg_url, standin) as (url, process):
            remote = BotUnderTest(app=local.app, repo=repo, url=url)  # a client for the other process
            questions: list[str] = []
            try:
                for _ in range(3):
                    event = payloads.message("password?")
                    event_id = payloads.new_event_id()
                    questions.append(event["ts"])
                    await asyncio.gather(local.event(event, event_id=event_id), remote.event(event, event_id=event_id))
                await standin.wait_for_call("chat.postMessage", n=3)
                await local.handled("on_message", n=3)
                # both processes work on their own
                invoice = payloads.message("invoice?")
                questions.append(invoice["ts"])
                await remote.event(invoice)
                await standin.wait_for_call("chat.postMessage", n=4)
            finally:
                if remote._session is not None:
                    await remote._session.close()
            process.send_signal(signal.SIGTERM)
            assert await asyncio.wait_for(process.wait(), timeout=15) == 0  # drained: the other bot is done too
        threads = [c.params["thread_ts"] for c in standin.calls_to("chat.postMessage")]
        assert sorted(threads) == sorted(questions)  # each question answered, none a second time
    finally:
        repo.close()


@pytest.mark.slow
async def test_sigterm_finishes_the_answer_in_flight(sqlite_url: str, standin: SlackStandIn) -> None:
    repo = Repository(sqlite_url)
    try:
        async with bot_process(sqlite_url, standin, delay_s=0.8) as (url, process):
            client = BotUnderTest(app=None, repo=repo, url=url)  # type: ignore[arg-type]
            await client.event(payloads.message("password?"))
            await client.session.close()
            process.send_signal(signal.SIGTERM)
            assert await asyncio.wait_for(process.wait(), timeout=15) == 0
            assert process.stdout is not None
            assert (await process.stdout.read()).decode().strip().endswith("STOPPED")
        [call] = standin.calls_to("chat.postMessage")
        answer = repo.find_answer_by_slack_ts(channel_id="DCUSTOMER", slack_ts=call.response["ts"])
        assert answer is not None and answer.status == "posted"
    finally:
        repo.close()
