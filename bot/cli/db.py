"""`supportbot db`: migrate the database, copy it into another one, purge old conversations, forget a user."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Annotated

import typer

from bot.cli.common import settings
from storage import db
from storage.copy import copy_store
from storage.models import utcnow
from storage.repository import Repository

_TABLE_ORDER = ("conversations", "messages", "answers", "ratings", "handoffs", "eval_examples", "proposals")


def _describe(counts: dict[str, int]) -> str:
    """'3 conversations, 10 messages, ...' in a fixed order."""
    ordered = sorted(counts.items(), key=lambda item: _TABLE_ORDER.index(item[0]))
    return ", ".join(f"{number} {_noun(table, number)}" for table, number in ordered)


def _noun(table: str, number: int) -> str:
    """'eval_examples', 2 -> 'eval examples'; 'messages', 1 -> 'message'."""
    words = table.replace("_", " ")
    return words[:-1] if number == 1 else words


def _repository() -> Repository:
    current = settings()
    return Repository(current.db_url, mask_pii=current.pii_masking)


def _delete_confirmed(
    delete: Callable[[bool], dict[str, int]], *, nothing: str, question: str, done: str, yes: bool
) -> None:
    """Count what `delete` would remove (dry run), ask unless `yes`, delete, and report the counts."""
    planned = delete(True)
    if not any(planned.values()):
        typer.echo(f"nothing to delete: {nothing}.")
        return
    if not yes:
        typer.confirm(question.replace("{}", _describe(planned), 1), abort=True)
    typer.echo(done.replace("{}", _describe(delete(False)), 1))  # not .format: ids are user input


def register(app: typer.Typer) -> None:
    """Add the `db` command group to the main app."""
    db_app = typer.Typer(
        name="db",
        help="The database: create or migrate it, copy it into another one, purge old conversations, forget a user.",
        no_args_is_help=True,
    )
    app.add_typer(db_app, name="db")

    @db_app.command("upgrade")
    def upgrade() -> None:
        """Create the database or migrate it to this version's schema (safe to run at any time)."""
        url = settings().db_url
        before, after = db.upgrade(url)
        if before == after:
            typer.echo(f"{db.safe_url(url)} is up to date (revision {after}).")
        else:
            typer.echo(f"{db.safe_url(url)} upgraded from {before or 'an empty database'} to revision {after}.")

    @db_app.command("copy")
    def copy(
        to: Annotated[
            str,
            typer.Option(
                "--to",
                metavar="URL",
                help="The database to copy into, new or empty, e.g. postgresql+psycopg://user:password@host/supportbot.",
            ),
        ],
    ) -> None:
        """Copy the whole store (conversations, registry, inbox) from DATABASE_URL into the empty database URL.

        Stop the bot and the nightly job first. One transaction: on an error the target stays empty.
        """
        current = settings()
        source = current.db_url
        typer.echo(f"copying {db.safe_url(source)} to {db.safe_url(to)}:")
        counts = copy_store(
            source, to, echo=lambda table, rows: typer.echo(f"  {table}: {rows} row{'' if rows == 1 else 's'}")
        )
        typer.echo(
            f"copied {sum(counts.values())} rows. Now set DATABASE_URL={db.safe_url(to)} for the bot and the nightly "
            f"job and keep SUPPORTBOT_DATA_DIR={current.data_dir} where it is: the registry's models stay in "
            f"{current.models_dir}."
        )

    @db_app.command("purge")
    def purge(
        older_than: Annotated[
            int,
            typer.Option(
                "--older-than", metavar="DAYS", min=0, help="Delete conversations idle for more than DAYS days."
            ),
        ],
        yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    ) -> None:
        """Delete conversations last active more than DAYS ago, with their messages, answers and ratings."""
        cutoff = utcnow() - timedelta(days=older_than)
        what = f"conversations last active before {cutoff:%Y-%m-%d %H:%M} UTC"
        with _repository() as repo:
            _delete_confirmed(
                lambda dry_run: repo.purge_older_than(cutoff, dry_run=dry_run),
                nothing=f"no {what}",
                question="Delete {} (" + what + ")?",
                done="deleted {}.",
                yes=yes,
            )

    @db_app.command("forget-user")
    def forget_user(
        slack_user_id: Annotated[str, typer.Argument(metavar="SLACK_USER_ID", help="e.g. U012AB3CD")],
        yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    ) -> None:
        """Delete everything a user wrote or rated (their conversations, messages and ratings)."""
        with _repository() as repo:
            _delete_confirmed(
                lambda dry_run: repo.forget_user(slack_user_id, dry_run=dry_run),
                nothing=f"no data of user {slack_user_id}",
                question="Delete {} of user " + slack_user_id + "?",
                done="deleted {} of user " + slack_user_id + ".",
                yes=yes,
            )
