"""Slack benchmark: the real `supportbot serve --mode http` against the local Slack stand-in.

The bot runs as its own process (the production entry point, with the registry's production model, or the
FakeEngine with `--engine fake`); the load generator and the Slack stand-in (tests/bot/slack/standin.py) run
in this process and share its clock. Two phases:

1. Sustained questions: `--rate` DMs per second for `--duration` seconds (open loop, each in its own DM),
   questions from bot/demo/test.csv. Latency is event sent -> chat.postMessage received by the stand-in
   (p50 / p90 / p99 / max). Meanwhile `--retry-share` of the events are delivered again (X-Slack-Retry-Num: 1)
   and `--rate-share` of the answers are rated (button click or thumbs-up reaction), to count duplicate
   answers and lost ratings.
2. Acknowledgements: `--ack-rate` events per second for `--ack-duration` seconds, a Slack-like mix
   (20 % questions, the rest channel chatter, reactions, App Home opens, joins). Ack time is request sent ->
   HTTP response; an event is unacked when the answer is not 200 within 3 seconds.

Targets: answer p50 <= 50 ms and p99 <= 150 ms at 20 questions/s; ack p99 <= 100 ms at 100 events/s; no
unacked events, no duplicate answers, no lost ratings, no unanswered questions.

Usage:
    .venv/bin/python bench/bench_slack.py                      # real models (registry of the data dir)
    .venv/bin/python bench/bench_slack.py --engine fake        # bot overhead only (keyword FakeEngine)
    .venv/bin/python bench/bench_slack.py --rate 20 --duration 60 --ack-rate 100 --ack-duration 30
The bot writes to a copy of the SQLite database (var/bench-slack/), never to the data dir's own.
Results: bench/results/slack.json and slack.md (git-ignored).
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import os
import platform
import random
import shutil
import signal
import socket
import sqlite3
import sys
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bot.settings import load_settings  # noqa: E402
from storage.repository import Repository  # noqa: E402
from tests.bot.slack import payloads  # noqa: E402
from tests.bot.slack.standin import SlackStandIn, form_body, json_body, signed_headers  # noqa: E402

RESULTS = ROOT / "bench" / "results"
WORK = ROOT / "var" / "bench-slack"
SECRET = "bench-signing-secret"
BOT_TOKEN = "xoxb-bench-token"
AGENT_CHANNEL = "CAGENTS"
SUPPORT_CHANNEL = "CSUPPORT"
ACK_TIMEOUT_S = 3.0
TARGETS = {"answer_p50_ms": 50.0, "answer_p99_ms": 150.0, "ack_p99_ms": 100.0}


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def summary(values: list[float]) -> dict[str, float | int | None]:
    return {
        "n": len(values),
        "p50": percentile(values, 50),
        "p90": percentile(values, 90),
        "p99": percentile(values, 99),
        "max": max(values) if values else None,
        "mean": sum(values) / len(values) if values else None,
    }


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def questions() -> list[str]:
    with (ROOT / "bot" / "demo" / "test.csv").open(newline="", encoding="utf-8") as handle:
        return [row["text"] for row in csv.DictReader(handle) if row.get("text")]


def copy_database(db_url: str) -> str:
    """A consistent copy of the SQLite database (registry included) for the bot to write into."""
    if not db_url.startswith("sqlite:///"):
        raise SystemExit("the default database is not SQLite: pass --db-url of a database the bench may write to")
    source = Path(db_url.removeprefix("sqlite:///"))
    WORK.mkdir(parents=True, exist_ok=True)
    target = WORK / "supportbot.db"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{target}{suffix}").unlink(missing_ok=True)
    if source.exists():
        with sqlite3.connect(source) as src, sqlite3.connect(target) as dst:
            src.backup(dst)
    return f"sqlite:///{target}"


@dataclass
class Sender:
    """Signs and posts Slack payloads to the bot; records ack times."""

    url: str
    session: aiohttp.ClientSession
    acks: list[float] = field(default_factory=list)
    unacked: list[str] = field(default_factory=list)

    async def send(self, payload: dict[str, Any], *, retry_num: int | None = None, record: bool = True) -> None:
        interactive = payload.get("type") == "block_actions"
        body, content_type = form_body(payload) if interactive else json_body(payload)
        headers = signed_headers(SECRET, body, content_type=content_type, retry_num=retry_num)
        started = time.perf_counter()
        try:
            timeout = aiohttp.ClientTimeout(total=ACK_TIMEOUT_S)
            async with self.session.post(self.url, data=body.encode(), headers=headers, timeout=timeout) as response:
                await response.read()
                status = response.status
        except (TimeoutError, aiohttp.ClientError) as exc:
            if record:
                self.unacked.append(f"{type(exc).__name__}")
            return
        elapsed = (time.perf_counter() - started) * 1000
        if record:
            if status == 200:
                self.acks.append(elapsed)
            else:
                self.unacked.append(f"HTTP {status}")


@dataclass
class Asked:
    channel: str
    ts: str
    sent_at: float  # time.monotonic(), the stand-in's clock


async def run_open_loop(rate: float, duration: float, make_task: Any) -> list[asyncio.Task[Any]]:
    """Start `make_task(i)` at `rate` per second for `duration` seconds, on schedule (open loop)."""
    tasks: list[asyncio.Task[Any]] = []
    start = time.monotonic()
    total = int(rate * duration)
    for i in range(total):
        delay = start + i / rate - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(make_task(i)))
    return tasks


def thread_replies(standin: SlackStandIn) -> dict[tuple[str, str], list[Any]]:
    replies: dict[tuple[str, str], list[Any]] = defaultdict(list)
    for call in standin.calls_to("chat.postMessage"):
        thread = call.params.get("thread_ts")
        if thread and call.params.get("blocks"):
            replies[(str(call.params["channel"]), str(thread))].append(call)
    return replies


def answer_id_of(call: Any) -> int | None:
    for block in call.params.get("blocks") or []:
        if block.get("type") == "actions":
            for element in block.get("elements", []):
                if str(element.get("value", "")).isdigit():
                    return int(element["value"])
    return None


async def phase_questions(
    sender: Sender, standin: SlackStandIn, texts: list[str], args: argparse.Namespace, rng: random.Random
) -> dict[str, Any]:
    asked: list[Asked] = []
    redelivered = 0
    rated: dict[int, set[tuple[str, str]]] = defaultdict(set)  # answer id -> {(rater, source)}
    rating_tasks: list[asyncio.Task[Any]] = []
    seen_answers: set[tuple[str, str]] = set()
    stop_rating = asyncio.Event()

    async def ask(i: int) -> None:
        nonlocal redelivered
        channel = f"DQ{i:06d}"
        event = payloads.message(rng.choice(texts), user=f"UQ{i:06d}", channel=channel)
        body = payloads.event_callback(event)
        asked.append(Asked(channel, event["ts"], time.monotonic()))
        await sender.send(body)
        if rng.random() < args.retry_share:
            redelivered += 1
            await asyncio.sleep(rng.uniform(0.05, 0.5))
            await sender.send(body, retry_num=1, record=False)

    async def rate_answers() -> None:
        while not stop_rating.is_set():
            for key, calls in list(thread_replies(standin).items()):
                if key in seen_answers or not key[0].startswith("DQ"):
                    continue
                seen_answers.add(key)
                answer_id = answer_id_of(calls[0])
                if answer_id is None or rng.random() >= args.rate_share:
                    continue
                user = "UR" + key[0][2:]
                if rng.random() < 0.5:
                    click = payloads.block_action(
                        "answer_helpful",
                        str(answer_id),
                        user=user,
                        channel=key[0],
                        message_ts=calls[0].response["ts"],
                        thread_ts=key[1],
                    )
                    rated[answer_id].add((user, "button"))
                    rating_tasks.append(asyncio.create_task(sender.send(click, record=False)))
                else:
                    reaction = payloads.reaction(
                        "added", "+1::skin-tone-2", user=user, channel=key[0], ts=calls[0].response["ts"]
                    )
                    rated[answer_id].add((user, "reaction"))
                    delivery = sender.send(payloads.event_callback(reaction), record=False)
                    rating_tasks.append(asyncio.create_task(delivery))
            await asyncio.sleep(0.05)

    rater = asyncio.create_task(rate_answers())
    sender.acks.clear()
    sender.unacked.clear()
    started = time.monotonic()
    tasks = await run_open_loop(args.rate, args.duration, ask)
    send_span = time.monotonic() - started
    await asyncio.gather(*tasks)
    deadline = time.monotonic() + args.drain
    while time.monotonic() < deadline:
        replies = thread_replies(standin)
        if all((a.channel, a.ts) in replies for a in asked):
            break
        await asyncio.sleep(0.1)
    await asyncio.sleep(1.0)  # late duplicates and the last ratings
    stop_rating.set()
    await rater
    await asyncio.gather(*rating_tasks)
    replies = thread_replies(standin)
    latencies = [(replies[(a.channel, a.ts)][0].at - a.sent_at) * 1000 for a in asked if (a.channel, a.ts) in replies]
    duplicates = sum(len(replies[(a.channel, a.ts)]) - 1 for a in asked if (a.channel, a.ts) in replies)
    sources = Counter(
        str((c.params["blocks"][-2].get("elements") or [{}])[0].get("text", "")).split(" · ")[0]
        for a in asked
        for c in replies.get((a.channel, a.ts), [])[:1]
    )
    return {
        "questions": len(asked),
        "achieved_rate_per_s": len(asked) / send_span if send_span else None,
        "answered": len(latencies),
        "unanswered": len(asked) - len(latencies),
        "duplicate_answers": duplicates,
        "redelivered_events": redelivered,
        "answer_latency_ms": summary(latencies),
        "ack_ms": summary(sender.acks),
        "unacked": len(sender.unacked),
        "answer_kinds": dict(sources),
        "ratings_sent": sum(len(v) for v in rated.values()),
        "_rated": {k: sorted(v) for k, v in rated.items()},
    }


async def phase_acks(
    sender: Sender, standin: SlackStandIn, texts: list[str], args: argparse.Namespace, rng: random.Random
) -> dict[str, Any]:
    asked: list[tuple[str, str]] = []
    kinds: Counter[str] = Counter()

    async def deliver(i: int) -> None:
        roll = rng.random()
        if roll < 0.2:
            channel = f"DA{i:06d}"
            event = payloads.message(rng.choice(texts), user=f"UA{i:06d}", channel=channel)
            asked.append((channel, event["ts"]))
            kind = "question"
        elif roll < 0.6:
            event = payloads.message("lunch anyone?", user=f"UC{i % 50:03d}", channel="CRANDOM")
            kind = "chatter"
        elif roll < 0.8:
            event = payloads.reaction(
                "added", "tada", user=f"UC{i % 50:03d}", channel="CRANDOM", ts=payloads.new_ts(), item_user="USOMEONE"
            )
            kind = "reaction"
        elif roll < 0.9:
            event = payloads.home_opened(f"UC{i % 50:03d}")
            kind = "app_home_opened"
        else:
            event = {
                "type": "member_joined_channel",
                "user": f"UC{i:03d}",
                "channel": "CRANDOM",
                "event_ts": payloads.new_ts(),
            }
            kind = "member_joined_channel"
        kinds[kind] += 1
        await sender.send(payloads.event_callback(event))

    sender.acks.clear()
    sender.unacked.clear()
    started = time.monotonic()
    tasks = await run_open_loop(args.ack_rate, args.ack_duration, deliver)
    send_span = time.monotonic() - started
    await asyncio.gather(*tasks)
    acks = list(sender.acks)
    unacked = Counter(sender.unacked)
    deadline = time.monotonic() + args.drain
    while time.monotonic() < deadline:
        replies = thread_replies(standin)
        if all(key in replies for key in asked):
            break
        await asyncio.sleep(0.1)
    replies = thread_replies(standin)
    return {
        "events": sum(kinds.values()),
        "achieved_rate_per_s": sum(kinds.values()) / send_span if send_span else None,
        "mix": dict(kinds),
        "ack_ms": summary(acks),
        "unacked": sum(unacked.values()),
        "unacked_reasons": dict(unacked),
        "questions": len(asked),
        "answered_after_drain": sum(1 for key in asked if key in replies),
        "duplicate_answers": sum(len(replies[key]) - 1 for key in asked if key in replies),
    }


def count_lost_ratings(db_url: str, rated: dict[int, list[tuple[str, str]]]) -> dict[str, int]:
    """Ratings sent but not in the store, by source (button / reaction)."""
    repo = Repository(db_url, upgrade=False)
    try:
        lost: Counter[str] = Counter()
        for answer_id, expected in rated.items():
            stored = {(r.rater_id, r.source) for r in repo.ratings(answer_id)}
            lost.update(source for rater, source in expected if (rater, source) not in stored)
        return {"button": lost["button"], "reaction": lost["reaction"]}
    finally:
        repo.close()


async def start_bot(args: argparse.Namespace, standin: SlackStandIn, db_url: str, port: int) -> Any:
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    env.update(
        PYTHONPATH=str(ROOT),
        SLACK_MODE="http",
        SLACK_BOT_TOKEN=BOT_TOKEN,
        SLACK_SIGNING_SECRET=SECRET,
        SLACK_API_BASE_URL=standin.api_url,
        HTTP_HOST="127.0.0.1",
        HTTP_PORT=str(port),
        DATABASE_URL=db_url,
        AGENT_CHANNEL_ID=AGENT_CHANNEL,
        AGENT_USER_IDS="UAGENT",
        AGENT_USERGROUP_ID="",
        SUPPORT_CHANNEL_IDS=SUPPORT_CHANNEL,
        LOG_LEVEL="WARNING",
    )
    env.pop("SLACK_APP_TOKEN", None)
    if args.engine == "fake":  # the real CLI with the keyword FakeEngine patched in
        command = [sys.executable, "-m", "tests.bot.slack.serveproc"]
    else:  # the installed console script, exactly what production runs
        script = Path(sys.executable).with_name("supportbot")
        command = [str(script)] if script.exists() else [sys.executable, "-c", "from bot.cli import main; main()"]
    log = (WORK / "bot.log").open("w")
    return await asyncio.create_subprocess_exec(
        *command, "serve", "--mode", "http", cwd=ROOT, env=env, stdout=log, stderr=log
    )


async def wait_healthy(session: aiohttp.ClientSession, port: int, process: Any, timeout: float) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if process.returncode is not None:
            raise SystemExit(f"the bot exited ({process.returncode}); see {WORK / 'bot.log'}")
        try:
            async with session.get(f"http://127.0.0.1:{port}/healthz") as response:
                if response.status == 200:
                    return time.monotonic() - started
        except aiohttp.ClientError:
            pass
        await asyncio.sleep(0.1)
    raise SystemExit(f"the bot did not start within {timeout:.0f}s; see {WORK / 'bot.log'}")


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"):
        os.environ.pop(name, None)
    settings = load_settings()
    db_url = args.db_url or copy_database(settings.db_url)
    WORK.mkdir(parents=True, exist_ok=True)
    if args.engine == "real":
        repo = Repository(db_url)
        try:
            production = repo.production_model()
        finally:
            repo.close()
        if production is None:
            raise SystemExit(
                'no production model in the registry: run `supportbot ask "hello"` once (it trains the demo '
                "model) or use --engine fake"
            )
        model_version: str | None = production.version
    else:
        model_version = None
    rng = random.Random(args.seed)
    texts = questions()
    standin = await SlackStandIn().start()
    port = free_port()
    process = await start_bot(args, standin, db_url, port)
    connector = aiohttp.TCPConnector(limit=0)
    session = aiohttp.ClientSession(connector=connector)
    try:
        startup_s = await wait_healthy(session, port, process, args.startup_timeout)
        sender = Sender(f"http://127.0.0.1:{port}/slack/events", session)
        for i in range(20):  # warm-up: first auth.test, model caches, connections
            await sender.send(payloads.event_callback(payloads.message(texts[i], channel=f"DW{i:03d}")))
        await asyncio.sleep(2.0)
        load_before = os.getloadavg()
        phase1 = await phase_questions(sender, standin, texts, args, rng)
        phase2 = await phase_acks(sender, standin, texts, args, rng) if args.ack_duration > 0 else None
        load_after = os.getloadavg()
    finally:
        await session.close()
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(process.wait(), timeout=30)
            except TimeoutError:
                process.kill()
        await standin.close()
    rated = phase1.pop("_rated")
    lost = count_lost_ratings(db_url, rated)
    phase1["lost_ratings"] = sum(lost.values())
    phase1["lost_ratings_by_source"] = lost
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "loadavg_before": load_before,
            "loadavg_after": load_after,
        },
        "engine": args.engine,
        "model_version": model_version,
        "transport": "http",
        "bot_startup_s": round(startup_s, 2),
        "config": {k: v for k, v in vars(args).items() if k != "db_url"},
        "targets": TARGETS,
        "sustained_questions": phase1,
        "ack_load": phase2,
    }


def fmt(value: Any) -> str:
    if value is None:
        return "n/a"
    return f"{value:.1f}" if isinstance(value, float) else str(value)


def verdict(value: float | None, target: float) -> str:
    return "n/a" if value is None else ("met" if value <= target else "MISSED")


def markdown(result: dict[str, Any]) -> str:
    p1 = result["sustained_questions"]
    p2 = result["ack_load"]
    lat = p1["answer_latency_ms"]
    lost_detail = ", ".join(f"{k}: {v}" for k, v in p1["lost_ratings_by_source"].items())
    lines = [
        "# Slack benchmark",
        "",
        f"{result['date']} · engine `{result['engine']}` (model {result['model_version'] or 'n/a'}) · "
        f"{result['machine']['cpus']} CPUs · load average {result['machine']['loadavg_before'][0]:.1f} → "
        f"{result['machine']['loadavg_after'][0]:.1f} · bot start-up {result['bot_startup_s']} s",
        "",
        f"## Sustained questions: {result['config']['rate']}/s for {result['config']['duration']} s",
        "",
        "| metric | value | target |",
        "|---|---|---|",
        f"| event → chat.postMessage p50 | {fmt(lat['p50'])} ms | ≤ 50 ms ({verdict(lat['p50'], 50)}) |",
        f"| p90 / p99 / max | {fmt(lat['p90'])} / {fmt(lat['p99'])} / {fmt(lat['max'])} ms | p99 ≤ 150 ms "
        f"({verdict(lat['p99'], 150)}) |",
        f"| questions sent / answered / unanswered | {p1['questions']} / {p1['answered']} / {p1['unanswered']} | "
        "all answered |",
        f"| achieved send rate | {fmt(p1['achieved_rate_per_s'])}/s | |",
        f"| ack p50 / p99 | {fmt(p1['ack_ms']['p50'])} / {fmt(p1['ack_ms']['p99'])} ms | |",
        f"| duplicate answers ({p1['redelivered_events']} events redelivered) | {p1['duplicate_answers']} | 0 |",
        f"| ratings sent / lost | {p1['ratings_sent']} / {p1['lost_ratings']} ({lost_detail}) | 0 lost |",
        f"| unacked events | {p1['unacked']} | 0 |",
        f"| answer kinds | {', '.join(f'{k}: {v}' for k, v in p1['answer_kinds'].items())} | |",
    ]
    if p2:
        ack = p2["ack_ms"]
        lines += [
            "",
            f"## Acknowledgements: {result['config']['ack_rate']} events/s for {result['config']['ack_duration']} s",
            "",
            "| metric | value | target |",
            "|---|---|---|",
            f"| ack p50 / p90 | {fmt(ack['p50'])} / {fmt(ack['p90'])} ms | |",
            f"| ack p99 / max | {fmt(ack['p99'])} / {fmt(ack['max'])} ms | p99 ≤ 100 ms ({verdict(ack['p99'], 100)}) |",
            f"| events / achieved rate | {p2['events']} / {fmt(p2['achieved_rate_per_s'])}/s | |",
            f"| unacked (non-200 or > 3 s) | {p2['unacked']} {p2['unacked_reasons'] or ''} | 0 |",
            f"| questions answered after drain | {p2['answered_after_drain']} / {p2['questions']} | all |",
            f"| duplicate answers | {p2['duplicate_answers']} | 0 |",
            f"| mix | {', '.join(f'{k}: {v}' for k, v in p2['mix'].items())} | |",
        ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--engine", choices=["real", "fake"], default="real")
    parser.add_argument("--rate", type=float, default=20.0, help="questions per second (phase 1)")
    parser.add_argument("--duration", type=float, default=60.0, help="seconds (phase 1)")
    parser.add_argument("--ack-rate", type=float, default=100.0, help="events per second (phase 2)")
    parser.add_argument("--ack-duration", type=float, default=30.0, help="seconds (phase 2; 0 skips it)")
    parser.add_argument("--retry-share", type=float, default=0.05, help="share of events delivered twice")
    parser.add_argument("--rate-share", type=float, default=0.3, help="share of answers rated")
    parser.add_argument("--drain", type=float, default=60.0, help="seconds to wait for the last answers")
    parser.add_argument("--startup-timeout", type=float, default=900.0)
    parser.add_argument("--db-url", default=None, help="database the bot writes to (default: a SQLite copy)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--out", default="slack", help="results name under bench/results/")
    args = parser.parse_args()
    result = asyncio.run(main_async(args))
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{args.out}.json").write_text(json.dumps(result, indent=2) + "\n")
    report = markdown(result)
    (RESULTS / f"{args.out}.md").write_text(report)
    print(report)
    shutil.copy(WORK / "bot.log", RESULTS / f"{args.out}-bot.log")


if __name__ == "__main__":
    main()
