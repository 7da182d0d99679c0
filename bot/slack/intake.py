"""Nothing acknowledged is lost: work is stored before Slack is told it arrived, and kept until it is done.

A Bolt middleware (`Intake.middleware`, run before any listener and so before the acknowledgement) turns
each payload that carries work (`bot.slack.work.work_of`) into a `Claim`:

* stored in the database's inbox (`Repository.accept`), claimed by this worker for a lease; or
* when the database cannot be reached, appended to the local spool (`storage.spool.Spool`, one SQLite file
  in the data directory, on disk before the ack); or
* when even that fails, marked refused: the listener tells the person in the thread to try again.

A re-delivered event whose work is already held by someone is acknowledged and dropped (the `event_id` is
the inbox's key). The listener (or, after a crash, `bot.slack.recovery`) carries the work out with
`carry_out`, which removes it once done, or leaves it for a later sweep.

While the database is away every store write that fails is kept in the spool too (`spool_turn`,
`spool_mark`, in the form of `bot.slack.turns`); `flush` replays the spool in order once it is back. Outages
are logged once when they start and once when they end (`StoreHealth`), never as a traceback per event.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from slack_bolt.context.async_context import AsyncBoltContext

from bot.slack.turns import store_mark, store_turn
from bot.slack.work import Work, work_of
from storage.errors import StorageError, StoreUnavailable
from storage.models import utcnow
from storage.privacy import mask_pii
from storage.repository import Repository
from storage.spool import Spool, SpoolItem

logger = logging.getLogger(__name__)

CLAIM = "supportbot_claim"
"""The Bolt context key holding the request's `Claim` (absent: the payload carries no work, or a duplicate)."""
REFUSED = "supportbot_refused"
"""The Bolt context key set when the work could be stored nowhere (the listener says so in the thread)."""
PROBE_EVERY_S = 2.0
"""While the database is down, how often a request may try it again (the others go straight to the spool)."""


@dataclass
class Claim:
    """Work this worker holds: stored in the inbox (`spooled` None) or in the local spool (its item id)."""

    work: Work
    received_at: datetime
    attempts: int = 0
    """How many times it was claimed before (0: the first delivery, handled live)."""
    spooled: int | None = None
    finished: bool = False
    """Its inbox item was already removed, with the work's last write (`finish_key`)."""

    def finish_key(self) -> str | None:
        """The inbox key a last write may remove in its own transaction (None for work in the spool)."""
        return self.work.key if self.spooled is None else None

    @property
    def recovered(self) -> bool:
        """Taken over from a worker that did not finish it (or re-delivered after one)."""
        return self.attempts > 0


class StoreHealth:
    """Whether the database answered last time; logs one line when that changes."""

    def __init__(self, where: str) -> None:
        self.where = where
        self.down_since: float | None = None
        self._last_try = 0.0

    @property
    def down(self) -> bool:
        return self.down_since is not None

    def should_try(self) -> bool:
        """True when up, or when the last try is `PROBE_EVERY_S` old (one request probes, the rest spool)."""
        if not self.down or time.monotonic() - self._last_try >= PROBE_EVERY_S:
            self._last_try = time.monotonic()
            return True
        return False

    def failed(self, exc: BaseException) -> None:
        self._last_try = time.monotonic()
        if self.down_since is None:
            self.down_since = time.monotonic()
            logger.error("database unreachable (%s); answering from memory, spooling to %s", exc, self.where)

    def ok(self, spooled: int = 0) -> None:
        if self.down_since is not None:
            logger.warning(
                "database reachable again after %.0f s; %d spooled item(s) to flush",
                time.monotonic() - self.down_since,
                spooled,
            )
            self.down_since = None


class Intake:
    """Accepts work before the ack, carries it out, and keeps what the database could not take.

    Args:
        repo: the store (its inbox holds accepted work).
        spool_path: the local spool's file (opened the first time it is needed).
        worker: this process's name in claims (stable across restarts of the same replica).
        lease_s: how long a claim holds before another worker may take the work over.
        support_channel_ids: channels whose top-level messages are questions.
        mask: mask PII in what the spool keeps of what people wrote, as the database does (PII_MASKING).
    """

    def __init__(
        self,
        repo: Repository,
        *,
        spool_path: Path,
        worker: str,
        lease_s: float,
        support_channel_ids: frozenset[str],
        mask: bool = True,
    ) -> None:
        self.repo = repo
        self.spool_path = spool_path
        self.worker = worker
        self.lease_s = lease_s
        self.support_channel_ids = support_channel_ids
        self.mask = mask
        self.health = StoreHealth(str(spool_path))
        self._spool: Spool | None = None
        self._flushing = asyncio.Lock()

    @property
    def spool(self) -> Spool:
        if self._spool is None:
            self._spool = Spool(self.spool_path)
        return self._spool

    def spooled(self) -> int:
        """Items waiting in the local spool (0 when it was never opened and has no file)."""
        if self._spool is None and not self.spool_path.exists():
            return 0
        return len(self.spool)

    def close(self) -> None:
        if self._spool is not None:
            self._spool.close()
            self._spool = None

    # --- before the ack -----------------------------------------------------------------------
    async def middleware(
        self, body: dict[str, Any], context: AsyncBoltContext, next: Callable[[], Awaitable[None]]
    ) -> None:  # noqa: A002
        """Bolt middleware: store the payload's work (if any) before the listener acknowledges it."""
        work = work_of(body, bot_user_id=context.bot_user_id, support_channel_ids=self.support_channel_ids)
        if work is not None:
            try:
                claim = await self.accept(work)
            except StorageError as exc:
                logger.error(
                    "%s %s could be stored nowhere (%s); the person is told to try again", work.kind, work.key, exc
                )
                context[REFUSED] = work
            else:
                if claim is not None:
                    context[CLAIM] = claim
        await next()

    async def accept(self, work: Work) -> Claim | None:
        """Store `work`: in the inbox, else in the spool. None for a re-delivery someone else holds.

        Raises:
            StorageError: neither the database nor the spool could take it.
        """
        now = utcnow()
        if self.health.should_try():
            try:
                item = await asyncio.to_thread(
                    self.repo.accept,
                    work.key,
                    work.kind,
                    work.payload,
                    worker=self.worker,
                    lease_s=self.lease_s,
                    text=work.text,
                    received_at=now,
                )
            except StoreUnavailable as exc:
                self.health.failed(exc)
            else:
                self.health.ok(self.spooled())
                if item is None:
                    logger.debug("%s %s is already held; dropped", work.kind, work.key)
                    return None
                return Claim(work, item.received_at, item.attempts)
        kept = Work(work.key, work.kind, work.payload, self._masked(work.text))
        spool_id = await asyncio.to_thread(self.spool.put, "event", work.key, _event_body(kept, now))
        return Claim(work, now, 0, spooled=spool_id)

    # --- carrying work out --------------------------------------------------------------------
    async def carry_out(self, claim: Claim, do: Callable[[], Awaitable[bool]]) -> None:
        """Run `do` (True: done, False: try again later) and remove the work once it is done.

        A failure leaves the work where it is: its lease runs out and a sweep takes it again.
        """
        try:
            done = await do()
        except StoreUnavailable as exc:
            self.health.failed(exc)  # kept where it is (inbox or spool); done once the database is back
            return
        except Exception:
            logger.exception("%s %s failed; it stays in the inbox for another try", claim.work.kind, claim.work.key)
            return
        try:
            if claim.spooled is not None:
                if done:
                    await asyncio.to_thread(self.spool.remove, claim.spooled)
            elif not done:
                await asyncio.to_thread(self.repo.postpone, claim.work.key, delay_s=self.lease_s / 2)
            elif not claim.finished:
                await asyncio.to_thread(self.repo.done, claim.work.key)
        except StoreUnavailable as exc:
            self.health.failed(exc)  # the lease runs out; the next sweep finds the work done and removes it

    # --- what the database could not take -----------------------------------------------------
    async def spool_turn(self, claim: Claim, turn: dict[str, Any]) -> None:
        """Keep an answered question (see `store_turn` for the fields) until the database is back (the flush
        also removes the inbox's item for it)."""
        turn = {**turn, "text": self._masked(turn["text"])}
        await asyncio.to_thread(self.spool.put, "turn", claim.work.key, turn)

    def _masked(self, text: str) -> str:
        return mask_pii(text) if self.mask else text

    async def spool_mark(self, answer_id: int, mark: dict[str, Any]) -> None:
        """Keep the outcome of posting a stored answer (`mark_posted` / `mark_failed` arguments) for later."""
        await asyncio.to_thread(self.spool.put, "mark", str(answer_id), {"answer_id": answer_id, **mark})

    async def flush(self) -> int:
        """Replay the spool into the database, oldest first; stops at the first item it cannot store.

        Returns how many items reached the database.
        """
        if self.spooled() == 0:
            return 0
        async with self._flushing:
            moved = 0
            while items := await asyncio.to_thread(self.spool.items, 50):
                for item in items:
                    try:
                        await asyncio.to_thread(self._replay, item)
                    except StoreUnavailable as exc:
                        self.health.failed(exc)
                        return moved
                    except StorageError as exc:  # a value the database refuses: it never will take it
                        logger.error("spooled %s %s dropped: the database refused it (%s)", item.kind, item.key, exc)
                    await asyncio.to_thread(self.spool.remove, item.id)
                    moved += 1
            self.health.ok()
            logger.info("flushed %d spooled item(s) to the database", moved)
            return moved

    def _replay(self, item: SpoolItem) -> None:
        body = item.body
        if item.kind == "event":
            self.repo.accept(
                item.key,
                body["kind"],
                body["payload"],
                worker=self.worker,
                lease_s=0,  # due at once: the next sweep carries it out
                text=body.get("text", ""),
                received_at=datetime.fromisoformat(body["received_at"]),
            )
        elif item.kind == "turn":
            store_turn(self.repo, body)
            self.repo.done(item.key)
        elif item.kind == "mark":
            store_mark(self.repo, body)


def _event_body(work: Work, received_at: datetime) -> dict[str, Any]:
    return {"kind": work.kind, "payload": work.payload, "text": work.text, "received_at": received_at.isoformat()}
