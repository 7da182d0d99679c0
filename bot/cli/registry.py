"""`supportbot model`: the model registry: list versions, show one, promote one, roll back.

Promotion is one database transaction (`Repository.promote`); running bots notice the new production
version within RELOAD_INTERVAL_S and switch to it without a restart. A version is only promoted after it
loads as a running bot would load it (`bot.versions.load_registered`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from bot.cli.common import settings
from storage.errors import StorageError
from storage.models import ModelVersion
from storage.repository import Repository
from training.locations import HTML_FILE, REPORT_DIR, REPORT_FILE, located


def _repository() -> Repository:
    current = settings()
    return Repository(current.db_url, mask_pii=current.pii_masking)


def _metric(model: ModelVersion, name: str) -> str:
    """A metric on the frozen evaluation set; else its validation figure, marked (val)."""
    metrics = model.metrics or {}
    value = metrics.get(name)
    if isinstance(value, int | float):
        return f"{value:.3f}"
    validation = metrics.get("validation")
    value = validation.get(name) if isinstance(validation, dict) else None
    return f"{value:.3f} (val)" if isinstance(value, int | float) else "-"


def _when(model: ModelVersion) -> str:
    return f"{model.created_at:%Y-%m-%d %H:%M}" if model.created_at else "-"


def _report_path(model: ModelVersion) -> Path | None:
    path = located(model, settings().models_dir) / REPORT_DIR / REPORT_FILE
    return path if path.is_file() else None


def _get(repo: Repository, version: str) -> ModelVersion:
    model = repo.get_model(version)
    if model is None:
        raise StorageError(f"no model version {version!r} in the registry; see `supportbot model list`")
    return model


def _check_loads(model: ModelVersion) -> None:
    """Refuse (exit 1, one line) a version that a running bot would refuse to load."""
    from bot.versions import load_registered

    try:
        load_registered(model, settings().models_dir)
    except Exception as exc:
        problem = " ".join(str(exc).split()) or exc.__class__.__name__
        typer.secho(f"error: {model.version} does not load, not promoted: {problem}", fg=typer.colors.RED, err=True)
        raise typer.Exit(1) from None


def _promote(repo: Repository, model: ModelVersion, verb: str) -> None:
    current = repo.production_model()
    _check_loads(model)
    repo.promote(model.version)
    was = f" (was {current.version})" if current else ""
    typer.echo(
        f"{verb}: production is now {model.version}{was}; running bots switch to it within "
        f"{settings().reload_interval_s:g} s."
    )


def register(app: typer.Typer) -> None:
    """Add the `model` command group to the main app."""
    model_app = typer.Typer(
        name="model",
        help="The model registry: list versions, show one, import one, promote one, roll back to the previous one.",
        no_args_is_help=True,
    )
    app.add_typer(model_app, name="model")

    @model_app.command("list")
    def list_models() -> None:
        """Every registered version, newest first, with its evaluation accuracy and macro-F1."""
        with _repository() as repo:
            models = repo.models()
        if not models:
            typer.echo("no model versions yet: run `supportbot retrain` (or `supportbot ask`) to train the first one.")
            return
        table = Table(box=None, pad_edge=False)
        for column in ("version", "status", "created (UTC)", "accuracy", "macro-F1", "on disk"):
            table.add_column(column, justify="right" if column in ("accuracy", "macro-F1") else "left")
        for model in models:
            style = "bold green" if model.status == "production" else None
            on_disk = "yes" if located(model, settings().models_dir).is_dir() else "pruned"
            table.add_row(
                model.version,
                model.status,
                _when(model),
                _metric(model, "accuracy"),
                _metric(model, "macro_f1"),
                on_disk,
                style=style,
            )
        Console(width=160).print(table)

    @model_app.command("show")
    def show(
        version: Annotated[str, typer.Argument(help="A version from `supportbot model list`.")],
        as_json: Annotated[bool, typer.Option("--json", help="Print the registry entry as JSON.")] = False,
    ) -> None:
        """One version: status, metrics, dataset hash, where its files and report are."""
        with _repository() as repo:
            model = _get(repo, version)
            run = next((r for r in repo.training_runs(limit=500) if r.candidate_version == model.version), None)
        report = _report_path(model)
        page = report.with_name(HTML_FILE) if report and report.with_name(HTML_FILE).is_file() else None
        if as_json:
            entry: dict[str, Any] = model.model_dump(mode="json")
            entry["report_path"] = str(report) if report else None
            entry["report_html"] = str(page) if page else None
            typer.echo(json.dumps(entry, indent=2))
            return
        metrics = dict(model.metrics or {})
        per_intent = metrics.pop("per_intent_f1", None)
        typer.echo(f"version:       {model.version}")
        typer.echo(f"status:        {model.status}")
        typer.echo(f"created:       {_when(model)} UTC")
        if model.promoted_at:
            typer.echo(f"promoted:      {model.promoted_at:%Y-%m-%d %H:%M} UTC")
        where = located(model, settings().models_dir)
        typer.echo(f"path:          {where}" + ("" if where.is_dir() else "  (pruned: not on disk)"))
        typer.echo(f"dataset hash:  {model.dataset_hash}")
        typer.echo(f"report:        {report or '-'}")
        if page:
            typer.echo(f"report page:   {page} (open it in a browser: one file, plots included)")
        for name, value in metrics.items():
            shown = f"{value:.4f}" if isinstance(value, float) else value
            typer.echo(f"{name + ':':<22} {shown}")
        if run is not None:
            typer.echo(f"training run:  #{run.id} ({run.trigger}, {run.status})")
            reasons = (run.metrics or {}).get("reasons") or ([run.error] if run.error else [])
            for reason in reasons:
                typer.echo(f"  - {reason}")
        if isinstance(per_intent, dict) and per_intent:
            worst = sorted(per_intent.items(), key=lambda item: (item[1] if item[1] is not None else 0, item[0]))
            typer.echo("lowest per-intent F1: " + ", ".join(f"{k} {v:.3f}" for k, v in worst[:5] if v is not None))

    @model_app.command("promote")
    def promote(version: Annotated[str, typer.Argument(help="The version to put in production.")]) -> None:
        """Put VERSION in production (after checking that it loads); the previous one is retired."""
        with _repository() as repo:
            model = _get(repo, version)
            if model.status == "production":
                typer.echo(f"{version} is already in production.")
                return
            _promote(repo, model, "promoted")

    @model_app.command("import")
    def import_model(
        directory: Annotated[Path, typer.Argument(help="A version directory (model/, index/, manifest.json).")],
    ) -> None:
        """Register a version directory from elsewhere (another data dir, a backup) as a candidate, after checking
        that it loads; it is copied into this data dir's models folder. Then `supportbot model promote VERSION`."""
        from bot.versions import import_version, read_manifest
        from training.locations import stored_path

        current = settings()
        with _repository() as repo:
            version = str(read_manifest(directory)["version"])
            if repo.get_model(version) is not None:
                raise StorageError(
                    f"version {version} is already in this registry; see `supportbot model show {version}`"
                )
            version, path = import_version(current.models_dir, directory)
            manifest = read_manifest(path)
            repo.register_model(
                version,
                path=stored_path(path, current.models_dir),
                metrics=dict(manifest.get("metrics") or {}),
                dataset_hash=str(manifest.get("dataset_hash") or ""),
                status="candidate",
            )
        typer.echo(f"imported {version} as a candidate ({path}); serve it with `supportbot model promote {version}`")

    @model_app.command("rollback")
    def rollback() -> None:
        """Re-promote the newest retired version created before the production one (each call walks one back)."""
        with _repository() as repo:
            target = repo.previous_production()
            if target is None:
                raise StorageError(
                    "nothing to roll back to: no retired version older than the production one in the registry"
                )
            _promote(repo, target, "rolled back")
