"""Copying a whole store into another database (e.g. from SQLite to PostgreSQL), ids and registry included.

`copy_store(source, target)` migrates the target, refuses one that holds any row, then copies every table of
`SQLModel.metadata` parents first, in chunks, in one transaction on the target: a failure leaves the target
empty. The source is read from one snapshot, so a consistent store is copied even if something still writes to
it. Values go through the tables' own types (JSON, `UTCDateTime`, booleans), so they read back equal; on
PostgreSQL each id sequence is moved past the copied ids. Model versions' paths are relative to the models
folder, so the registry stays valid as long as the data dir (`SUPPORTBOT_DATA_DIR`) stays where it is.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, Table, func, insert, select, text
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import SQLModel

import storage.models  # noqa: F401  (registers the tables in SQLModel.metadata)
from storage import db
from storage.errors import StorageError

CHUNK_ROWS = 1000
"""Rows read and inserted per statement."""


def copy_store(source_url: str, target_url: str, *, echo: Callable[[str, int], None] | None = None) -> dict[str, int]:
    """Copy every row of a migrated store into an empty database, keeping ids.

    Args:
        source_url: the store to copy (left unchanged); must be at this version's schema revision.
        target_url: the database to copy into: new, or migrated and empty (it is migrated first).
        echo: called with (table, rows) after each table is written (before the one commit).

    Returns:
        Rows copied per table, parents first.

    Raises:
        StorageError: no source database, a source at another schema revision, a target that holds rows, or a
            database error (nothing was copied).

    Example:
        >>> copy_store("sqlite:////srv/supportbot/supportbot.db", "postgresql+psycopg://bot:pw@db/supportbot")
        {'conversations': 120, 'messages': 480, ...}
    """
    _check_exists(source_url)
    source = db.make_engine(source_url)
    try:
        _check_revision(source)
        target = db.make_engine(target_url)  # only now: a SQLite target's directory is created here
        try:
            db.upgrade_engine(target)
            return _copy(source, target, echo)
        finally:
            target.dispose()
    finally:
        source.dispose()


def _check_exists(url: str) -> None:
    """A SQLite source must be an existing file (connecting would create an empty one)."""
    parsed = db.parse_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database and parsed.database != ":memory:":
        path = Path(parsed.database).expanduser()
        if not path.is_file():
            raise StorageError(f"there is no SQLite database at {path}: check DATABASE_URL / SUPPORTBOT_DATA_DIR.")


def _check_revision(source: Engine) -> None:
    revision, head = db.engine_revision(source), db.head_revision()
    if revision != head:
        where = db.safe_url(source.url)
        found = f"is at revision {revision}" if revision else "has no supportbot schema"
        raise StorageError(
            f"the source database at {where} {found}, this supportbot copies revision {head}: run `supportbot db "
            "upgrade` on the source first (DATABASE_URL set to it), or upgrade supportbot if the source is newer."
        )


def _copy(source: Engine, target: Engine, echo: Callable[[str, int], None] | None) -> dict[str, int]:
    tables = SQLModel.metadata.sorted_tables
    counts: dict[str, int] = {}
    try:
        with target.connect() as writing, _snapshot(source) as reading:
            _begin_writing(writing, tables)
            _check_empty(writing, tables)
            for table in tables:
                counts[table.name] = 0
                for rows in _chunks(reading, table):
                    writing.execute(insert(table), rows)
                    counts[table.name] += len(rows)
                if echo is not None:
                    echo(table.name, counts[table.name])
            if writing.dialect.name == "postgresql":
                _reset_sequences(writing, tables)
            writing.commit()
    except SQLAlchemyError as exc:
        error = db.storage_error(exc, target.url)
        raise type(error)(f"{error} Nothing was copied.") from exc
    return counts


def _snapshot(source: Engine) -> Connection:
    """A connection that reads the source as of one moment (a read transaction; REPEATABLE READ on PostgreSQL)."""
    try:
        connection = source.connect()
        if source.dialect.name == "sqlite":
            connection.exec_driver_sql("BEGIN")  # the driver would not begin one for reads
        else:
            connection.execution_options(isolation_level="REPEATABLE READ", postgresql_readonly=True)
    except SQLAlchemyError as exc:
        raise db.storage_error(exc, source.url) from exc
    return connection


def _begin_writing(writing: Connection, tables: Sequence[Table]) -> None:
    """Take the target's write lock first, so that nothing writes between the emptiness check and the commit."""
    if writing.dialect.name == "sqlite":
        writing.exec_driver_sql("BEGIN IMMEDIATE")
    else:
        names = ", ".join(f'"{table.name}"' for table in tables)
        writing.exec_driver_sql(f"LOCK TABLE {names} IN SHARE ROW EXCLUSIVE MODE")


def _check_empty(writing: Connection, tables: Sequence[Table]) -> None:
    filled = {table.name: writing.execute(select(func.count()).select_from(table)).scalar_one() for table in tables}
    if any(filled.values()):
        rows = ", ".join(f"{number} {name}" for name, number in filled.items() if number)
        raise StorageError(
            f"the target database at {db.safe_url(writing.engine.url)} is not empty ({rows}): copy into a new or "
            "empty database; nothing was copied."
        )


def _chunks(reading: Connection, table: Table) -> Iterator[list[dict[str, Any]]]:
    """The table's rows in id order, `CHUNK_ROWS` at a time (keyset pagination), as column -> value."""
    key = table.c.id
    last: Any = None
    while True:
        query = select(table).order_by(key).limit(CHUNK_ROWS)
        if last is not None:
            query = query.where(key > last)
        try:
            rows = [dict(row._mapping) for row in reading.execute(query)]
        except SQLAlchemyError as exc:
            raise db.storage_error(exc, reading.engine.url) from exc
        if not rows:
            return
        yield rows
        last = rows[-1]["id"]


def _reset_sequences(writing: Connection, tables: Sequence[Table]) -> None:
    """Move each id sequence past the largest copied id (to 1, not yet used, for an empty table)."""
    for table in tables:
        writing.execute(
            text(
                f"SELECT setval(pg_get_serial_sequence(:table, 'id'), COALESCE(MAX(id), 1), MAX(id) IS NOT NULL) "
                f'FROM "{table.name}"'
            ),
            {"table": table.name},
        )
