"""Shared fixtures: databases (SQLite and PostgreSQL) and a ready `Repository`.

Database fixtures for everyone:

* `db_url`: a migrated, empty database; parametrized over SQLite (a file in tmp_path) and PostgreSQL
  (`TEST_DATABASE_URL`). PostgreSQL uses one fresh database per test session (created here, dropped at
  the end) whose tables are emptied before each test. Without `TEST_DATABASE_URL` the PostgreSQL
  variants are skipped.
* `repo`: a `Repository` on `db_url` (PII masking on), closed after the test.
* `empty_db_url`: like `db_url` but never migrated (an empty SQLite path / a fresh PostgreSQL database).
* `pg_url`: a fresh, empty PostgreSQL database of its own for one test, dropped afterwards.
* `sqlite_url`: a migrated, empty SQLite database only.

Isolation for everyone (autouse, nothing to request): every test runs with none of the variables the settings
read (each `Settings` field's name, `SUPPORTBOT_*`, `SLACK_*`) and no proxy in the environment, in a working
directory of its own (`tmp_path`, so no developer's `.env` is found: `Settings` reads `.env` relative to the
working directory), with the CLI's cached settings cleared before and after. Module- and session-scoped
fixtures get the same environment and a session working directory. A test sets what it needs with
`monkeypatch.setenv`; shared builders are in `tests/factories.py`.
"""

from __future__ import annotations

import os

# Before anything imports torch: OpenMP threads that spin while waiting starve each other (and pytest's own
# worker processes) on a small shared CI machine; passive waiting made tiny training runs ~4x faster here.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from pydantic_settings import BaseSettings
from sqlalchemy import create_engine
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool
from sqlmodel import SQLModel

import storage.models  # noqa: F401  (the tables to empty between tests)
from bot.settings import Settings
from storage.db import parse_url, upgrade
from storage.repository import Repository

PG_ENV = "TEST_DATABASE_URL"
PG_SKIP_REASON = (
    f"{PG_ENV} is not set: PostgreSQL tests skipped "
    "(set it to e.g. postgresql+psycopg://postgres@127.0.0.1:5432/test; CI does)"
)


SETTINGS_PREFIXES = ("SUPPORTBOT_", "SLACK_")
PROXY_VARS = frozenset({"HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"})  # slack_sdk would send loopback traffic there


def _settings_env_names(settings: type[BaseSettings] = Settings) -> frozenset[str]:
    """The variables `settings` reads (pydantic-settings matches them case-insensitively, without a prefix)."""
    prefix = str(settings.model_config.get("env_prefix") or "").upper()
    return frozenset(prefix + name.upper() for name in settings.model_fields)


SETTINGS_VARS = _settings_env_names()


def _is_isolated_away(name: str) -> bool:
    upper = name.upper()
    return upper in SETTINGS_VARS or upper in PROXY_VARS or upper.startswith(SETTINGS_PREFIXES)


def _isolate(patch: pytest.MonkeyPatch, cwd: Path) -> None:
    for name in [name for name in os.environ if _is_isolated_away(name)]:
        patch.delenv(name)
    patch.chdir(cwd)


@pytest.fixture(scope="session", autouse=True)
def _isolated_session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """The clean environment and a session working directory, for module- and session-scoped fixtures."""
    with pytest.MonkeyPatch.context() as patch:
        _isolate(patch, tmp_path_factory.mktemp("cwd"))
        yield


@pytest.fixture(autouse=True)
def _isolated(_isolated_session: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """No settings variable or proxy in the environment, `tmp_path` as the working directory (no stray `.env`),
    and the CLI's settings read afresh."""
    from bot.cli import common

    cached = common.settings  # kept: a test may replace `common.settings` (monkeypatch undoes that after us)
    _isolate(monkeypatch, tmp_path)
    cached.cache_clear()
    yield
    cached.cache_clear()


def _pg_server_url() -> str | None:
    return os.environ.get(PG_ENV) or None


@contextmanager
def fresh_pg_database(prefix: str = "supportbot_test") -> Iterator[str]:
    """Create a uniquely named PostgreSQL database on the TEST_DATABASE_URL server; drop it afterwards."""
    server = _pg_server_url()
    if server is None:
        pytest.skip(PG_SKIP_REASON)
    base = parse_url(server)
    name = f"{prefix}_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    try:
        with admin.connect() as connection:
            connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
        try:
            yield base.set(database=name).render_as_string(hide_password=False)
        finally:
            with admin.connect() as connection:
                connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        admin.dispose()


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A fresh, empty PostgreSQL database for this test only (skipped without TEST_DATABASE_URL)."""
    with fresh_pg_database() as url:
        yield url


@pytest.fixture(scope="session")
def _pg_session_url() -> Iterator[str]:
    """One migrated PostgreSQL database for the whole session."""
    with fresh_pg_database() as url:
        upgrade(url)
        yield url


@pytest.fixture(scope="session")
def _sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated, empty SQLite file that tests copy (migrating once is much faster than per test)."""
    path = tmp_path_factory.mktemp("sqlite-template") / "supportbot.db"
    upgrade(f"sqlite:///{path}")
    return path


def _empty_all_tables(url: str) -> None:
    """Delete every row and restart the ids (DELETE is much faster than TRUNCATE on tiny tables)."""
    engine = create_engine(make_url(url), poolclass=NullPool)
    try:
        with engine.begin() as connection:
            connection.exec_driver_sql("SET LOCAL lock_timeout = '10s'")
            for table in reversed(SQLModel.metadata.sorted_tables):
                connection.exec_driver_sql(f'DELETE FROM "{table.name}"')
                connection.exec_driver_sql(f"SELECT setval(pg_get_serial_sequence('{table.name}', 'id'), 1, false)")
    finally:
        engine.dispose()


@pytest.fixture
def sqlite_url(_sqlite_template: Path, tmp_path: Path) -> str:
    """A migrated, empty SQLite database file in tmp_path."""
    path = tmp_path / "db" / "supportbot.db"
    path.parent.mkdir()
    shutil.copyfile(_sqlite_template, path)
    return f"sqlite:///{path}"


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest) -> str:
    """A migrated, empty database: SQLite, then PostgreSQL (skipped without TEST_DATABASE_URL)."""
    if request.param == "sqlite":
        return str(request.getfixturevalue("sqlite_url"))
    if _pg_server_url() is None:
        pytest.skip(PG_SKIP_REASON)
    url = str(request.getfixturevalue("_pg_session_url"))
    _empty_all_tables(url)
    return url


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def empty_db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A database that was never migrated: a SQLite path not yet created, or a fresh PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'new' / 'supportbot.db'}"
    return str(request.getfixturevalue("pg_url"))


@pytest.fixture
def repo(db_url: str) -> Iterator[Repository]:
    """A Repository (PII masking on) on an empty, migrated database."""
    repository = Repository(db_url)
    try:
        yield repository
    finally:
        repository.close()
