"""N replicas under load (issue 13): 1, 2 and 4 `supportbot serve` processes in Socket Mode on one PostgreSQL,
behind the local Slack stand-in, which hands each event to one of the open connections at random (as Slack does
with up to 10 connections).

Each replica is the real CLI (`tests/bot/slack/serveproc.py`: the FakeEngine stands in for the models, answering
after `--delay` seconds, so what is measured is the serving stack: Socket Mode, the intake, the store, posting).
For each N, questions arrive open loop at each rate of `--rates` (each from its own customer, in its own DM) for
`--duration` seconds; a rate passes when the answers' p99 (event pushed -> `chat.postMessage` at the stand-in)
is <= 1 s with no duplicate and no lost event (`tests/bot/slack/faults.py`'s ledger: every acknowledged question
stored and answered once). The sustained rate of N is the highest passing one; escalation stops at the first
failure. CPU seconds of the replicas and of the PostgreSQL server are read from /proc over each step, to say where
the limit is (2 cores here: replicas + database + this load generator). With `--profile`, py-spy samples the first
replica over each step (100 Hz, non-blocking, the thread holding the GIL): who holds it, and in which library.

Usage:
    .venv/bin/python bench/bench_replicas.py                                   # N = 1, 2, 4
    .venv/bin/python bench/bench_replicas.py --replicas 1,2 --rates 10,20,40 --duration 10
    .venv/bin/python bench/bench_replicas.py --replicas 1 --rates 40,80 --profile   # needs py-spy on PATH or in .venv

Needs PostgreSQL on 127.0.0.1:5432 (trust auth; `--pg` to change); creates and drops its own databases.
Results: bench/results/replicas.json and replicas.md (git-ignored).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.bot.slack.faults import Deliverer, ServeProcess, burst, migrate, percentile, question, settle  # noqa: E402
from tests.bot.slack.standin import SlackStandIn  # noqa: E402

RESULTS = ROOT / "bench" / "results"
PROFILE_HZ = 100
LIBRARIES = (  # a sample's leaf frame, by its file: the first match names where the CPU went
    ("database client", ("/sqlalchemy/", "/psycopg/", "/psycopg_pool/", "/sqlmodel/")),
    ("Slack SDK and Bolt", ("/slack_sdk/", "/slack_bolt/")),
    ("aiohttp and websockets", ("/aiohttp/", "/websockets/", "/multidict/", "/yarl/")),
    ("JSON", ("/json/",)),
    ("logging", ("/logging/",)),
    ("asyncio event loop", ("/asyncio/", "selectors.py")),
    ("supportbot", ("/bot/", "/storage/", "/retrieval/", "/training/", "/tests/")),
)
WORK = ROOT / "var" / "bench-replicas"
P99_TARGET_S = 1.0


def cpu_seconds(pids: list[int]) -> float:
    """utime + stime of these processes (and their threads), in seconds."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / ticks


def postgres_pids() -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().strip() in ("postgres", "postmaster"):
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def create_database(server: str) -> tuple[str, str]:
    name = f"bench_replicas_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(server, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    return name, server.rsplit("/", 1)[0] + f"/{name}"


def drop_database(server: str, name: str) -> None:
    with psycopg.connect(server, autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def py_spy() -> str | None:
    found = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    return found if Path(found).exists() else None


async def start_profile(pid: int, seconds: float, out: Path) -> asyncio.subprocess.Process:
    """py-spy sampling `pid` for `seconds` without pausing it, only the thread holding the GIL (so the samples are
    Python's one core: who holds it, doing what), collapsed stacks to `out`."""
    spy = py_spy()
    if spy is None:
        raise SystemExit("--profile needs py-spy (pip install py-spy)")
    return await asyncio.create_subprocess_exec(
        spy, "record", "--pid", str(pid), "--duration", str(max(1, round(seconds))), "--rate", str(PROFILE_HZ),
        "--nonblocking", "--gil", "--threads", "--full-filenames", "--format", "raw", "--output", str(out),
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip


def profile_summary(raw: Path, seconds: float) -> dict[str, Any]:
    """Where the sampled replica's Python time went: each thread group's share of the wall time holding the GIL
    (samples / (seconds x Hz); their sum near 1 means the process is bound to one core by the GIL) and the share
    of samples by library of the leaf frame."""
    threads: dict[str, int] = {}
    libraries: dict[str, int] = {}
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        frames = stack.split(";")
        name = frames[0].split(": ", 1)[-1]
        group = "event loop (MainThread)" if name == "MainThread" else name.rstrip("0123456789_") or name
        threads[group] = threads.get(group, 0) + int(count)
        leaf = frames[-1]
        where = next((label for label, marks in LIBRARIES if any(m in leaf for m in marks)), "other")
        libraries[where] = libraries.get(where, 0) + int(count)
        total += int(count)
    possible = seconds * PROFILE_HZ
    return {
        "samples": total,
        "gil_held": round(total / possible, 2),
        "threads_gil_share": {k: round(v / possible, 2) for k, v in sorted(threads.items(), key=lambda kv: -kv[1])},
        "library_share": {k: round(v / total, 2) for k, v in sorted(libraries.items(), key=lambda kv: -kv[1])}
        if total else {},
    }  # fmt: skip


async def step(standin: SlackStandIn, replicas: list[ServeProcess], db_url: str, *, n: int, rate: float,
               duration: float, tag: str, profile: bool = False) -> dict[str, Any]:  # fmt: skip
    """One rate for `duration` seconds: latency, duplicates, lost, CPU (with `profile`, py-spy's summary)."""
    events = [question(tag, i) for i in range(int(rate * duration))]
    bots = [r.process.pid for r in replicas if r.process is not None]
    pg = postgres_pids()
    raw = WORK / f"profile-{tag}.txt"
    spy = await start_profile(bots[0], duration, raw) if profile else None
    cpu_bots, cpu_pg, cpu_self = cpu_seconds(bots), cpu_seconds(pg), time.process_time()
    wall = time.monotonic()
    async with Deliverer(standin, "socket", replicas) as deliverer:
        await burst(deliverer, events, rate=rate)
        ledger = await settle(db_url, standin, deliverer.sent, timeout=30.0)
    wall = time.monotonic() - wall
    if spy is not None:
        await spy.wait()
    first_post: dict[str, float] = {}  # thread ts -> when the bot's first post in it reached the stand-in
    for call in standin.calls_to("chat.postMessage"):
        first_post.setdefault(str(call.params.get("thread_ts")), call.at)
    latencies = [
        first_post[sent.thread_ts] - sent.deliveries[0].sent_at
        for sent in deliverer.sent
        if sent.thread_ts in first_post and sent.deliveries
    ]
    p99 = percentile(latencies, 99)
    row = {
        "replicas": n,
        "rate": rate,
        "questions": len(events),
        "answered": ledger.questions_answered,
        "acked": ledger.questions_acked,
        "p50_s": percentile(latencies, 50),
        "p99_s": p99,
        "max_s": max(latencies) if latencies else None,
        "duplicates": ledger.duplicates,
        "lost": ledger.lost,
        "unacked": len(ledger.never_acked),
        "ack_p99_ms": ledger.ack_p99_ms,
        "cpu_replicas": round((cpu_seconds(bots) - cpu_bots) / wall, 2),
        "cpu_postgres": round((cpu_seconds(sorted(set(postgres_pids()) | set(pg))) - cpu_pg) / wall, 2),
        "cpu_load_generator": round((time.process_time() - cpu_self) / wall, 2),
        "wall_s": round(wall, 1),
    }
    if spy is not None:
        failed = {"error": f"py-spy exited {spy.returncode}"}
        row["profile"] = profile_summary(raw, duration) if raw.exists() else failed
    row["passed"] = bool(
        p99 is not None and p99 <= P99_TARGET_S and not row["duplicates"] and not row["lost"] and not row["unacked"]
        and row["answered"] == len(events)
    )  # fmt: skip
    return row


async def run_n(n: int, args: argparse.Namespace) -> list[dict[str, Any]]:
    name, db_url = create_database(args.pg)
    sqlalchemy_url = db_url.replace("postgresql://", "postgresql+psycopg://", 1)
    standin = await SlackStandIn().start()
    standin.spread = True
    replicas: list[ServeProcess] = []
    rows: list[dict[str, Any]] = []
    try:
        migrate(sqlalchemy_url)
        for i in range(n):
            replica = ServeProcess(
                name=f"bot{i}",
                mode="socket",
                standin=standin,
                db_url=sqlalchemy_url,
                data_dir=WORK / f"n{n}" / f"bot{i}",
                log_path=WORK / f"n{n}" / f"bot{i}.log",
                delay_s=args.delay,
            )
            await replica.start()
            replicas.append(replica)
        for rate in args.rates:
            row = await step(standin, replicas, sqlalchemy_url, n=n, rate=rate, duration=args.duration,
                             tag=f"N{n}R{int(rate)}", profile=args.profile)  # fmt: skip
            rows.append(row)
            print(json.dumps(row), flush=True)
            if not row["passed"]:
                break
    finally:
        for replica in replicas:
            await replica.stop()
        await standin.close()
        drop_database(args.pg, name)
    return rows


def markdown(result: dict[str, Any]) -> str:
    lines = [
        "# N replicas under load (issue 13)",
        "",
        f"{result['date']} · {result['machine']} · load {result['load']} · FakeEngine delay {result['delay_s']} s · "
        f"{result['duration_s']} s per rate",
        "",
        "| replicas | rate (q/s) | answered | p50 | p99 | max | duplicates | lost | unacked | ack p99 | CPU replicas "
        "| CPU postgres | CPU load gen | pass |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in result["rows"]:

        def s(v: float | None) -> str:
            return f"{v:.3f} s" if v is not None else "-"

        lines.append(
            f"| {r['replicas']} | {r['rate']:g} | {r['answered']}/{r['questions']} | {s(r['p50_s'])} | {s(r['p99_s'])} "
            f"| {s(r['max_s'])} | {r['duplicates']} | {r['lost']} | {r['unacked']} | "
            f"{r['ack_p99_ms']:.0f} ms | {r['cpu_replicas']} | {r['cpu_postgres']} | {r['cpu_load_generator']} | "
            f"{'yes' if r['passed'] else '**no**'} |"
        )
    for r in result["rows"]:
        if "profile" in r:
            lines.append(f"\nProfile of the first replica, N = {r['replicas']} at {r['rate']:g} q/s: {r['profile']}")
    lines += ["", "Sustained (highest passing rate): " + ", ".join(
        f"N = {n}: {v:g} q/s" if v else f"N = {n}: none" for n, v in result["sustained"].items())]  # fmt: skip
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--replicas", default="1,2,4")
    parser.add_argument("--rates", default="10,20,40,80")
    parser.add_argument("--duration", type=float, default=15.0)
    parser.add_argument("--delay", type=float, default=0.02, help="FakeEngine seconds per answer")
    parser.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--out", default="replicas")
    parser.add_argument("--profile", action="store_true", help="py-spy the first replica over each step")
    args = parser.parse_args()
    args.rates = [float(r) for r in args.rates.split(",")]
    load = os.getloadavg()[0]
    rows: list[dict[str, Any]] = []
    for n in [int(v) for v in args.replicas.split(",")]:
        rows += asyncio.run(run_n(n, args))
    sustained = {
        str(n): max((r["rate"] for r in rows if r["replicas"] == n and r["passed"]), default=0)
        for n in sorted({r["replicas"] for r in rows})
    }
    result = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{os.cpu_count()} CPUs, {platform.platform()}",
        "load": f"{load:.1f} -> {os.getloadavg()[0]:.1f}",
        "delay_s": args.delay,
        "duration_s": args.duration,
        "rows": rows,
        "sustained": sustained,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{args.out}.json").write_text(json.dumps(result, indent=2) + "\n")
    (RESULTS / f"{args.out}.md").write_text(markdown(result))
    print(markdown(result))


if __name__ == "__main__":
    main()
