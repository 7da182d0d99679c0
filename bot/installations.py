"""The workspaces that installed the bot (the OAuth flow), as slack_sdk's SQLAlchemy store keeps them in the bot's
own database: the store, and the two look-ups the bot makes itself, by workspace alone (a workspace in an Enterprise
Grid org is stored with the org's id, which work recovered from the inbox and the nightly job do not have).

Synchronous and free of Bolt, for the nightly job; `bot.slack.installs` runs it in worker threads for the serving bot.
"""

from __future__ import annotations

from slack_sdk.oauth.installation_store.sqlalchemy import SQLAlchemyInstallationStore
from sqlalchemy import Engine, Table, select
from sqlalchemy.exc import SQLAlchemyError


def installation_store(client_id: str, engine: Engine) -> SQLAlchemyInstallationStore:
    """slack_sdk's installation store on `engine`, its tables created if missing."""
    store = SQLAlchemyInstallationStore(client_id=client_id, engine=engine)
    create_tables(store.metadata, engine)
    return store


def create_tables(metadata: object, engine: Engine) -> None:
    """Create a slack_sdk store's tables; a replica starting at the same moment may create them first (retried)."""
    create_all = metadata.create_all  # type: ignore[attr-defined]
    try:
        create_all(engine)
    except SQLAlchemyError:
        create_all(engine)


def bot_token(store: SQLAlchemyInstallationStore, team_id: str) -> str | None:
    """The bot token `team_id`'s latest install stored (None: not installed, or its tokens were revoked)."""
    return _one(store, store.bots, "bot_token", team_id, newest=True)


def first_installer(store: SQLAlchemyInstallationStore, team_id: str) -> str | None:
    """Who installed the bot in `team_id` first, since its last uninstall (None: not installed). Pinned to the
    first, so that a member re-authorising the app later does not become the workspace's agent."""
    return _one(store, store.installations, "user_id", team_id, newest=False)


def _one(store: SQLAlchemyInstallationStore, table: Table, column: str, team_id: str, *, newest: bool) -> str | None:
    """`column` of `team_id`'s newest (or oldest) row of `table` for this app, by workspace alone."""
    order = (table.c.installed_at.desc(), table.c.id.desc()) if newest else (table.c.installed_at, table.c.id)
    query = (
        select(table.c[column])
        .where(table.c.client_id == store.client_id, table.c.team_id == team_id)
        .order_by(*order)
        .limit(1)
    )
    with store.engine.connect() as connection:
        value = connection.execute(query).scalar()
    return value or None
