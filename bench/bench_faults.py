"""Fault benchmark (issue 10): the ledger of `supportbot serve` killed -9 mid-burst and of a database outage.

The bot runs as real `supportbot serve --mode http` processes (the keyword FakeEngine patched in, answers slowed
by `--delay` so work is in flight), on a PostgreSQL server of the bench's own (initdb / pg_ctl on a temp
directory, a free port; the shared server is never touched), against the local Slack stand-in. The harness is
`tests/bot/slack/faults.py`, the same as `tests/bot/slack/test_faults.py` runs at small sizes. Scenarios:

* `kill-10%`, `kill-50%`, `kill-90%`: `--clicks + --reactions` answers posted first; then a burst at `--rate`
  events/s of `--questions` DMs (each its own DM), `--clicks` Helpful clicks and `--reactions` thumbs-up on those
  answers, interleaved; kill -9 once that share of the burst was sent (the rest keeps being sent and fails);
  restart; Slack-style re-delivery of every unacknowledged event (same event_id, `X-Slack-Retry-Num: 1..3`);
  then up to `--settle` seconds for the bot to catch up (recovery sweeps, `RECOVERY_INTERVAL_S=1`).
* `db-outage`: one question every `--outage-interval` s; the PostgreSQL server stopped (`pg_ctl stop -m fast`) for
  `--outage-s` s in the middle, then started again; re-delivery; settle.

Ledger columns: events sent, acknowledged (HTTP 200 within 3 s, at any delivery), questions stored (a `messages`
row with the event_id), answered (the question's thread has a bot post), duplicates (threads with more than one),
ratings acknowledged / stored, pending-but-posted (answer rows not marked posted with a slack_ts although their
reply is in Slack), lost (acknowledged questions not stored or not answered, plus acknowledged ratings not stored),
refused (the thread holds only a reply that is no answer: the bot said it could not take the question).
Ack p50 / p99 over every acknowledged delivery, and p99 / max while the database was down (target < 3 s).
Goal: 0 lost, 0 duplicates, 0 pending-but-posted on every row.

The baseline is measured in the same run: `--baseline-rev REV` (default 1d79203, the code before the durability
work) is checked out as a `git worktree` under var/ (git-ignored) and the same scenarios run with the bot started
from that tree (cwd and PYTHONPATH there; the harness comes from this tree). `--rev REV` does the same for the bot
under test (default: this working tree).

Usage:
    .venv/bin/python bench/bench_faults.py                          # full size, baseline 1d79203 then this tree
    .venv/bin/python bench/bench_faults.py --no-baseline            # this tree only
    .venv/bin/python bench/bench_faults.py --rev HEAD --baseline-rev 1d79203
    .venv/bin/python bench/bench_faults.py --questions 15 --clicks 3 --reactions 3 --outage-s 8 --settle 20  # quick
Work dirs and bot logs under var/bench-faults/ (the logs also copied to bench/results/faults-logs/).
Results: bench/results/faults.json and faults.md (git-ignored).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.bot.slack.faults import (  # noqa: E402
    PgCluster,
    ScenarioResult,
    describe_sent,
    run_db_outage,
    run_kill_scenario,
)
from tests.bot.slack.standin import SlackStandIn  # noqa: E402

RESULTS = ROOT / "bench" / "results"
WORK = ROOT / "var" / "bench-faults"
DEFAULT_BASELINE = "1d79203"
ACK_TARGET_MS = 3000.0
COLUMNS = (
    "events sent",
    "acknowledged",
    "stored",
    "answered",
    "duplicates",
    "ratings acked",
    "ratings stored",
    "pending-but-posted",
    "lost",
    "refused",
)


def git(*args: str) -> str:
    return subprocess.run(["git", *args], cwd=ROOT, check=True, capture_output=True, text=True).stdout.strip()


def worktree(rev: str) -> tuple[Path, str]:
    """A detached `git worktree` of `rev` under var/ (reused when it is already at that commit)."""
    commit = git("rev-parse", "--verify", f"{rev}^{{commit}}")
    path = ROOT / "var" / f"faults-tree-{commit[:10]}"
    if path.exists():
        current = subprocess.run(["git", "rev-parse", "HEAD"], cwd=path, capture_output=True, text=True).stdout
        if current.strip() == commit:
            return path, commit
        subprocess.run(["git", "worktree", "remove", "--force", str(path)], cwd=ROOT, check=False)
        shutil.rmtree(path, ignore_errors=True)
    git("worktree", "prune")
    git("worktree", "add", "--detach", str(path), commit)
    return path, commit


def tree_label(rev: str | None) -> tuple[str, Path, str]:
    if rev is None:
        dirty = bool(git("status", "--porcelain", "--untracked-files=no"))
        head = git("rev-parse", "--short", "HEAD")
        return f"working tree ({head}{' + changes' if dirty else ''})", ROOT, head
    path, commit = worktree(rev)
    return f"{rev} ({commit[:7]})", path, commit


def fmt_ms(value: float | None) -> str:
    return "n/a" if value is None else f"{value:,.0f} ms" if value >= 100 else f"{value:.1f} ms"


async def run_tree(
    args: argparse.Namespace, cluster: PgCluster, label: str, root: Path, slug: str
) -> list[dict[str, Any]]:
    rows = []
    scenarios: list[tuple[str, float | None]] = [(f"kill-{round(p * 100)}%", p) for p in args.kill_points]
    if not args.skip_outage:
        scenarios.append(("db-outage", None))
    for name, point in scenarios:
        work = WORK / slug / name
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)
        if not cluster.running:
            cluster.start()
        db_url = cluster.create_database("bench_faults")
        standin = await SlackStandIn().start()
        started = time.monotonic()
        try:
            if point is not None:
                result: ScenarioResult = await run_kill_scenario(
                    name=name,
                    standin=standin,
                    mode=args.mode,
                    db_url=db_url,
                    work_dir=work,
                    questions=args.questions,
                    clicks=args.clicks,
                    reactions=args.reactions,
                    kill_at=point,
                    rate=args.rate,
                    delay_s=args.delay,
                    settle_s=args.settle,
                    bot_root=root,
                )
            else:
                result = await run_db_outage(
                    name=name,
                    standin=standin,
                    cluster=cluster,
                    db_url=db_url,
                    work_dir=work,
                    interval_s=args.outage_interval,
                    before_s=args.outage_before,
                    outage_s=args.outage_s,
                    after_s=args.outage_after,
                    mode=args.mode,
                    delay_s=args.outage_delay,
                    settle_s=args.settle,
                    bot_root=root,
                )
        finally:
            await standin.close()
        wall = time.monotonic() - started
        ledger = result.ledger
        logs = RESULTS / "faults-logs"
        logs.mkdir(parents=True, exist_ok=True)
        for replica in result.replicas:
            shutil.copy(replica.log_path, logs / f"{slug}-{name}-{replica.name}.log")
        problems = ledger.problems(answered_turns_recorded=point is None)
        notes = {k: v for k, v in result.notes.items() if k not in ("outage",)}
        row = {
            "tree": label,
            "scenario": name,
            **ledger.row(),
            "ack p50 ms": ledger.ack_p50_ms,
            "ack p99 ms": ledger.ack_p99_ms,
            "ack p99 db down ms": ledger.ack_p99_db_down_ms,
            "ack max db down ms": ledger.ack_max_db_down_ms,
            "unacked db down": ledger.unacked_db_down,
            "refused": ledger.refused,
            "answered not recorded": len(ledger.answered_not_recorded),
            "never acked": len(ledger.never_acked),
            "problems": problems,
            "notes": notes,
            "timings": result.timings,
            "wall_s": round(wall, 1),
            "events": describe_sent(result.sent),
        }
        rows.append(row)
        print(
            f"[{label}] {name}: "
            + ", ".join(f"{c} {row[c]}" for c in COLUMNS)
            + f"; ack p50 {fmt_ms(ledger.ack_p50_ms)} p99 {fmt_ms(ledger.ack_p99_ms)}"
            + (f", p99 db down {fmt_ms(ledger.ack_p99_db_down_ms)}" if point is None else "")
            + f" ({wall:.0f} s)",
            flush=True,
        )
    return rows


def markdown(result: dict[str, Any]) -> str:
    config = result["config"]
    lines = [
        "# Fault benchmark (issue 10)",
        "",
        f"{result['date']} · {result['machine']['cpus']} CPUs · load average "
        f"{result['machine']['loadavg_before'][0]:.1f} → {result['machine']['loadavg_after'][0]:.1f} · "
        f"{config['mode']} mode · burst {config['questions']} DMs + {config['clicks']} clicks + "
        f"{config['reactions']} reactions at {config['rate']}/s, answers {config['delay']} s · outage "
        f"{config['outage_s']} s at 1 question / {config['outage_interval']} s",
        "",
    ]
    for tree in result["trees"]:
        lines += [
            f"## {tree['role']}: {tree['label']}",
            "",
            "| scenario | " + " | ".join(COLUMNS) + " | ack p50 | ack p99 | ack p99 db down |",
            "|---|" + "---:|" * (len(COLUMNS) + 3),
        ]
        for row in tree["rows"]:
            db_down = fmt_ms(row["ack p99 db down ms"]) if row["scenario"] == "db-outage" else ""
            if db_down and row["unacked db down"]:
                db_down += f" ({row['unacked db down']} unacked)"
            lines.append(
                f"| {row['scenario']} | "
                + " | ".join(str(row[c]) for c in COLUMNS)
                + f" | {fmt_ms(row['ack p50 ms'])} | {fmt_ms(row['ack p99 ms'])} | {db_down} |"
            )
        lines.append("")
        for row in tree["rows"]:
            notes = row["notes"]
            extra = []
            if row["scenario"] == "db-outage":
                extra.append(
                    f"outage questions {notes.get('outage_questions')}: answered "
                    f"{len(notes.get('outage_answered', []))}, refused {len(notes.get('outage_refused', []))}, "
                    f"silent {len(notes.get('outage_silent', []))}; answered but not in the database "
                    f"{row['answered not recorded']}"
                )
            else:
                at_kill = notes.get("at_kill") or {}
                extra.append(
                    f"killed after {notes.get('killed_after_events')} events, "
                    f"{notes.get('acked_before_redelivery')} acked before re-delivery "
                    f"({at_kill.get('acked_unanswered')} of them questions not answered yet), "
                    f"{notes.get('redelivered')} re-delivered"
                )
            extra.append(f"never acked {row['never acked']}")
            lines.append(f"- {row['scenario']}: " + "; ".join(extra) + f" ({row['wall_s']} s)")
            lines += [f"  - {p[:400]}" for p in row["problems"]]
        lines.append("")
    return "\n".join(lines)


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY", "all_proxy"):
        os.environ.pop(name, None)
    reason = PgCluster.unavailable()
    if reason is not None:
        raise SystemExit(reason)
    trees = []
    if args.baseline_rev:
        trees.append(("baseline", *tree_label(args.baseline_rev)))
    trees.append(("under-test", *tree_label(args.rev)))
    cluster = PgCluster().init()
    load_before = os.getloadavg()
    try:
        cluster.start()
        results = []
        for slug, label, root, commit in trees:
            rows = await run_tree(args, cluster, label, root, slug)
            results.append({"role": slug, "label": label, "root": str(root), "commit": commit, "rows": rows})
    finally:
        cluster.destroy()
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "loadavg_before": load_before,
            "loadavg_after": os.getloadavg(),
        },
        "config": dict(vars(args)),
        "targets": {"lost": 0, "duplicates": 0, "pending-but-posted": 0, "ack_p99_db_down_ms": ACK_TARGET_MS},
        "trees": results,
    }


async def cancellable(work: Any) -> Any:
    """Run `work`, cancelled by SIGTERM or SIGINT (even when started in the background, where SIGINT is ignored),
    so the replicas are stopped and the PostgreSQL server removed on the way out."""
    task = asyncio.ensure_future(work)
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, task.cancel)
    try:
        return await task
    except asyncio.CancelledError:
        raise SystemExit("interrupted") from None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--baseline-rev", default=DEFAULT_BASELINE, help="baseline commit (default %(default)s)")
    parser.add_argument("--no-baseline", dest="baseline_rev", action="store_const", const=None)
    parser.add_argument("--rev", default=None, help="the bot under test as a worktree of REV (default: this tree)")
    parser.add_argument("--mode", choices=["http", "socket"], default="http")
    parser.add_argument("--questions", type=int, default=50)
    parser.add_argument("--clicks", type=int, default=10)
    parser.add_argument("--reactions", type=int, default=10)
    parser.add_argument("--rate", type=float, default=20.0, help="burst events per second")
    parser.add_argument("--delay", type=float, default=0.2, help="seconds per answer (FAKE_ENGINE_DELAY_S)")
    parser.add_argument("--kill-points", type=lambda s: [float(x) for x in s.split(",")], default=[0.1, 0.5, 0.9])
    parser.add_argument("--settle", type=float, default=45.0, help="seconds to wait for the bot to catch up")
    parser.add_argument("--outage-s", type=float, default=30.0)
    parser.add_argument("--outage-interval", type=float, default=1.0, help="seconds between questions")
    parser.add_argument("--outage-before", type=float, default=5.0)
    parser.add_argument("--outage-after", type=float, default=5.0)
    parser.add_argument("--outage-delay", type=float, default=0.05, help="seconds per answer in the outage run")
    parser.add_argument("--skip-outage", action="store_true")
    parser.add_argument("--out", default="faults", help="results name under bench/results/")
    args = parser.parse_args()
    result = asyncio.run(cancellable(main_async(args)))
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{args.out}.json").write_text(json.dumps(result, indent=2) + "\n")
    report = markdown(result)
    (RESULTS / f"{args.out}.md").write_text(report)
    print(report)


if __name__ == "__main__":
    main()
