"""The bot under test: the real `build_app` served over HTTP on 127.0.0.1, and a client that signs like Slack."""

from __future__ import annotations

import time
import weakref
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import web
from slack_bolt.async_app import AsyncApp

from bot.answer import EngineLike
from bot.options import ServingOptions
from bot.slack import build_app, close_app
from bot.slack.inflight import InFlight, in_flight
from bot.slack.server import make_web_app
from storage.repository import Repository
from tests.bot.slack import payloads
from tests.bot.slack.standin import SlackStandIn, form_body, json_body, signed_headers

SECRET = "standin-signing-secret"
BOT_TOKEN = "xoxb-standin-token"
APP_TOKEN = "xapp-standin-token"
AGENT = "UAGENT"
CUSTOMER = "UCUSTOMER"
AGENT_CHANNEL = "CAGENTS"
SUPPORT_CHANNEL = "CSUPPORT"
INTERACTIVE_TYPES = frozenset({"block_actions", "view_submission", "view_closed", "shortcut", "message_action"})


_WATCHED: weakref.WeakSet[InFlight] = weakref.WeakSet()


def watch(app: AsyncApp) -> AsyncApp:
    """Let `quiesce` wait for this app's listener runs (bots from `start_bot` are watched already)."""
    flight = in_flight(app)
    assert flight is not None, "not an app from build_app"
    _WATCHED.add(flight)
    return app


async def quiesce(timeout: float = 5.0) -> None:
    """Wait until every watched bot finished handling what it was sent (so "nothing else happened" can be
    asserted: every later post would come from a listener run, and none is left)."""
    deadline = time.monotonic() + timeout
    for flight in list(_WATCHED):
        if not await flight.wait_idle(max(0.0, deadline - time.monotonic())):
            raise AssertionError(f"{flight.running} listener run(s) still in progress after {timeout}s")


@dataclass
class Reply:
    """The bot's HTTP answer to one delivery."""

    status: int
    text: str
    elapsed_ms: float


@dataclass
class BotUnderTest:
    """A running bot: its Bolt app, its HTTP endpoint, and a Slack-like client for it."""

    app: AsyncApp
    repo: Repository
    url: str
    secret: str = SECRET
    _runner: web.AppRunner | None = None
    _session: aiohttp.ClientSession | None = None
    sent: list[dict[str, Any]] = field(default_factory=list)

    @property
    def inflight(self) -> InFlight:
        """The bot's count of listener runs: `finished` by listener, `wait_for(...)`, `wait_idle()`."""
        flight = in_flight(self.app)
        assert flight is not None
        return flight

    async def handled(self, listener: str, n: int = 1, timeout: float = 5.0) -> None:
        """Wait until `listener` (e.g. `on_message`) finished `n` runs in all, and nothing else is running."""
        done = await self.inflight.wait_for(lambda f: f.finished[listener] >= n and f.running == 0, timeout)
        assert done, f"{listener}: {self.inflight.finished[listener]} run(s) finished after {timeout}s, wanted {n}"

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession()
        return self._session

    async def post_raw(self, body: str, headers: dict[str, str]) -> Reply:
        started = time.perf_counter()
        async with self.session.post(self.url, data=body.encode(), headers=headers) as response:
            text = await response.text()
            return Reply(response.status, text, (time.perf_counter() - started) * 1000)

    async def send(
        self,
        payload: dict[str, Any],
        *,
        retry_num: int | None = None,
        timestamp: float | None = None,
        secret: str | None = None,
    ) -> Reply:
        """Deliver `payload` the way Slack does (JSON for events, form for interactivity), signed."""
        interactive = payload.get("type") in INTERACTIVE_TYPES
        body, content_type = form_body(payload) if interactive else json_body(payload)
        headers = signed_headers(
            secret or self.secret, body, content_type=content_type, timestamp=timestamp, retry_num=retry_num
        )
        self.sent.append(payload)
        return await self.post_raw(body, headers)

    async def event(self, event: dict[str, Any], *, event_id: str | None = None, retry_num: int | None = None) -> Reply:
        """Deliver one Events API event; asserts it was acknowledged."""
        reply = await self.send(payloads.event_callback(event, event_id=event_id), retry_num=retry_num)
        assert reply.status == 200, (reply.status, reply.text)
        return reply

    async def stop(self) -> None:
        if self.app is not None:
            assert await self.inflight.wait_idle(10.0), f"{self.inflight.running} listener run(s) still in progress"
            await close_app(self.app)
        if self._session is not None:
            await self._session.close()
        if self._runner is not None:
            await self._runner.cleanup()


async def start_bot(
    *,
    standin: SlackStandIn,
    engine: EngineLike,
    repo: Repository,
    agent_user_ids: Iterable[str] = (AGENT,),
    support_channel_ids: Iterable[str] = (SUPPORT_CHANNEL,),
    agent_channel_id: str | None = AGENT_CHANNEL,
    **options: Any,
) -> BotUnderTest:
    """Build the real app against the stand-in and serve it on an ephemeral port."""
    app = build_app(
        engine=engine,
        repo=repo,
        options=ServingOptions.defaults(
            signing_secret=SECRET,
            api_base_url=standin.api_url,
            agent_channel_id=agent_channel_id,
            agent_user_ids=agent_user_ids,
            support_channel_ids=support_channel_ids,
            **{"bot_token": BOT_TOKEN, "max_retries": 2, "max_question_chars": 200, **options},
        ),
    )
    runner = web.AppRunner(make_web_app(app), access_log=None, shutdown_timeout=0.5)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    watch(app)
    return BotUnderTest(app=app, repo=repo, url=f"http://127.0.0.1:{port}/slack/events", _runner=runner)


CLIENT_ID = "1111.2222"
CLIENT_SECRET = "standin-client-secret"


async def start_oauth_bot(*, standin: SlackStandIn, home_team_id: str, **options: Any) -> BotUnderTest:
    """`start_bot` installed through the OAuth flow: no bot token, the stand-in's authorize page and workspaces."""
    return await start_bot(
        standin=standin,
        bot_token=None,
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
        authorize_url=f"{standin.base_url}/oauth/v2/authorize",
        home_team_id=home_team_id,
        **options,
    )
