"""After a crash, and all along: finish the work nobody finished, and bring the spool back to the database.

A serving bot runs one `Recovery` beside its listeners. On start it gives back the claims its previous run
held (the same replica, restarted: that run is dead), then every `recovery_interval_s` (every second while
the spool holds something; at least three times per lease) it:

1. renews the claims it holds, so that work in progress stays its own however long it takes;
2. flushes the local spool into the database, oldest first (`Intake.flush`); and, once the spool is empty,
3. claims the inbox's due work (never started, or whose worker's lease ran out) and carries it out with the
   same handlers the listeners use, so a question accepted by a bot that was killed is answered once, by
   whichever replica claims it first.

Its runs are counted with the listeners' (`InFlight`), so a shutdown waits for them too. Installed in many
workspaces, each unit is carried out with its workspace's token (`bot.slack.installs.client_for`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from slack_sdk.web.async_client import AsyncWebClient

from bot.slack import installs
from bot.slack.deps import Deps
from bot.slack.inflight import InFlight
from bot.slack.intake import Claim
from bot.slack.listeners.actions import rate_click
from bot.slack.listeners.messages import answer_claim
from bot.slack.listeners.reactions import rate_reaction
from bot.slack.work import KINDS, Work
from storage.errors import StorageError, StoreUnavailable
from storage.models import InboxItem

logger = logging.getLogger(__name__)

Handler = Callable[[Deps, AsyncWebClient, Claim], Awaitable[bool]]
HANDLERS: dict[str, Handler] = {
    "question": answer_claim,
    "reaction_added": rate_reaction,
    "reaction_removed": rate_reaction,
    "rating": rate_click,
}
BATCH = 20
"""Work claimed per sweep (carried out concurrently)."""


class Recovery:
    """The sweep loop of one serving bot (`start` it once, `stop` it before the drain)."""

    def __init__(self, deps: Deps, client: AsyncWebClient, flight: InFlight | None = None) -> None:
        self.deps = deps
        self.client = client
        self.flight = flight
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="supportbot-recovery")

    async def stop(self, timeout_s: float = 10.0) -> None:
        """Stop after the sweep in progress (cancelled after `timeout_s`)."""
        self._stop.set()
        if self._task is not None:
            done, _ = await asyncio.wait({self._task}, timeout=timeout_s)
            if not done:
                self._task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._task

    async def _run(self) -> None:
        intake = self.deps.intake
        try:
            given_back = await asyncio.to_thread(self.deps.repo.release, intake.worker)
            if given_back:
                logger.warning("%d unit(s) of work left by this bot's previous run: taking them up again", given_back)
        except StoreUnavailable as exc:
            intake.health.failed(exc)
        options = self.deps.options
        while not self._stop.is_set():
            try:
                await asyncio.to_thread(self.deps.repo.renew, intake.worker, lease_s=options.recovery_lease_s)
                await self.sweep()
            except StoreUnavailable as exc:
                intake.health.failed(exc)
            except Exception:
                logger.exception("recovery sweep failed; trying again in %.0f s", options.recovery_interval_s)
            busy = intake.health.down or intake.spooled() > 0
            # claims are renewed well before they lapse, however the two settings are chosen
            pause = 1.0 if busy else min(options.recovery_interval_s, options.recovery_lease_s / 3)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), pause)

    async def sweep(self) -> int:
        """Flush the spool, then carry out the inbox's due work; how many units were carried out."""
        intake = self.deps.intake
        await intake.flush()
        if intake.spooled() > 0:
            return 0  # the database is still away, or the spool is not through yet: its turns come first
        try:
            items = await asyncio.to_thread(
                self.deps.repo.claim_due, intake.worker, lease_s=self.deps.options.recovery_lease_s, limit=BATCH
            )
        except StoreUnavailable as exc:
            intake.health.failed(exc)
            return 0
        intake.health.ok()
        if items:
            logger.info("recovering %d unit(s) of work", len(items))
            await asyncio.gather(*(self._carry_out(item) for item in items))
        return len(items)

    async def _carry_out(self, item: InboxItem) -> None:
        handler = HANDLERS.get(item.kind)
        if handler is None or item.kind not in KINDS:
            logger.error("inbox item %s has an unknown kind %r; dropped", item.key, item.kind)
            await self._drop(item)
            return
        team = item.payload.get("team_id")
        client = await installs.client_for(self.deps.installs, self.client, team if isinstance(team, str) else "")
        if client is None:
            logger.warning("inbox item %s: workspace %s uninstalled the bot; dropped", item.key, team)
            await self._drop(item)
            return
        claim = Claim(Work(item.key, item.kind, item.payload, item.text), item.received_at, item.attempts)
        intake = self.deps.intake

        async def run() -> None:
            await intake.carry_out(claim, lambda: handler(self.deps, client, claim))

        await (self.flight.track(run)() if self.flight is not None else run())

    async def _drop(self, item: InboxItem) -> None:
        """Take work that can never be carried out off the inbox."""
        with contextlib.suppress(StorageError):
            await asyncio.to_thread(self.deps.repo.done, item.key)
