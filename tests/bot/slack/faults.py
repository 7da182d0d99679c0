"""Black-box fault harness: the real `supportbot serve` in subprocesses, killed, restarted, its database stopped.

Shared by `tests/bot/slack/test_faults.py` and `bench/bench_faults.py`; everything runs in the caller's event
loop next to a `SlackStandIn`. The pieces:

* `ServeProcess` / `start_serve`: `supportbot serve` (the real CLI, the keyword FakeEngine patched in as
  `tests.bot.slack.serveproc` does; `FAKE_ENGINE_DELAY_S` keeps answers in flight) in HTTP mode on a free port
  or in Socket Mode against the stand-in; `kill()` is `kill -9`, `stop()` is SIGTERM. `bot_root` runs the bot
  from another tree (a baseline `git worktree`); this module always comes from the current tree.
* `Deliverer`: delivers Slack payloads as Slack does (signed HTTP POSTs to one replica of several, in turn, or
  Socket Mode envelopes through the stand-in) and records every delivery: acknowledged (HTTP 200 within 3 s /
  the ack frame within 3 s) or not, how long the ack took, whether the database was down meanwhile.
  `redeliver()` re-sends everything never acknowledged, with the same `event_id` and `X-Slack-Retry-Num: n` /
  `retry_attempt=n`, as Slack does after a failed delivery.
* `seed_answers`, `burst`: answers posted before the burst (for the button clicks and reactions to land on),
  then a burst of N DM questions (each in its own DM), M button clicks and K thumbs-up reactions, interleaved.
* `read_ledger` -> `Ledger`: what was sent, acknowledged, stored, answered (threads with one bot post, and
  threads with more = duplicates), ratings acknowledged vs stored, answer rows not marked posted although their
  reply is in Slack, and the turns answered in Slack but missing from the database. `problems()` lists, event by
  event, what breaks the issue's guarantees.
* `PgCluster`: a PostgreSQL server of its own (`initdb` / `pg_ctl` on a temp directory, trust auth, 127.0.0.1 on a
  free port; as root through `runuser -u postgres`), started, stopped and started again; the shared server on
  5432 is never touched. `PgCluster.unavailable()` says why one cannot be made here.
* `run_kill_scenario`, `run_db_outage`: the issue's two fault runs end to end, returning a `ScenarioResult`.

`FAULTS_BOT_ROOT=<tree>` runs the bot from another checkout (e.g. a `git worktree` of a commit) by default.

Settings passed to the bot (older code ignores them): `RECOVERY_INTERVAL_S`, `RECOVERY_LEASE_S`,
`RECOVERY_MAX_AGE_S`, see `RECOVERY_ENV`.
"""

from __future__ import annotations

import asyncio
import contextlib
import glob
import itertools
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import aiohttp
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

from tests.bot.slack import payloads
from tests.bot.slack.fakes import BILLING_ANSWER, CLARIFY_TEXT, HANDOFF_TEXT, INVOICE_PASSAGE, PASSWORD_ANSWER
from tests.bot.slack.standin import SlackStandIn, form_body, json_body, signed_headers

ROOT = Path(__file__).resolve().parents[3]
BOT_ROOT = Path(os.environ.get("FAULTS_BOT_ROOT") or ROOT)  # the tree the bot runs from (default: this one)
SECRET = "faults-signing-secret"
BOT_TOKEN = "xoxb-faults-token"
APP_TOKEN = "xapp-faults-token"
AGENT_CHANNEL = "CFAGENTS"
ACK_TIMEOUT_S = 3.0  # Slack's: no 200 / ack frame within 3 s is a failed delivery
RECOVERY_ENV = {"RECOVERY_INTERVAL_S": "1", "RECOVERY_LEASE_S": "3", "RECOVERY_MAX_AGE_S": "900"}
ENGINE_TEXTS = (PASSWORD_ANSWER, INVOICE_PASSAGE, HANDOFF_TEXT, CLARIFY_TEXT, BILLING_ANSWER)
Mode = Literal["http", "socket"]
Kind = Literal["question", "click", "reaction"]

# The launcher `tests.bot.slack.serveproc` is today; used for a tree whose serveproc does not read the delay.
_LAUNCHER = """
import os, sys
import bot.runtime
print("supportbot from", bot.runtime.__file__, file=sys.stderr, flush=True)
from bot.cli import main
from tests.bot.slack.fakes import FakeEngine
delay = float(os.environ.get("FAKE_ENGINE_DELAY_S", "0"))
bot.runtime.build_engine = lambda *a, **k: FakeEngine(delay_s=delay)
sys.argv = ["supportbot", *sys.argv[1:]]
main()
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def percentile(values: Sequence[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))]


# --- the bot under test ------------------------------------------------------------------------------------
def bot_env(
    *,
    standin: SlackStandIn,
    mode: Mode,
    db_url: str,
    data_dir: Path,
    bot_root: Path,
    port: int | None,
    delay_s: float,
    extra: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The bot's environment: nothing Slack, proxy or test-database from ours, then its own settings."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.upper().startswith(("SLACK_", "SUPPORTBOT_")) and "proxy" not in k.lower()
    }
    for name in ("TEST_DATABASE_URL", "DATABASE_URL", "HTTP_PORT", "HTTP_HOST", "LOG_LEVEL"):
        env.pop(name, None)
    env.update(
        PYTHONPATH=str(bot_root),
        SUPPORTBOT_DATA_DIR=str(data_dir),
        DATABASE_URL=db_url,
        SLACK_BOT_TOKEN=BOT_TOKEN,
        SLACK_API_BASE_URL=standin.api_url,
        SLACK_MODE=mode,
        SUPPORT_CHANNEL_IDS="CFSUPPORT",
        AGENT_CHANNEL_ID=AGENT_CHANNEL,
        AGENT_USER_IDS="UFAGENT",
        LOG_LEVEL="WARNING",
        FAKE_ENGINE_DELAY_S=str(delay_s),
        OMP_WAIT_POLICY="PASSIVE",
        METRICS_PORT="0",  # several bots at once: no shared metrics port
        **RECOVERY_ENV,
    )
    if mode == "http":
        env.update(SLACK_SIGNING_SECRET=SECRET, HTTP_HOST="127.0.0.1", HTTP_PORT=str(port))
    else:
        env.update(SLACK_APP_TOKEN=APP_TOKEN)
    env.update(extra or {})
    return env


def _launch_command(bot_root: Path) -> list[str]:
    serveproc = bot_root / "tests" / "bot" / "slack" / "serveproc.py"
    if serveproc.exists() and "FAKE_ENGINE_DELAY_S" in serveproc.read_text(encoding="utf-8"):
        return [sys.executable, "-m", "tests.bot.slack.serveproc", "serve"]
    return [sys.executable, "-c", _LAUNCHER, "serve"]


def migrate(db_url: str, bot_root: Path = ROOT) -> None:
    """Migrate the database with the bot tree's own migrations (before replicas start, so they do not race)."""
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    env["PYTHONPATH"] = str(bot_root)
    code = "import sys; from storage.db import upgrade; upgrade(sys.argv[1])"
    subprocess.run([sys.executable, "-c", code, db_url], cwd=bot_root, env=env, check=True, timeout=120)


@dataclass
class ServeProcess:
    """One `supportbot serve` replica."""

    name: str
    mode: Mode
    standin: SlackStandIn
    db_url: str
    data_dir: Path
    log_path: Path
    bot_root: Path = BOT_ROOT
    delay_s: float = 0.2
    extra_env: dict[str, str] = field(default_factory=dict)
    port: int | None = None
    process: asyncio.subprocess.Process | None = None
    starts: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/slack/events"

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.returncode is None

    async def start(self, timeout: float = 90.0) -> float:
        """Start (or restart: same data dir, same database) and wait until it serves; returns the seconds taken."""
        self.port = free_port() if self.mode == "http" else None
        env = bot_env(
            standin=self.standin,
            mode=self.mode,
            db_url=self.db_url,
            data_dir=self.data_dir,
            bot_root=self.bot_root,
            port=self.port,
            delay_s=self.delay_s,
            extra=self.extra_env,
        )
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self.starts += 1
        with self.log_path.open("a", encoding="utf-8") as log:
            log.write(f"\n===== start {self.starts} of {self.name} ({self.mode}, root {self.bot_root}) =====\n")
        log_file = self.log_path.open("ab")
        connected_before = len(self.standin.calls_to("ws:connect"))
        started = time.monotonic()
        try:
            self.process = await asyncio.create_subprocess_exec(
                *_launch_command(self.bot_root), cwd=self.bot_root, env=env, stdout=log_file, stderr=log_file
            )
        finally:
            log_file.close()
        deadline = started + timeout
        async with aiohttp.ClientSession() as session:
            while True:
                if self.process.returncode is not None:
                    raise RuntimeError(f"{self.name} exited ({self.process.returncode}) on start:\n{self.log_tail()}")
                if time.monotonic() > deadline:
                    await self.kill()
                    raise RuntimeError(f"{self.name} did not start within {timeout:.0f}s:\n{self.log_tail()}")
                if self.mode == "http":
                    with contextlib.suppress(aiohttp.ClientError, TimeoutError):
                        health = f"http://127.0.0.1:{self.port}/healthz"
                        async with session.get(health, timeout=aiohttp.ClientTimeout(total=1)) as response:
                            if response.status == 200:
                                break
                elif len(self.standin.calls_to("ws:connect")) > connected_before and self.standin._sockets:
                    break
                await asyncio.sleep(0.05)
        return time.monotonic() - started

    async def kill(self) -> None:
        """`kill -9`: no drain, no clean-up, whatever was in flight is cut."""
        if self.alive:
            assert self.process is not None
            self.process.kill()
            await self.process.wait()

    async def stop(self, timeout: float = 30.0) -> int | None:
        """SIGTERM (the bot drains), then kill -9 after `timeout`; returns the exit status."""
        if not self.alive:
            return None if self.process is None else self.process.returncode
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        try:
            return await asyncio.wait_for(self.process.wait(), timeout)
        except TimeoutError:
            await self.kill()
            return self.process.returncode

    def log_tail(self, chars: int = 3000) -> str:
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")[-chars:]
        except OSError:
            return "(no log)"


# --- delivering events as Slack does ------------------------------------------------------------------------
@dataclass
class Delivery:
    """One attempt to deliver an event."""

    attempt: int  # 0: first delivery; n: the n-th retry (X-Slack-Retry-Num / retry_attempt)
    target: str  # the replica posted to (HTTP) or "socket"
    sent_at: float  # time.monotonic()
    acked: bool = False
    ack_s: float | None = None
    error: str | None = None
    db_down: bool = False  # the database was down when this delivery was sent


@dataclass
class Sent:
    """One event the load driver sent (a question, a button click or a reaction), with all its deliveries."""

    key: str  # event_id (questions, reactions); for clicks the trigger_id
    kind: Kind
    body: dict[str, Any]  # the Events API body or the block_actions payload
    channel: str  # the question's DM (questions) or the rated answer's channel (ratings)
    thread_ts: str  # the question's ts: its thread
    answer_id: int | None = None  # ratings: the answer rated
    rater: str | None = None
    index: int = 0  # position in the burst
    deliveries: list[Delivery] = field(default_factory=list)

    @property
    def acked(self) -> bool:
        return any(d.acked for d in self.deliveries)

    @property
    def rating_source(self) -> str:
        return "button" if self.kind == "click" else "reaction"


class Deliverer:
    """Delivers payloads to the bot (HTTP: signed POSTs to the live replicas' ports in turn, dead ones included,
    as a load balancer without health checks would; Socket Mode: envelopes on the stand-in's newest connection)."""

    def __init__(self, standin: SlackStandIn, mode: Mode, replicas: Sequence[ServeProcess]) -> None:
        self.standin = standin
        self.mode = mode
        self.replicas = list(replicas)
        self.sent: list[Sent] = []
        self.db_down = False  # set by the outage scenario
        self._turn = itertools.count()
        self._session: aiohttp.ClientSession | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def __aenter__(self) -> Deliverer:
        self._session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0, force_close=True))
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.wait_all()
        if self._session is not None:
            await self._session.close()

    def pick(self, only_alive: bool = False) -> ServeProcess:
        pool = [r for r in self.replicas if r.alive] if only_alive else self.replicas
        pool = pool or self.replicas
        return pool[next(self._turn) % len(pool)]

    def record(self, sent: Sent) -> Sent:
        sent.index = len(self.sent)
        self.sent.append(sent)
        return sent

    def send(self, sent: Sent, *, attempt: int = 0, only_alive: bool = False) -> asyncio.Task[None]:
        """Deliver in the background (open loop); the task ends when acked or failed."""
        task = asyncio.create_task(self.deliver(sent, attempt=attempt, only_alive=only_alive))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def wait_all(self) -> None:
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def deliver(self, sent: Sent, *, attempt: int = 0, only_alive: bool = False) -> Delivery:
        if self.mode == "http":
            target = self.pick(only_alive)
            delivery = Delivery(attempt, target.name, time.monotonic(), db_down=self.db_down)
            sent.deliveries.append(delivery)
            await self._post(target, sent, delivery)
        else:
            delivery = Delivery(attempt, "socket", time.monotonic(), db_down=self.db_down)
            sent.deliveries.append(delivery)
            await self._envelope(sent, delivery)
        return delivery

    async def _post(self, target: ServeProcess, sent: Sent, delivery: Delivery) -> None:
        assert self._session is not None
        body, content_type = form_body(sent.body) if sent.kind == "click" else json_body(sent.body)
        headers = signed_headers(
            SECRET, body, content_type=content_type, retry_num=delivery.attempt if delivery.attempt else None
        )
        try:
            timeout = aiohttp.ClientTimeout(total=ACK_TIMEOUT_S)
            async with self._session.post(target.url, data=body.encode(), headers=headers, timeout=timeout) as resp:
                await resp.read()
                status = resp.status
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            delivery.error = type(exc).__name__
            return
        if status == 200:
            delivery.acked = True
            delivery.ack_s = time.monotonic() - delivery.sent_at
        else:
            delivery.error = f"HTTP {status}"

    async def _envelope(self, sent: Sent, delivery: Delivery) -> None:
        kind = "interactive" if sent.kind == "click" else "events_api"
        try:
            envelope_id = await self.standin.send_envelope(
                kind,
                sent.body,
                retry_attempt=delivery.attempt or None,
                accepts_response_payload=sent.kind == "click",
            )
        except Exception as exc:  # noqa: BLE001 - no connection, a closing one: not delivered
            delivery.error = type(exc).__name__
            return
        try:
            ack = await self.standin.wait_for_ack(envelope_id, timeout=ACK_TIMEOUT_S)
        except AssertionError:
            delivery.error = "no ack"
            return
        delivery.acked = True
        delivery.ack_s = ack.at - delivery.sent_at

    async def redeliver(self, *, rounds: int = 3, pause_s: float = 0.5) -> int:
        """Re-send every event never acknowledged (Slack's retries 1..`rounds`), to live replicas only; returns
        how many deliveries were made."""
        made = 0
        for attempt in range(1, rounds + 1):
            pending = [s for s in self.sent if not s.acked]
            if not pending:
                break
            if attempt > 1:
                await asyncio.sleep(pause_s)
            await asyncio.gather(*(self.deliver(s, attempt=attempt, only_alive=True) for s in pending))
            made += len(pending)
        return made


# --- load --------------------------------------------------------------------------------------------------
def question(tag: str, i: int) -> Sent:
    channel = f"D{tag}{i:04d}"
    event = payloads.message(f"How do I reset my password? ({tag} #{i})", user=f"U{tag}{i:04d}", channel=channel)
    body = payloads.event_callback(event)
    return Sent(body["event_id"], "question", body, channel, event["ts"])


@dataclass
class Posted:
    """A bot post in a question's thread, as the stand-in recorded it."""

    channel: str
    thread_ts: str
    ts: str
    text: str  # the fallback text and every block's text
    answer_id: int | None  # from its buttons' value or its metadata

    @property
    def is_answer(self) -> bool:
        """The engine's answer (not a refusal, an apology or a hint): it carries one of the FakeEngine's texts."""
        return any(t[:60] in self.text for t in ENGINE_TEXTS)


def _texts(value: Any) -> Iterable[str]:
    """Every `text` string in a block tree."""
    if isinstance(value, dict):
        for key, item in value.items():
            if key == "text" and isinstance(item, str):
                yield item
            else:
                yield from _texts(item)
    elif isinstance(value, list):
        for item in value:
            yield from _texts(item)


def answer_id_in(params: Mapping[str, Any]) -> int | None:
    metadata = params.get("metadata")
    if isinstance(metadata, dict):
        value = (metadata.get("event_payload") or {}).get("answer_id")
        if isinstance(value, int) or (isinstance(value, str) and value.isdigit()):
            return int(value)
    for block in params.get("blocks") or []:
        if isinstance(block, dict) and block.get("type") == "actions":
            for element in block.get("elements", []):
                value = str(element.get("value", ""))
                if value.isdigit():
                    return int(value)
    return None


def bot_posts(standin: SlackStandIn) -> dict[tuple[str, str], list[Posted]]:
    """(channel, thread ts) -> the bot's posts there, in order."""
    posts: dict[tuple[str, str], list[Posted]] = defaultdict(list)
    for call in standin.calls_to("chat.postMessage"):
        ts = str(call.response.get("ts"))
        channel = str(call.params.get("channel"))
        thread = str(call.params.get("thread_ts") or ts)
        words = "\n".join([str(call.params.get("text") or ""), *_texts(call.params.get("blocks") or [])])
        posts[(channel, thread)].append(Posted(channel, thread, ts, words, answer_id_in(call.params)))
    return posts


@dataclass
class Seed:
    """An answer posted (and stored as posted) before the burst, for a click or a reaction to land on."""

    channel: str
    thread_ts: str
    user: str
    answer_id: int
    ts: str


async def seed_answers(deliverer: Deliverer, db_url: str, n: int, *, timeout: float = 60.0) -> list[Seed]:
    """Ask `n` questions (not part of the ledger), wait until each is answered and marked posted."""
    asked = [question("S", i) for i in range(n)]
    for sent in asked:
        await deliverer.deliver(sent)
    deadline = time.monotonic() + timeout
    while True:
        posts = bot_posts(deliverer.standin)
        found = {s.key: posts[(s.channel, s.thread_ts)][0] for s in asked if posts.get((s.channel, s.thread_ts))}
        if len(found) == n and all(p.answer_id is not None for p in found.values()):
            rows = _answer_rows(db_url)
            ids = {p.answer_id for p in found.values()}
            if all(rows.get(i, {}).get("status") == "posted" for i in ids):
                break
        if time.monotonic() > deadline:
            raise RuntimeError(f"seed questions: {len(found)} of {n} answered and posted after {timeout:.0f}s")
        await asyncio.sleep(0.2)
    seeds = []
    for s in asked:
        post = found[s.key]
        assert post.answer_id is not None
        seeds.append(Seed(s.channel, s.thread_ts, str(s.body["event"]["user"]), post.answer_id, post.ts))
    return seeds


def click(seed: Seed, standin: SlackStandIn) -> Sent:
    body = payloads.block_action(
        "answer_helpful",
        str(seed.answer_id),
        user=seed.user,
        channel=seed.channel,
        message_ts=seed.ts,
        thread_ts=seed.thread_ts,
        response_url=standin.hook_url(f"r-{seed.answer_id}"),
    )
    return Sent(body["trigger_id"], "click", body, seed.channel, seed.thread_ts, seed.answer_id, seed.user)


def thumbs_up(seed: Seed) -> Sent:
    event = payloads.reaction("added", "+1", user=seed.user, channel=seed.channel, ts=seed.ts)
    body = payloads.event_callback(event)
    return Sent(body["event_id"], "reaction", body, seed.channel, seed.thread_ts, seed.answer_id, seed.user)


def burst_events(
    standin: SlackStandIn,
    seeds: Sequence[Seed],
    *,
    questions: int,
    clicks: int,
    reactions: int,
    seed: int = 7,
    tag: str = "Q",
) -> list[Sent]:
    """N questions, M clicks and K reactions (on distinct seed answers), shuffled with `seed`."""
    if clicks + reactions > len(seeds):
        raise ValueError(f"{clicks + reactions} ratings need as many seed answers, got {len(seeds)}")
    events = [question(tag, i) for i in range(questions)]
    events += [click(s, standin) for s in seeds[:clicks]]
    events += [thumbs_up(s) for s in seeds[clicks : clicks + reactions]]
    random.Random(seed).shuffle(events)
    return events


async def burst(
    deliverer: Deliverer, events: Sequence[Sent], *, rate: float, at: Mapping[int, Any] | None = None
) -> None:
    """Send `events` open loop at `rate` per second; `at[i]` (an async callable) runs right after the i-th send
    starts (e.g. the kill). Returns once every delivery is acked or failed."""
    start = time.monotonic()
    for i, sent in enumerate(events):
        delay = start + i / rate - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        deliverer.record(sent)
        deliverer.send(sent)
        if at and i + 1 in at:
            await asyncio.sleep(0)  # let the i-th request leave
            await at[i + 1]()
    await deliverer.wait_all()


# --- the ledger --------------------------------------------------------------------------------------------
def _engine(db_url: str) -> Any:
    return create_engine(db_url, poolclass=NullPool)


def _answer_rows(db_url: str) -> dict[int, dict[str, Any]]:
    engine = _engine(db_url)
    try:
        with engine.connect() as connection:
            rows = connection.execute(
                text(
                    "SELECT a.id, a.question_id, a.status, a.slack_ts, c.channel_id, c.thread_ts "
                    "FROM answers a JOIN conversations c ON c.id = a.conversation_id"
                )
            ).mappings()
            return {int(r["id"]): dict(r) for r in rows}
    finally:
        engine.dispose()


@dataclass
class Ledger:
    """What happened to the events sent: counts for the table, and the events behind each failure."""

    events_sent: int
    events_acked: int
    questions_sent: int
    questions_acked: int
    questions_stored: int
    questions_answered: int  # threads with >= 1 bot post
    duplicates: int  # threads with > 1 bot post
    ratings_sent: int
    ratings_acked: int
    ratings_stored: int
    pending_but_posted: int  # answer rows not marked posted (with the post's ts) although the reply is in Slack
    refused: int  # questions whose thread holds only bot posts that are no engine answer (refusal, apology)
    ack_p50_ms: float | None
    ack_p99_ms: float | None
    ack_p99_db_down_ms: float | None
    ack_max_db_down_ms: float | None
    acked_db_down: int
    unacked_db_down: int
    lost_questions: list[str] = field(default_factory=list)  # acked, but not stored or not answered
    lost_ratings: list[str] = field(default_factory=list)  # acked, not stored
    unanswered_acked: list[str] = field(default_factory=list)
    unstored_acked: list[str] = field(default_factory=list)
    duplicate_threads: list[str] = field(default_factory=list)
    pending_posted_ids: list[int] = field(default_factory=list)
    answered_not_recorded: list[str] = field(default_factory=list)  # an answer in Slack, its turn not in the db
    never_acked: list[str] = field(default_factory=list)

    @property
    def lost(self) -> int:
        return len(self.lost_questions) + len(self.lost_ratings)

    def row(self) -> dict[str, Any]:
        return {
            "events sent": self.events_sent,
            "acknowledged": self.events_acked,
            "stored": self.questions_stored,
            "answered": self.questions_answered,
            "duplicates": self.duplicates,
            "ratings acked": self.ratings_acked,
            "ratings stored": self.ratings_stored,
            "pending-but-posted": self.pending_but_posted,
            "lost": self.lost,
            "refused": self.refused,
        }

    def problems(self, *, answered_turns_recorded: bool = False) -> list[str]:
        """Each broken guarantee, with the events behind it (empty when the run kept every promise)."""
        found = []
        if self.unstored_acked:
            found.append(f"{len(self.unstored_acked)} acknowledged question(s) not stored: {self.unstored_acked}")
        if self.unanswered_acked:
            found.append(
                f"{len(self.unanswered_acked)} acknowledged question(s) never answered in their thread: "
                f"{self.unanswered_acked}"
            )
        if self.duplicate_threads:
            found.append(f"{len(self.duplicate_threads)} thread(s) answered more than once: {self.duplicate_threads}")
        if self.lost_ratings:
            found.append(f"{len(self.lost_ratings)} acknowledged rating(s) not stored: {self.lost_ratings}")
        if self.pending_posted_ids:
            found.append(
                f"{len(self.pending_posted_ids)} answer row(s) not marked posted though the reply was posted: "
                f"answer ids {self.pending_posted_ids}"
            )
        if answered_turns_recorded and self.answered_not_recorded:
            found.append(
                f"{len(self.answered_not_recorded)} answered turn(s) missing from the database: "
                f"{self.answered_not_recorded}"
            )
        return found


def read_ledger(db_url: str, standin: SlackStandIn, sent: Sequence[Sent]) -> Ledger:
    """Read the database (read-only) and the stand-in's calls; compare with what was sent and acknowledged."""
    engine = _engine(db_url)
    try:
        with engine.connect() as connection:
            user_messages = {
                str(r["event_id"]): int(r["id"])
                for r in connection.execute(
                    text("SELECT id, event_id FROM messages WHERE role = 'user' AND event_id IS NOT NULL")
                ).mappings()
            }
            ratings = {
                (int(r["answer_id"]), str(r["rater_id"]), str(r["source"]))
                for r in connection.execute(text("SELECT answer_id, rater_id, source FROM ratings")).mappings()
            }
    finally:
        engine.dispose()
    answers = _answer_rows(db_url)
    posts = bot_posts(standin)

    questions = [s for s in sent if s.kind == "question"]
    rated = [s for s in sent if s.kind != "question"]
    thread_posts = {s.key: posts.get((s.channel, s.thread_ts), []) for s in questions}

    lost_q, unanswered, unstored, duplicate_threads, answered_not_recorded = [], [], [], [], []
    refused = 0
    by_question: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for row in answers.values():
        by_question[int(row["question_id"])].append(row)
    for s in questions:
        replies = thread_posts[s.key]
        stored = s.key in user_messages
        if len(replies) > 1:
            said = " | ".join(p.text.split("\n")[0][:50] for p in replies)
            duplicate_threads.append(f"{s.key} ({s.channel}: {len(replies)} posts: {said})")
        was_refused = bool(replies) and not any(p.is_answer for p in replies)  # told to try again: not silent
        refused += was_refused
        if s.acked and not stored and not was_refused:
            unstored.append(s.key)
        if s.acked and not replies:
            unanswered.append(s.key)
        if s.acked and not (stored and replies) and not was_refused:
            lost_q.append(s.key)
        answered = [p for p in replies if p.is_answer]
        if answered:
            rows = by_question.get(user_messages.get(s.key, -1), [])
            posted_ts = {p.ts for p in answered}
            if not any(r["status"] == "posted" and r["slack_ts"] in posted_ts for r in rows):
                answered_not_recorded.append(f"{s.key} ({'no answer posted' if stored else 'question not stored'})")

    # answer rows whose reply is in Slack but which are not marked posted with that post's ts
    carried: dict[int, str] = {}
    for thread_list in posts.values():
        for p in thread_list:
            if p.answer_id is not None:
                carried.setdefault(p.answer_id, p.ts)
    pending_ids = []
    for answer_id, row in answers.items():
        ts = carried.get(answer_id)
        if ts is None:
            thread = posts.get((str(row["channel_id"]), str(row["thread_ts"])), [])
            untagged = [p for p in thread if p.answer_id is None and p.is_answer]
            if not untagged or any(p.answer_id is not None for p in thread) or len(by_question[row["question_id"]]) > 1:
                continue
            ts = untagged[0].ts
        if row["status"] != "posted" or not row["slack_ts"]:
            pending_ids.append(answer_id)
    pending_ids.sort()

    lost_r = [
        f"{s.kind} {s.key} on answer {s.answer_id}"
        for s in rated
        if s.acked and (s.answer_id, s.rater, s.rating_source) not in ratings
    ]
    stored_ratings = sum(1 for s in rated if (s.answer_id, s.rater, s.rating_source) in ratings)
    acks = [d.ack_s * 1000 for s in sent for d in s.deliveries if d.acked and d.ack_s is not None]
    down = [d for s in sent for d in s.deliveries if d.db_down]
    down_acks = [d.ack_s * 1000 for d in down if d.acked and d.ack_s is not None]
    return Ledger(
        events_sent=len(sent),
        events_acked=sum(1 for s in sent if s.acked),
        questions_sent=len(questions),
        questions_acked=sum(1 for s in questions if s.acked),
        questions_stored=sum(1 for s in questions if s.key in user_messages),
        questions_answered=sum(1 for s in questions if thread_posts[s.key]),
        duplicates=len(duplicate_threads),
        ratings_sent=len(rated),
        ratings_acked=sum(1 for s in rated if s.acked),
        ratings_stored=stored_ratings,
        pending_but_posted=len(pending_ids),
        refused=refused,
        ack_p50_ms=percentile(acks, 50),
        ack_p99_ms=percentile(acks, 99),
        ack_p99_db_down_ms=percentile(down_acks, 99),
        ack_max_db_down_ms=max(down_acks) if down_acks else None,
        acked_db_down=len(down_acks),
        unacked_db_down=len(down) - len(down_acks),
        lost_questions=lost_q,
        lost_ratings=lost_r,
        unanswered_acked=unanswered,
        unstored_acked=unstored,
        duplicate_threads=duplicate_threads,
        pending_posted_ids=pending_ids,
        answered_not_recorded=answered_not_recorded,
        never_acked=[f"{s.kind} {s.key}" for s in sent if not s.acked],
    )


async def settle(
    db_url: str,
    standin: SlackStandIn,
    sent: Sequence[Sent],
    *,
    timeout: float,
    quiet_s: float = 2.0,
    answered_turns_recorded: bool = False,
) -> Ledger:
    """Poll the ledger until it has no problem (then wait `quiet_s` more, for late duplicates) or `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            ledger = await asyncio.to_thread(read_ledger, db_url, standin, sent)
        except Exception:  # noqa: BLE001 - the database may still be coming back
            ledger = None
        if ledger is not None and not ledger.problems(answered_turns_recorded=answered_turns_recorded):
            await asyncio.sleep(quiet_s)
            return await asyncio.to_thread(read_ledger, db_url, standin, sent)
        if time.monotonic() > deadline:
            return ledger if ledger is not None else await asyncio.to_thread(read_ledger, db_url, standin, sent)
        await asyncio.sleep(0.5)


# --- a PostgreSQL server of our own ------------------------------------------------------------------------
def _pg_bin(name: str) -> str | None:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), key=lambda p: int(p.split("/")[4]))
    return found[-1] if found else shutil.which(name)


class PgCluster:
    """A throw-away PostgreSQL server: `initdb` on a temp directory, trust auth, 127.0.0.1 on a free port.

    As root it runs as the `postgres` user (`runuser -u postgres --`); otherwise as the current user."""

    def __init__(self) -> None:
        self.initdb = _pg_bin("initdb")
        self.pg_ctl = _pg_bin("pg_ctl")
        self.port = free_port()
        self.root = Path(tempfile.mkdtemp(prefix="supportbot-pg-"))
        self.data = self.root / "data"
        self.log = self.root / "server.log"
        self.running = False

    @staticmethod
    def unavailable() -> str | None:
        """Why no cluster of our own can be made here (None: it can)."""
        if _pg_bin("initdb") is None or _pg_bin("pg_ctl") is None:
            return "PostgreSQL server binaries (initdb, pg_ctl) not installed: fault tests need a server of their own"
        if os.geteuid() == 0:
            if shutil.which("runuser") is None:
                return "running as root without runuser: cannot start PostgreSQL as another user"
            try:
                import pwd

                pwd.getpwnam("postgres")
            except KeyError:
                return "running as root and there is no 'postgres' user to run initdb as"
        return None

    def _run(self, *args: str, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
        command = list(args)
        if os.geteuid() == 0:
            command = ["runuser", "-u", "postgres", "--", *command]
        return subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False, cwd=self.root)

    def init(self) -> PgCluster:
        assert self.initdb is not None
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres", "postgres")
        done = self._run(
            self.initdb, "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-instructions"
        )
        if done.returncode != 0:
            raise RuntimeError(f"initdb failed ({done.returncode}): {done.stderr[-2000:]}")
        return self

    def start(self) -> None:
        assert self.pg_ctl is not None
        options = f"-c port={self.port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={self.root}"
        done = self._run(
            self.pg_ctl, "-D", str(self.data), "-l", str(self.log), "-o", options, "-w", "-t", "60", "start"
        )
        if done.returncode != 0:
            raise RuntimeError(f"pg_ctl start failed: {done.stdout[-1000:]} {done.stderr[-1000:]} {self.log_tail()}")
        self.running = True

    def stop(self, mode: str = "fast") -> None:
        """Stop the server (`fast`: every client connection is cut, as in an outage)."""
        assert self.pg_ctl is not None
        done = self._run(self.pg_ctl, "-D", str(self.data), "-m", mode, "-w", "-t", "60", "stop")
        if done.returncode != 0:
            raise RuntimeError(f"pg_ctl stop failed: {done.stderr[-1000:]}")
        self.running = False

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def create_database(self, prefix: str = "faults") -> str:
        name = f"{prefix}_{os.getpid()}_{random.randrange(16**8):08x}"
        engine = create_engine(self.url(), isolation_level="AUTOCOMMIT", poolclass=NullPool)
        try:
            with engine.connect() as connection:
                connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
        finally:
            engine.dispose()
        return self.url(name)

    def log_tail(self, chars: int = 1500) -> str:
        try:
            return self.log.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def destroy(self) -> None:
        if self.running:
            with contextlib.suppress(Exception):
                self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)


# --- the scenarios -----------------------------------------------------------------------------------------
@dataclass
class ScenarioResult:
    name: str
    ledger: Ledger
    sent: list[Sent]
    replicas: list[ServeProcess]
    timings: dict[str, float] = field(default_factory=dict)
    notes: dict[str, Any] = field(default_factory=dict)

    def failure_report(self, *, answered_turns_recorded: bool = False) -> str:
        lines = [f"scenario {self.name}: ledger {json.dumps(self.ledger.row())}"]
        lines += [f"  - {p}" for p in self.ledger.problems(answered_turns_recorded=answered_turns_recorded)]
        if self.ledger.never_acked:
            lines.append(f"  never acknowledged, even after re-delivery: {self.ledger.never_acked}")
        lines += [f"  notes: {self.notes}", f"  timings: {self.timings}"]
        for replica in self.replicas:
            lines.append(f"--- {replica.name} log ({replica.log_path}) ---\n{replica.log_tail(2000)}")
        return "\n".join(lines)


async def run_kill_scenario(
    *,
    name: str,
    standin: SlackStandIn,
    mode: Mode,
    db_url: str,
    work_dir: Path,
    questions: int = 15,
    clicks: int = 3,
    reactions: int = 3,
    kill_at: float = 0.5,
    replicas: int = 1,
    restart: bool = True,
    rate: float = 20.0,
    delay_s: float = 0.2,
    settle_s: float = 20.0,
    bot_root: Path = BOT_ROOT,
    seed: int = 7,
    extra_env: Mapping[str, str] | None = None,
) -> ScenarioResult:
    """Seed answers, then a burst; kill -9 one replica after `kill_at` of the burst's events were sent (the rest
    keeps coming, failing on the dead one), restart it (`restart`) or not, re-deliver every unacknowledged event,
    wait until the ledger is clean or `settle_s`, stop the replicas, read the ledger."""
    migrate(db_url, bot_root)
    bots = [
        ServeProcess(
            name=f"replica{i}",
            mode=mode,
            standin=standin,
            db_url=db_url,
            data_dir=work_dir / f"data{i}",
            log_path=work_dir / f"replica{i}.log",
            bot_root=bot_root,
            delay_s=delay_s,
            extra_env=dict(extra_env or {}),
        )
        for i in range(replicas)
    ]
    timings: dict[str, float] = {}
    notes: dict[str, Any] = {"mode": mode, "replicas": replicas, "restart": restart, "kill_at": kill_at}
    try:
        for bot in bots:
            timings[f"start_{bot.name}_s"] = round(await bot.start(), 2)
        async with Deliverer(standin, mode, bots) as deliverer:
            seeds = await seed_answers(deliverer, db_url, clicks + reactions)
            deliverer.sent.clear()
            events = burst_events(standin, seeds, questions=questions, clicks=clicks, reactions=reactions, seed=seed)
            victim = bots[0]
            kill_index = max(1, min(len(events), round(kill_at * len(events))))
            killed_at: list[float] = []

            async def kill() -> None:
                await victim.kill()
                killed_at.append(time.monotonic())

            burst_started = time.monotonic()
            await burst(deliverer, events, rate=rate, at={kill_index: kill})
            timings["burst_s"] = round(time.monotonic() - burst_started, 2)
            notes["killed_after_events"] = kill_index
            notes["acked_before_redelivery"] = sum(1 for s in deliverer.sent if s.acked)
            snapshot = await asyncio.to_thread(read_ledger, db_url, standin, deliverer.sent)
            notes["at_kill"] = {  # what the kill left to recover (read once the burst was sent)
                "acked": snapshot.events_acked,
                "stored": snapshot.questions_stored,
                "answered": snapshot.questions_answered,
                "acked_unanswered": len(snapshot.unanswered_acked),
            }
            if restart:
                timings["restart_s"] = round(await victim.start(), 2)
            notes["redelivered"] = await deliverer.redeliver()
            ledger = await settle(db_url, standin, deliverer.sent, timeout=settle_s)
            timings["settled_s"] = round(time.monotonic() - (killed_at[0] if killed_at else burst_started), 2)
            sent = list(deliverer.sent)
    finally:
        for bot in bots:
            await bot.stop()
    ledger = await asyncio.to_thread(read_ledger, db_url, standin, sent)  # after the drain, too
    return ScenarioResult(name, ledger, sent, bots, timings, notes)


async def run_db_outage(
    *,
    name: str,
    standin: SlackStandIn,
    cluster: PgCluster,
    db_url: str,
    work_dir: Path,
    interval_s: float = 0.5,
    before_s: float = 2.0,
    outage_s: float = 8.0,
    after_s: float = 3.0,
    mode: Mode = "http",
    delay_s: float = 0.05,
    settle_s: float = 30.0,
    bot_root: Path = BOT_ROOT,
    extra_env: Mapping[str, str] | None = None,
) -> ScenarioResult:
    """One question every `interval_s`: `before_s` with the database up, `outage_s` with `cluster` stopped,
    `after_s` once it is back; then re-delivery of anything unacknowledged and the settle. `notes["outage"]` lists
    the questions sent while the database was down."""
    migrate(db_url, bot_root)
    bot = ServeProcess(
        name="replica0",
        mode=mode,
        standin=standin,
        db_url=db_url,
        data_dir=work_dir / "data0",
        log_path=work_dir / "replica0.log",
        bot_root=bot_root,
        delay_s=delay_s,
        extra_env=dict(extra_env or {}),
    )
    timings: dict[str, float] = {}
    outage: list[str] = []
    try:
        timings["start_s"] = round(await bot.start(), 2)
        async with Deliverer(standin, mode, [bot]) as deliverer:
            await seed_answers(deliverer, db_url, 1)  # warm: first auth.test, connections
            deliverer.sent.clear()
            total = before_s + outage_s + after_s
            n = int(total / interval_s)
            stop_at = int(before_s / interval_s)
            start_at = int((before_s + outage_s) / interval_s)
            started = time.monotonic()
            for i in range(n):
                if i == stop_at:
                    deliverer.db_down = True
                    t0 = time.monotonic()
                    await asyncio.to_thread(cluster.stop, "fast")
                    timings["db_stop_s"] = round(time.monotonic() - t0, 2)
                    timings["db_down_at_s"] = round(time.monotonic() - started, 2)
                if i == start_at:
                    t0 = time.monotonic()
                    await asyncio.to_thread(cluster.start)
                    deliverer.db_down = False
                    timings["db_start_s"] = round(time.monotonic() - t0, 2)
                    timings["db_up_at_s"] = round(time.monotonic() - started, 2)
                delay = started + i * interval_s - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                sent = deliverer.record(question("O", i))
                if deliverer.db_down:
                    outage.append(sent.key)
                deliverer.send(sent)
            if not cluster.running:
                await asyncio.to_thread(cluster.start)
                deliverer.db_down = False
            await deliverer.wait_all()
            notes: dict[str, Any] = {
                "mode": mode,
                "outage_questions": len(outage),
                "acked_before_redelivery": sum(1 for s in deliverer.sent if s.acked),
            }
            notes["redelivered"] = await deliverer.redeliver()
            await settle(db_url, standin, deliverer.sent, timeout=settle_s, answered_turns_recorded=True)
            sent_all = list(deliverer.sent)
    finally:
        if not cluster.running:
            await asyncio.to_thread(cluster.start)
        await bot.stop()
    ledger = await asyncio.to_thread(read_ledger, db_url, standin, sent_all)
    posts = bot_posts(standin)
    by_key = {s.key: s for s in sent_all}
    outage_threads = {k: posts.get((by_key[k].channel, by_key[k].thread_ts), []) for k in outage}
    notes["outage"] = outage
    notes["outage_silent"] = [k for k, p in outage_threads.items() if not p]
    notes["outage_refused"] = [k for k, p in outage_threads.items() if p and not any(x.is_answer for x in p)]
    notes["outage_answered"] = [k for k, p in outage_threads.items() if any(x.is_answer for x in p)]
    return ScenarioResult(name, ledger, sent_all, [bot], timings, notes)


def outage_problems(result: ScenarioResult) -> list[str]:
    """The outage test's guarantees: every question sent while the database was down answered or explicitly
    refused in its thread, every answered turn in the database afterwards (plus the ledger's own)."""
    found = list(result.ledger.problems(answered_turns_recorded=True))
    silent = result.notes.get("outage_silent") or []
    if silent:
        found.append(
            f"{len(silent)} of {len(result.notes['outage'])} question(s) sent during the outage got no "
            f"answer and no refusal: {silent}"
        )
    return found


def describe_sent(sent: Iterable[Sent]) -> list[dict[str, Any]]:
    """Every event with its deliveries (for the bench's JSON)."""
    return [
        {
            "key": s.key,
            "kind": s.kind,
            "index": s.index,
            "channel": s.channel,
            "answer_id": s.answer_id,
            "acked": s.acked,
            "deliveries": [
                {
                    "attempt": d.attempt,
                    "target": d.target,
                    "acked": d.acked,
                    "ack_ms": None if d.ack_s is None else round(d.ack_s * 1000, 1),
                    "error": d.error,
                    "db_down": d.db_down,
                }
                for d in s.deliveries
            ],
        }
        for s in sent
    ]
