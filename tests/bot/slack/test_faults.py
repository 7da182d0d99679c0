"""Nothing acknowledged is lost (issue 10), black-box: the real `supportbot serve` process, a PostgreSQL server of
the test's own, the local Slack stand-in.

* kill -9 mid-burst (DM questions, button clicks and thumbs-up reactions in flight), restart, Slack-style
  re-delivery of every unacknowledged event: every acknowledged question answered exactly once, every
  acknowledged rating stored, no answer row left unmarked whose reply was posted. HTTP mode and Socket Mode.
* two replicas on one PostgreSQL, one killed mid-burst and not restarted, re-delivery to the survivor: the same,
  and no question answered twice.
* the PostgreSQL server stopped under load (one question every 0.5 s, ~8 s of outage) and started again: every
  question sent meanwhile answered or explicitly refused in its thread, every answered turn in the database
  afterwards.

The harness is `tests/bot/slack/faults.py` (the bench `bench/bench_faults.py` runs the same scenarios full size).
Skipped when no PostgreSQL server binaries (initdb, pg_ctl) are installed.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.bot.slack.faults import PgCluster, ScenarioResult, outage_problems, run_db_outage, run_kill_scenario
from tests.bot.slack.standin import SlackStandIn

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]

SIZES = {"questions": 15, "clicks": 3, "reactions": 3, "delay_s": 0.2, "rate": 20.0, "settle_s": 20.0}


@pytest.fixture(scope="module")
def cluster() -> Iterator[PgCluster]:
    """A PostgreSQL server of this module's own (the shared one is never touched)."""
    reason = PgCluster.unavailable()
    if reason is not None:
        pytest.skip(reason)
    server = PgCluster().init()
    try:
        server.start()
        yield server
    finally:
        server.destroy()


@pytest.fixture
def fault_db(cluster: PgCluster) -> str:
    """A fresh database on the module's server."""
    if not cluster.running:
        cluster.start()
    return cluster.create_database()


def _assert_kept_every_promise(result: ScenarioResult) -> None:
    """Every acknowledged question answered exactly once, every acknowledged rating stored, no answer row left
    pending whose reply was posted (`Ledger.problems` names the events behind each failure)."""
    # the kill cut deliveries and left acknowledged questions unanswered (else the test would prove nothing)
    assert result.notes["acked_before_redelivery"] < result.ledger.events_sent, result.notes
    assert result.notes["at_kill"]["acked_unanswered"] >= 1, result.notes
    if result.ledger.problems():
        pytest.fail(result.failure_report(), pytrace=False)


async def test_kill_mid_burst_http_restart_redeliver(standin: SlackStandIn, fault_db: str, tmp_path: Path) -> None:
    result = await run_kill_scenario(
        name="kill-http", standin=standin, mode="http", db_url=fault_db, work_dir=tmp_path, kill_at=0.5, **SIZES
    )
    _assert_kept_every_promise(result)


async def test_kill_mid_burst_socket_mode_restart_redeliver(
    standin: SlackStandIn, fault_db: str, tmp_path: Path
) -> None:
    result = await run_kill_scenario(
        name="kill-socket", standin=standin, mode="socket", db_url=fault_db, work_dir=tmp_path, kill_at=0.5, **SIZES
    )
    _assert_kept_every_promise(result)


async def test_two_replicas_one_killed_survivor_takes_over(
    standin: SlackStandIn, fault_db: str, tmp_path: Path
) -> None:
    result = await run_kill_scenario(
        name="two-replicas",
        standin=standin,
        mode="http",
        db_url=fault_db,
        work_dir=tmp_path,
        kill_at=0.5,
        replicas=2,
        restart=False,
        **{**SIZES, "delay_s": 0.5},  # each replica takes half the load: slower answers keep work in flight
    )
    assert not result.replicas[0].alive and result.replicas[0].starts == 1  # killed, never restarted
    _assert_kept_every_promise(result)


async def test_database_outage_under_load(
    standin: SlackStandIn, cluster: PgCluster, fault_db: str, tmp_path: Path
) -> None:
    result = await run_db_outage(
        name="db-outage",
        standin=standin,
        cluster=cluster,
        db_url=fault_db,
        work_dir=tmp_path,
        interval_s=0.5,
        before_s=2.0,
        outage_s=8.0,
        after_s=3.0,
        settle_s=25.0,
    )
    assert len(result.notes["outage"]) >= 12, result.notes  # ~16 questions sent while the database was down
    if outage_problems(result):
        pytest.fail(result.failure_report(answered_turns_recorded=True), pytrace=False)
