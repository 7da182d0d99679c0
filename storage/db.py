"""Engines and schema migrations: SQLite (default) and PostgreSQL (psycopg 3).

`make_engine(url)` builds an engine with the settings each database needs (SQLite: WAL, foreign keys, busy
timeout; PostgreSQL: pre-ping, connect timeout). `upgrade(url)` applies the Alembic migrations shipped in
`storage/migrations` (no alembic.ini: the configuration is built here, so it works from an installed
wheel). Upgrades are serialised across processes (an advisory lock on PostgreSQL, `BEGIN IMMEDIATE` on
SQLite) and run in one transaction, so concurrent start-ups are safe and a failed upgrade changes nothing.

Every database failure leaves this package as a `StorageError` whose message says what to do; URLs in
messages never show the password.
"""

from __future__ import annotations

import os
import time
from functools import cache
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util.exc import CommandError
from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import (
    ArgumentError,
    DataError,
    IntegrityError,
    InterfaceError,
    OperationalError,
    ProgrammingError,
    SQLAlchemyError,
)
from sqlalchemy.pool import StaticPool

from storage.errors import StorageError, StoreUnavailable

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
_PG_MIGRATION_LOCK = 0x5B07_DB  # pg_advisory_xact_lock key held while migrating
_URL_HELP = "use sqlite:///path/to/supportbot.db or postgresql+psycopg://user:password@host:5432/dbname"


# --- URLs ------------------------------------------------------------------------------------------
def parse_url(url: str | URL) -> URL:
    """Parse and normalise a database URL (`postgresql://` and `postgres://` mean psycopg 3).

    Raises:
        StorageError: the URL is malformed or names a database or driver supportbot does not support.
    """
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):
        raise StorageError(f"DATABASE_URL is not a valid database URL: {_URL_HELP}.") from None
    backend, _, driver = parsed.drivername.partition("+")
    if backend == "sqlite" and driver in ("", "pysqlite"):
        return parsed
    if backend in ("postgresql", "postgres") and driver in ("", "psycopg"):
        return parsed.set(drivername="postgresql+psycopg")
    if backend in ("postgresql", "postgres"):
        raise StorageError(f"database driver {driver!r} is not supported: use postgresql+psycopg:// (psycopg 3).")
    raise StorageError(f"unsupported database URL scheme {parsed.drivername!r}: {_URL_HELP}.")


def safe_url(url: str | URL) -> str:
    """The URL as text with its password hidden (`***`), for messages and logs."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except (ArgumentError, ValueError):
        return "<unparsable database URL>"


def _sqlite_path(url: URL) -> Path | None:
    """The database file of a SQLite URL; None for an in-memory database."""
    database = url.database
    if not database or database == ":memory:" or url.query.get("mode") == "memory":
        return None
    return Path(database).expanduser()


# --- engines -------------------------------------------------------------------------------------
def make_engine(url: str | URL, *, busy_timeout_s: float = 30.0, echo: bool = False) -> Engine:
    """Create an engine for a SQLite or PostgreSQL URL.

    SQLite: creates the parent directory, turns on WAL, foreign keys and a busy timeout on every
    connection. PostgreSQL (psycopg 3): pre-pings pooled connections and times out unreachable servers.
    Connecting is lazy: an unreachable server is reported by the first query, as a StorageError.

    Args:
        url: `sqlite:///path.db`, `sqlite://` (in memory) or `postgresql+psycopg://user:pw@host/db`.
        busy_timeout_s: SQLite: how long to wait for another process's write lock.
        echo: log every SQL statement.

    Returns:
        The engine.

    Raises:
        StorageError: malformed URL, unsupported database, or an SQLite location that cannot be written.

    Example:
        >>> engine = make_engine("sqlite:///tmp/supportbot.db")
    """
    parsed = parse_url(url)
    if parsed.get_backend_name() == "sqlite":
        return _sqlite_engine(parsed, busy_timeout_s, echo)
    return create_engine(
        parsed,
        echo=echo,
        pool_pre_ping=True,
        connect_args={"connect_timeout": 3, "application_name": "supportbot"},
    )


def _sqlite_engine(url: URL, busy_timeout_s: float, echo: bool) -> Engine:
    path = _sqlite_path(url)
    connect_args: dict[str, Any] = {"timeout": busy_timeout_s, "check_same_thread": False}
    if path is None:
        engine = create_engine(url, echo=echo, connect_args=connect_args, poolclass=StaticPool)
    else:
        _check_writable(path)
        engine = create_engine(url, echo=echo, connect_args=connect_args)
    busy_ms = int(busy_timeout_s * 1000)

    @event.listens_for(engine, "connect")
    def _configure(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute(f"PRAGMA busy_timeout={busy_ms}")
            if path is not None:
                cursor.execute("PRAGMA journal_mode=WAL")
                cursor.execute("PRAGMA synchronous=NORMAL")
        finally:
            cursor.close()

    return engine


def _check_writable(path: Path) -> None:
    hint = "set SUPPORTBOT_DATA_DIR or DATABASE_URL to a writable location"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise StorageError(
            f"cannot put the SQLite database in {path.parent}: it exists and is not a directory; {hint}."
        ) from None
    except OSError as exc:
        raise StorageError(
            f"cannot create the directory {path.parent} for the SQLite database: {exc.strerror or exc}; {hint}."
        ) from None
    if path.is_dir():
        raise StorageError(f"the SQLite database path {path} is a directory; {hint}.")
    if not os.access(path.parent, os.W_OK | os.X_OK) or (path.exists() and not os.access(path, os.R_OK | os.W_OK)):
        raise StorageError(f"cannot write the SQLite database at {path}: permission denied; {hint}.")


# --- errors --------------------------------------------------------------------------------------
def storage_error(exc: SQLAlchemyError, url: str | URL) -> StorageError:
    """Translate a SQLAlchemy error into a StorageError that says what to do (no traceback, no password)."""
    where = safe_url(url)
    orig = getattr(exc, "orig", None) or exc
    detail = (str(orig).strip().splitlines() or [type(orig).__name__])[0]
    sqlite = where.startswith("sqlite")
    lowered = detail.lower()
    if "no such table" in lowered or ("relation" in lowered and "does not exist" in lowered):
        return StorageError(
            f"the database at {where} has no supportbot tables (or an old schema): run `supportbot db upgrade`."
        )
    if isinstance(exc, OperationalError | InterfaceError) or getattr(exc, "connection_invalidated", False):
        if sqlite and "locked" in lowered:
            return StorageError(
                f"the SQLite database at {where} stayed locked by another process: retry, or use PostgreSQL "
                "for several busy processes."
            )
        if sqlite:
            return StoreUnavailable(
                f"cannot use the SQLite database at {where}: {detail}; check DATABASE_URL / SUPPORTBOT_DATA_DIR "
                "(the file and its directory must be writable)."
            )
        return StoreUnavailable(
            f"cannot reach the database at {where}: {detail}; check DATABASE_URL / is PostgreSQL running?"
        )
    if isinstance(exc, IntegrityError):
        return StorageError(f"the database at {where} refused the change: {detail}")
    if isinstance(exc, DataError):
        return StorageError(f"the database at {where} refused a value: {detail}")
    if isinstance(exc, ProgrammingError):
        return StorageError(
            f"unexpected schema at {where}: {detail}; run `supportbot db upgrade` (or check DATABASE_URL)."
        )
    return StorageError(f"database error at {where}: {detail}")


# --- migrations ----------------------------------------------------------------------------------
def alembic_config(connection: Connection | None = None) -> Config:
    """An Alembic configuration for the packaged migrations (optionally bound to an open connection)."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR).replace("%", "%%"))
    config.set_main_option("path_separator", "os")
    if connection is not None:
        config.attributes["connection"] = connection
    return config


@cache
def head_revision() -> str:
    """The newest migration shipped with this version of supportbot."""
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if head is None:  # pragma: no cover - the package always ships migrations
        raise StorageError(f"no migrations found in {MIGRATIONS_DIR}: reinstall supportbot.")
    return head


def current_revision(url: str | URL) -> str | None:
    """The revision the database is at; None for a database supportbot has never migrated."""
    engine = make_engine(url)
    try:
        return engine_revision(engine)
    finally:
        engine.dispose()


def engine_revision(engine: Engine) -> str | None:
    """The revision of the database behind `engine` (None if unmigrated)."""
    try:
        with engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()
    except SQLAlchemyError as exc:
        raise storage_error(exc, engine.url) from exc


def upgrade(url: str | URL, revision: str = "head") -> tuple[str | None, str]:
    """Apply the migrations up to `revision`.

    Args:
        url: database URL.
        revision: target revision ("head" for the newest).

    Returns:
        (revision before, revision after).

    Raises:
        StorageError: unreachable database, unknown revision, or a migration that failed (nothing applied).

    Example:
        >>> upgrade("sqlite:///tmp/supportbot.db")
        (None, '0003')
    """
    engine = make_engine(url)
    try:
        return upgrade_engine(engine, revision)
    finally:
        engine.dispose()


def upgrade_engine(engine: Engine, revision: str = "head") -> tuple[str | None, str]:
    """`upgrade()` for an existing engine (the only way to migrate an in-memory SQLite database).

    On SQLite, two processes opening a brand-new database at once can get an immediate "database is locked"
    (switching to WAL or upgrading a read snapshot does not wait on the busy timeout): such an attempt is
    retried a few times before the error is reported.
    """
    attempts = 8 if engine.dialect.name == "sqlite" else 1
    for attempt in range(attempts):
        try:
            return _upgrade_once(engine, revision)
        except StorageError as exc:
            if attempt == attempts - 1 or "locked" not in str(exc):
                raise
            time.sleep(0.1 * (attempt + 1))
    raise AssertionError("unreachable")  # pragma: no cover


def _upgrade_once(engine: Engine, revision: str) -> tuple[str | None, str]:
    before = engine_revision(engine)
    target = head_revision() if revision == "head" else revision
    if before == target:
        return before, target
    try:
        with engine.connect() as connection:
            sqlite = engine.dialect.name == "sqlite"
            if sqlite:
                # Table rebuilds (batch mode) must not fire ON DELETE CASCADE; the pragma is a no-op inside a
                # transaction, so it is switched off first and checked afterwards.
                connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
                connection.commit()
                connection.exec_driver_sql("BEGIN IMMEDIATE")
            else:
                connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_MIGRATION_LOCK})
            try:
                command.upgrade(alembic_config(connection), revision)
                if sqlite and connection.exec_driver_sql("PRAGMA foreign_key_check").first() is not None:
                    raise StorageError("the migration left rows with broken references; nothing was changed.")
                connection.commit()
            finally:
                if sqlite:
                    connection.rollback()
                    connection.exec_driver_sql("PRAGMA foreign_keys=ON")
                    connection.commit()
    except CommandError as exc:
        raise StorageError(
            f"cannot migrate the database at {safe_url(engine.url)} to {revision!r}: {exc}. If the database was "
            "upgraded by a newer supportbot, upgrade supportbot."
        ) from None
    except SQLAlchemyError as exc:
        raise storage_error(exc, engine.url) from exc
    return before, engine_revision(engine) or target
