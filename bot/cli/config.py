"""`supportbot config`: validate and show the effective settings (secrets hidden)."""

from __future__ import annotations

import typer

from bot.cli.common import settings


def register(app: typer.Typer) -> None:
    """Add `config` to the main app."""

    @app.command("config")
    def show_config() -> None:
        """Check the configuration (.env and environment) and print the effective values."""
        current = settings()
        for name, value in current.model_dump().items():
            typer.echo(f"{name.upper()}={value}")
        typer.echo(f"# database: {current.db_url}")
        typer.echo(f"# base model: {current.base_model_name}")
        typer.echo(f"# intents: {current.intents_path}")
        typer.echo(f"# knowledge base: {current.kb_path}")
