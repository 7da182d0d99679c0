"""`supportbot serve`: run the Slack bot (Socket Mode by default, or HTTP Events)."""

from __future__ import annotations

import asyncio
import fcntl
import socket
import uuid
from enum import StrEnum
from pathlib import Path
from typing import IO, TYPE_CHECKING

import typer

from bot.cli.common import settings
from bot.settings import ConfigError

if TYPE_CHECKING:
    from slack_bolt.async_app import AsyncApp

    from bot.answer import EngineLike
    from bot.settings import Settings
    from storage.repository import Repository


class Mode(StrEnum):
    """How Slack reaches the bot."""

    socket = "socket"
    http = "http"


def make_app(current: Settings, *, engine: EngineLike, repo: Repository, worker: str | None = None) -> AsyncApp:
    """The Bolt app configured from the settings (one `ServingOptions` crosses into `bot.slack`)."""
    from bot.options import ServingOptions
    from bot.slack import build_app

    return build_app(engine=engine, repo=repo, options=ServingOptions.from_settings(current), worker=worker)


def hold_replica(data_dir: Path) -> tuple[str, IO[str]]:
    """This replica's name and the lock that makes it the only bot serving from `data_dir`.

    The name (`DATA_DIR/replica-id`, made once) is the bot's name in the inbox's claims: a restarted bot takes
    up at once what its killed predecessor held. The lock (`DATA_DIR/serve.lock`) is released by the system
    when the process ends, however it ends.

    Raises:
        ConfigError: another `supportbot serve` holds the data directory.
    """
    data_dir.mkdir(parents=True, exist_ok=True)
    lock = (data_dir / "serve.lock").open("a+")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        lock.close()
        raise ConfigError(
            f"another supportbot serve is running with the data directory {data_dir}: stop it, or give each "
            "replica its own SUPPORTBOT_DATA_DIR (they may share DATABASE_URL)"
        ) from None
    id_file = data_dir / "replica-id"
    if not id_file.exists():
        id_file.write_text(f"{socket.gethostname()[:40]}-{uuid.uuid4().hex[:8]}\n")
    return id_file.read_text().strip()[:64], lock


def register(app: typer.Typer) -> None:
    """Add `serve` to the main app."""

    @app.command("serve")
    def serve(
        mode: Mode | None = typer.Option(None, "--mode", help="socket (default, SLACK_MODE) or http."),
        port: int | None = typer.Option(None, "--port", min=1, max=65535, help="HTTP port (default HTTP_PORT)."),
        host: str | None = typer.Option(None, "--host", help="HTTP interface (default HTTP_HOST)."),
    ) -> None:
        """Answer questions in Slack until stopped (SIGTERM / Ctrl-C finish the answers in flight)."""
        current = settings()
        if mode is not None:
            current = current.model_copy(update={"slack_mode": mode.value})
        current.require_slack()
        from bot.slack.logs import configure

        configure(current.log_level, current.log_format)  # DEBUG envelopes of slack_sdk too, masked and cut

        from bot.runtime import build_engine
        from bot.slack.server import StartError, serve_until_signalled
        from storage.repository import Repository

        worker, lock = hold_replica(current.data_dir)
        repo = Repository(current.db_url, mask_pii=current.pii_masking)
        try:  # the first run trains and promotes a model when the registry has none
            engine = build_engine(current, repo, echo=lambda line: typer.echo(line, err=True))
        except BaseException:
            repo.close()
            raise
        app_token = current.slack_app_token.get_secret_value() if current.slack_app_token else None

        def close() -> None:
            closer = getattr(engine, "close", None)
            if callable(closer):
                closer()
            repo.close()
            lock.close()

        typer.echo(f"supportbot serving Slack ({current.slack_mode} mode); Ctrl-C to stop", err=True)
        try:
            asyncio.run(
                serve_until_signalled(
                    lambda: make_app(current, engine=engine, repo=repo, worker=worker),
                    mode=current.slack_mode,
                    app_token=app_token,
                    host=host or current.http_host,
                    port=port or current.http_port,
                    on_stop=close,
                    metrics_host=current.metrics_host,
                    metrics_port=current.metrics_port,
                )
            )
        except StartError as exc:
            raise ConfigError(str(exc)) from None
