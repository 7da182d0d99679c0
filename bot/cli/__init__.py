"""`supportbot` command line: one Typer app, each command group in its own module."""

from __future__ import annotations

import sys

import typer

from bot.cli import ask, config, db, kb, model, registry, retrain, review, serve
from bot.cli.common import USER_ERRORS

app = typer.Typer(
    name="supportbot",
    help="A Slack customer-service bot that answers, knows when to hand off, and learns from agents.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


@app.callback()
def _root() -> None:
    """supportbot: answers in Slack threads, hands off to humans, retrains nightly from agent feedback."""


for module in (config, db, model, registry, kb, ask, serve, retrain, review):
    module.register(app)


def main() -> None:
    """Console entry point: user errors become one line on stderr and exit status 1."""
    try:
        app()
    except USER_ERRORS as exc:
        typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
        sys.exit(1)
    except KeyboardInterrupt:
        sys.exit(130)
