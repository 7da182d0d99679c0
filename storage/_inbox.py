"""Repository part: the inbox, work accepted from Slack and not yet done.

A front end writes an item before it acknowledges the event (`accept`), does the work, and deletes the item
(`done`). Every item is claimed by one worker at a time for a lease: the worker that accepted it, or, once the
lease has run out (the worker died, or gave the item back with `postpone`), whichever worker takes it with
`claim_due`. A live worker renews its claims (`renew`), so only a dead one's lapse. PostgreSQL hands out
due items with `FOR UPDATE SKIP LOCKED`, so processes sharing the database never claim the same item; SQLite
serialises writers, which gives the same guarantee on one machine.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, or_, update
from sqlalchemy import select as sa_select
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import col

from storage._base import RepositoryBase
from storage.models import InboxItem


def _due(now: datetime) -> Any:
    return or_(col(InboxItem.claimed_until).is_(None), col(InboxItem.claimed_until) < now)


class Inbox(RepositoryBase):
    """Accept, claim and finish units of work, each keyed by the event that brought it."""

    def accept(
        self,
        key: str,
        kind: str,
        payload: dict[str, Any],
        *,
        worker: str,
        lease_s: float,
        text: str = "",
        received_at: datetime | None = None,
    ) -> InboxItem | None:
        """Store a unit of work claimed by `worker` for `lease_s` seconds, in one statement.

        A key already in the inbox (a re-delivered event) is not stored twice: it is handed to `worker` if
        nobody holds it (its worker died), else None is returned and the holder does the work.

        Args:
            key: the event's unique key (Slack's `event_id`).
            kind: what to do (the caller's vocabulary, e.g. `question`).
            payload: the ids and facts the work needs (JSON; not masked: put free text in `text`).
            worker: who claims it.
            lease_s: how long the claim holds.
            text: what the person wrote (PII-masked when masking is on).
            received_at: when the event arrived (default now).

        Raises:
            StoreUnavailable: the database cannot be reached (nothing was stored).
            StorageError: an invalid value.
        """
        now = self._time(None)
        row = self._checked(
            InboxItem(
                key=key,
                kind=kind,
                payload=payload,
                text=self._free_text(text),
                received_at=self._time(received_at, "received_at"),
                claimed_by=worker,
                claimed_until=now + timedelta(seconds=lease_s),
            )
        )
        table = InboxItem.__table__  # type: ignore[attr-defined]
        values = {column.key: getattr(row, column.key) for column in table.columns if column.key != "id"}
        insert: Any = (postgresql.insert if self.dialect == "postgresql" else sqlite.insert)(table).values(**values)
        statement = insert.on_conflict_do_nothing(index_elements=["key"]).returning(*table.columns)
        with self._session() as session:
            inserted = session.execute(statement).first()
            if inserted is not None:
                return InboxItem(**inserted._mapping)
            taken = session.execute(
                update(InboxItem)
                .where(col(InboxItem.key) == row.key, _due(now))
                .values(claimed_by=worker, claimed_until=row.claimed_until, attempts=col(InboxItem.attempts) + 1)
                .returning(*table.columns)
            ).first()
            return None if taken is None else InboxItem(**taken._mapping)

    def claim_due(self, worker: str, *, lease_s: float, limit: int = 20) -> list[InboxItem]:
        """Claim up to `limit` items nobody holds (oldest first) for `lease_s` seconds."""
        now = self._time(None)
        ids = sa_select(col(InboxItem.id)).where(_due(now)).order_by(col(InboxItem.id)).limit(limit)
        if self.dialect == "postgresql":
            ids = ids.with_for_update(skip_locked=True)
        table = InboxItem.__table__  # type: ignore[attr-defined]
        statement = (
            update(InboxItem)
            .where(col(InboxItem.id).in_(ids.scalar_subquery()))
            .values(
                claimed_by=worker,
                claimed_until=now + timedelta(seconds=lease_s),
                attempts=col(InboxItem.attempts) + 1,
            )
            .returning(*table.columns)
        )
        with self._session() as session:
            rows = session.execute(statement).all()
        return sorted((InboxItem(**row._mapping) for row in rows), key=lambda item: item.id or 0)

    def renew(self, worker: str, *, lease_s: float) -> int:
        """Extend every claim `worker` holds by `lease_s` from now (a live worker keeps its work); how many."""
        statement = (
            update(InboxItem)
            .where(col(InboxItem.claimed_by) == worker)
            .values(claimed_until=self._time(None) + timedelta(seconds=lease_s))
            .execution_options(synchronize_session=False)
        )
        with self._session() as session:
            return int(session.exec(statement).rowcount)

    def release(self, worker: str) -> int:
        """Give back every claim `worker` holds (a restarted worker's earlier self is gone); how many."""
        statement = (
            update(InboxItem)
            .where(col(InboxItem.claimed_by) == worker)
            .values(claimed_by=None, claimed_until=None)
            .execution_options(synchronize_session=False)
        )
        with self._session() as session:
            return int(session.exec(statement).rowcount)

    def postpone(self, key: str, *, delay_s: float) -> None:
        """Give an item back, due again in `delay_s` seconds (its work cannot be done yet)."""
        until = self._time(None) + timedelta(seconds=delay_s)
        with self._session() as session:
            session.execute(
                update(InboxItem).where(col(InboxItem.key) == key).values(claimed_by=None, claimed_until=until)
            )

    def done(self, key: str) -> None:
        """The item's work is done: delete it (nothing happens when there is no such item)."""
        with self._session() as session:
            session.execute(delete(InboxItem).where(col(InboxItem.key) == key))

    def inbox_size(self) -> int:
        """How many items are waiting or in progress."""
        with self._session() as session:
            return int(session.scalar(sa_select(func.count()).select_from(InboxItem)) or 0)
