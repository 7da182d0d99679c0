"""A local durable journal for when the database is away: items written in order, read back in order.

One SQLite file on local disk (WAL, `synchronous=FULL`: an item is on disk when `put` returns), owned by one
process. The front end writes what it could not give the database (an accepted event, an answered turn) and
replays the items, oldest first, once the database is back. Items are plain JSON; the journal knows nothing
of what they mean.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from storage.errors import StorageError

_SCHEMA = """
CREATE TABLE IF NOT EXISTS items (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,
    key TEXT NOT NULL,
    body TEXT NOT NULL
)
"""


@dataclass(frozen=True)
class SpoolItem:
    """One journalled item: its place in the order, what it is, its key and its content."""

    id: int
    kind: str
    key: str
    body: dict[str, Any]


class Spool:
    """The journal at `path` (created if missing). Thread-safe; one process at a time.

    Raises:
        StorageError: the file cannot be created, read or written (the message names it).
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=5)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.execute(_SCHEMA)
        except (OSError, sqlite3.Error) as exc:
            raise StorageError(f"cannot open the local spool {path}: {exc}; check the data directory.") from None

    def _run(self, sql: str, *args: Any) -> list[tuple[Any, ...]]:
        with self._lock:
            try:
                return self._db.execute(sql, args).fetchall()
            except sqlite3.Error as exc:
                raise StorageError(f"the local spool {self.path} failed: {exc}; check the disk.") from None

    def put(self, kind: str, key: str, body: dict[str, Any]) -> int:
        """Append an item (on disk when this returns); its id orders it after every earlier one."""
        rows = self._run(
            "INSERT INTO items (kind, key, body) VALUES (?, ?, ?) RETURNING id", kind, key, json.dumps(body)
        )
        return int(rows[0][0])

    def items(self, limit: int = 100) -> list[SpoolItem]:
        """The oldest `limit` items, oldest first."""
        rows = self._run("SELECT id, kind, key, body FROM items ORDER BY id LIMIT ?", limit)
        return [SpoolItem(int(i), str(kind), str(key), json.loads(body)) for i, kind, key, body in rows]

    def remove(self, item_id: int) -> None:
        """Delete an item (it reached the database)."""
        self._run("DELETE FROM items WHERE id = ?", item_id)

    def __len__(self) -> int:
        return int(self._run("SELECT count(*) FROM items")[0][0])

    def close(self) -> None:
        with self._lock:
            self._db.close()
