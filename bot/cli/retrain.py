"""`supportbot retrain`: the nightly job (see `bot.retrain` and docs/retraining.md).

Exit status: 0 promoted, rejected by the gate, or nothing to do; 1 failed (production unchanged; one line
on stderr); 75 another run holds the lock (try again later, or pass --wait); 143 stopped by SIGTERM (or 130 by
Ctrl-C): the run is recorded as failed, its unfinished version removed, production unchanged.
"""

from __future__ import annotations

import signal
from types import FrameType
from typing import Annotated, Any

import typer

from bot.cli.common import passive_openmp, settings


def register(app: typer.Typer) -> None:
    """Add `retrain` to the main app."""

    @app.command("retrain")
    def retrain_command(
        force: Annotated[
            bool, typer.Option("--force", help="Retrain even if nothing changed since the last run.")
        ] = False,
        wait: Annotated[
            bool, typer.Option("--wait", help="Wait for a running retrain to finish instead of exiting with 75.")
        ] = False,
        epochs: Annotated[
            int | None, typer.Option("--epochs", min=1, help="Training epochs (default: RETRAIN_EPOCHS).")
        ] = None,
        trigger: Annotated[str, typer.Option("--trigger", help="Recorded with the run, e.g. cron.")] = "cli",
        quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars; only the result line.")] = False,
    ) -> None:
        """Learn from agent corrections: train a candidate, promote it only if it is not worse than production."""
        passive_openmp()
        from bot.retrain import EXIT_FAILED, EXIT_LOCKED, RetrainError, RetrainLocked, retrain  # loads torch

        current = settings()
        from bot.slack.logs import configure

        configure(current.log_level, current.log_format, timestamps=False)
        overrides: dict[str, Any] = {"epochs": epochs} if epochs else {}
        echo = (lambda line: None) if quiet else (lambda line: typer.echo(line, err=True))

        def stop(signum: int, frame: FrameType | None) -> None:
            raise _Stopped(signum)

        signal.signal(signal.SIGTERM, stop)  # the job records the run as failed and removes its unfinished version
        try:
            result = retrain(
                current, force=force, wait=wait, trigger=trigger, training=overrides, progress=not quiet, echo=echo
            )
        except RetrainLocked as exc:
            typer.secho(f"retrain: {exc}", fg=typer.colors.YELLOW, err=True)
            raise typer.Exit(EXIT_LOCKED) from None
        except RetrainError as exc:
            typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
            raise typer.Exit(EXIT_FAILED) from None
        except _Stopped:
            typer.secho("retrain: stopped by SIGTERM; the run is recorded as failed, production unchanged", err=True)
            raise typer.Exit(143) from None
        typer.echo(result.message)


class _Stopped(KeyboardInterrupt):
    """SIGTERM, raised where the job is (a BaseException like Ctrl-C, so the job's clean-up runs)."""
