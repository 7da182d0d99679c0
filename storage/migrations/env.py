"""Alembic environment for supportbot's schema.

Run through `storage.db.upgrade()`, which passes an open connection (already inside the migration's
transaction and lock) in `config.attributes["connection"]`. For authoring a new revision with the `alembic`
command line, set `sqlalchemy.url` in the configuration instead.
"""

from __future__ import annotations

from alembic import context
from sqlmodel import SQLModel

import storage.models  # noqa: F401  (registers the tables on SQLModel.metadata)
from storage.db import make_engine

target_metadata = SQLModel.metadata


def _run(connection):
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=True,  # SQLite cannot ALTER most things: rebuild tables in batch mode
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online():
    connection = context.config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    url = context.config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError("migrate through storage.db.upgrade(url), or set sqlalchemy.url for the alembic CLI")
    engine = make_engine(url)
    try:
        with engine.begin() as connection:
            _run(connection)
    finally:
        engine.dispose()


if context.is_offline_mode():
    raise RuntimeError("offline (--sql) migrations are not supported: run storage.db.upgrade(url)")
run_migrations_online()
