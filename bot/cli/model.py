"""`supportbot train` and `supportbot eval`: train a candidate version of the intent model and measure it."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.console import Console
from rich.table import Table

from bot.cli.common import passive_openmp, settings
from training.calibration import DecisionPolicy, describe
from training.config import FIRST_MODEL, TrainingConfig
from training.data import Example, load_examples
from training.errors import DataError, ModelError

if TYPE_CHECKING:
    from bot.settings import Settings
    from training.evaluate import EvalReport
    from training.model import IntentModel

# torch-heavy modules (training.model, .train, .evaluate) load inside the commands: `--help` and the other
# commands stay fast.

_DEFAULTS = TrainingConfig(base_model="-")


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


def _warn_without_answers(current: Settings, rows: list[Example]) -> None:
    """Say when the intents trained have no curated answer in INTENTS_FILE (the catalog the bot answers from)."""
    from bot.catalog import IntentCatalog

    try:
        catalog = IntentCatalog.load(current.intents_path)
    except Exception:  # noqa: BLE001 - the catalog's own errors are reported when the bot loads it
        return
    missing = sorted({ex.label for ex in rows} - set(catalog.intents) - {current.out_of_scope_label})
    if missing:
        typer.secho(
            f"warning: {len(missing)} intents have no curated answer in INTENTS_FILE ({current.intents_path}): "
            f"{', '.join(missing[:5])}{' ...' if len(missing) > 5 else ''}; the bot cites a passage or hands off "
            "for them, and the nightly job learns from INTENTS_FILE: set INTENTS_FILE to your intents file",
            fg=typer.colors.YELLOW,
            err=True,
        )


def _train_candidate(
    current: Settings,
    config: TrainingConfig,
    train_rows: list[Example],
    val_rows: list[Example] | None,
    policy: DecisionPolicy,
    progress: bool,
) -> IntentModel:
    """Make a complete version (model + index of the knowledge base + manifest) through the one lifecycle: evaluated
    on the frozen set and gated like any candidate, registered, left for a person to promote."""
    from bot.retrain import Manual, RetrainError, retrain
    from bot.versions import MODEL_DIR
    from training.model import IntentModel

    recipe = {key: value for key, value in dataclasses.asdict(config).items() if key != "version"}
    manual = Manual(train_rows, val_rows, policy, config.version)
    try:
        result = retrain(
            current,
            wait=True,
            trigger="train",
            training=recipe,
            progress=progress,
            echo=lambda line: typer.echo(line, err=True),
            manual=manual,
        )
    except RetrainError as exc:
        raise ModelError(str(exc)) from None
    assert result.version is not None
    typer.echo(result.message)
    return IntentModel.load(current.models_dir / result.version / MODEL_DIR, device="cpu")


def print_report(report: EvalReport, console: Console, decision: dict[str, Any], worst: int = 10) -> None:
    """Print an evaluation summary, the operating point (as calibrated and as measured here) and the weakest
    intents."""
    summary = Table(title=f"Evaluation of {report.model_version} ({report.examples} examples)", show_header=False)
    summary.add_column("metric")
    summary.add_column("value", justify="right")
    summary.add_row(
        "accuracy" + (" (decision, abstention = out of scope)" if report.open_set else ""), _pct(report.accuracy)
    )
    summary.add_row("macro-F1", _pct(report.macro_f1))
    summary.add_row(f"threshold (on {report.score})", f"{report.threshold:.3f}")
    summary.add_row("coverage (answered)", _pct(report.coverage))
    summary.add_row("clarifying questions", _pct(report.clarified))
    summary.add_row("in-scope answered right directly or after one click", _pct(report.resolved))
    summary.add_row("precision of answered", _pct(report.answered_precision))
    if report.open_set:
        summary.add_row("in-scope accuracy (top label)", _pct(report.in_scope_accuracy))
        summary.add_row("out-of-scope precision", _pct(report.out_of_scope_precision))
        summary.add_row("out-of-scope recall", _pct(report.out_of_scope_recall))
        summary.add_row("AUROC in- vs out-of-scope", "-" if report.auroc is None else f"{report.auroc:.3f}")
    console.print(summary)
    typer.echo("\n".join(describe(decision)))
    if report.outcomes:
        measured = Table(title="On this data: the model's own point vs the best threshold in hindsight")
        for name in ("point", "threshold", "cost", "decision accuracy", "answered", "clarified", "oos recall"):
            measured.add_column(name, justify="left" if name == "point" else "right")
        for name, o in report.outcomes.items():
            measured.add_row(
                name,
                f"{o.threshold:.3f}",
                f"{o.cost:.3f}",
                _pct(o.decision_accuracy),
                _pct(o.answered),
                _pct(o.clarified),
                _pct(o.oos_recall),
            )
        console.print(measured)
    weakest = Table(title=f"Weakest {worst} intents by F1")
    for name in ("intent", "precision", "recall", "F1", "support"):
        weakest.add_column(name, justify="left" if name == "intent" else "right")
    for label, metrics in report.worst_intents(worst):
        weakest.add_row(label, _pct(metrics.precision), _pct(metrics.recall), _pct(metrics.f1), str(metrics.support))
    console.print(weakest)
    if report.unknown_labels:
        console.print(f"[yellow]labels unknown to the model (always wrong): {', '.join(report.unknown_labels)}[/]")
    for name, path in report.plots.items():
        typer.echo(f"{name} plot: {path}")


def register(app: typer.Typer) -> None:
    """Add `train` and `eval` to the main app."""

    @app.command("train")
    def train_command(
        data: Path | None = typer.Option(
            None, "--data", help="CSV, JSONL or intents YAML", show_default="INTENTS_FILE"
        ),
        val: Path | None = typer.Option(
            None, "--val", help="validation data", show_default="a stratified split of --data"
        ),
        standalone: Path | None = typer.Option(
            None,
            "--standalone",
            metavar="DIR",
            help="write only a model directory to DIR (no index, not registered: for `supportbot eval`)",
        ),
        frozen_encoder: bool = typer.Option(
            False, "--frozen-encoder", help="train only a head on the base encoder (seconds; the first-run recipe)"
        ),
        base_model: str | None = typer.Option(None, "--base-model", help="encoder path", show_default="BASE_MODEL"),
        init_from: Path | None = typer.Option(None, "--init-from", help="start from this model's encoder"),
        epochs: int | None = typer.Option(None, min=1, help="maximum epochs", show_default=str(_DEFAULTS.epochs)),
        batch_size: int = typer.Option(_DEFAULTS.batch_size, min=1),
        lr: float = typer.Option(_DEFAULTS.lr, min=0.0, help="encoder learning rate"),
        max_length: int = typer.Option(_DEFAULTS.max_length, min=4, max=512, help="token limit"),
        val_ratio: float = typer.Option(_DEFAULTS.val_ratio, help="validation share when --val is not given"),
        seed: int = typer.Option(_DEFAULTS.seed),
        wrong_answer_cost: float | None = typer.Option(
            None, help="a wrong answer costs this many hand-offs", show_default="WRONG_ANSWER_COST"
        ),
        oos_share: float | None = typer.Option(None, help="expected out-of-scope share", show_default="OOS_SHARE"),
        version: str | None = typer.Option(None, help="version name", show_default="v<date>-<time>"),
        device: str = typer.Option("auto", help="auto, cpu or cuda"),
        progress: bool = typer.Option(True, "--progress/--no-progress"),
    ) -> None:
        """Train the intent classifier, choose its operating point, and register it as a candidate version
        (model + knowledge-base index): promote it with `supportbot model promote VERSION`."""
        passive_openmp()
        current = settings()
        data_path = data or current.intents_path
        if not data_path.exists():
            raise DataError(f"{data_path}: training data not found; pass --data PATH or set INTENTS_FILE")
        oos = current.out_of_scope_label
        train_rows = load_examples(data_path, out_of_scope_label=oos)
        val_rows = load_examples(val, out_of_scope_label=oos) if val else None
        recipe: dict[str, Any] = dict(FIRST_MODEL) if frozen_encoder else {}
        if epochs is not None:
            recipe["epochs"] = epochs
        try:
            config = TrainingConfig(
                base_model=base_model or current.base_model_name,
                batch_size=batch_size,
                lr=lr,
                max_length=max_length,
                val_ratio=val_ratio,
                seed=seed,
                calibration_twin=current.calibration_twin,
                out_of_scope_label=oos,
                device=device,
                num_threads=current.torch_threads or None,
                init_from=str(init_from) if init_from else None,
                version=version,
                **recipe,
            )
            if wrong_answer_cost is not None:
                current = current.model_copy(update={"wrong_answer_cost": wrong_answer_cost})
            if oos_share is not None:
                current = current.model_copy(update={"oos_share": oos_share})
            policy = current.decision_policy()
        except ValueError as exc:
            raise ModelError(str(exc)) from None
        if standalone is not None:
            from training.train import train

            typer.echo(f"training on {len(train_rows)} examples from {data_path} ...")
            model = train(config, train_rows, val_rows, standalone, policy=policy, progress=progress)
            typer.echo(f"saved the model {model.version} to {standalone} (not registered; `supportbot eval` reads it)")
        else:
            _warn_without_answers(current, train_rows)
            model = _train_candidate(current, config, train_rows, val_rows, policy, progress)
        validation = model.info["validation"]
        typer.echo(
            f"  labels: {len(model.labels)}, validation: {validation.get('examples', 0)} examples, "
            f"accuracy {_pct(validation.get('accuracy'))}, best epoch {model.info['best_epoch']}, "
            f"{model.info['training_seconds']:.0f} s"
        )
        typer.echo("\n".join(describe(model.info.get("decision") or model.point.to_dict())))

    @app.command("eval")
    def eval_command(
        model_dir: Path = typer.Option(
            ...,
            "--model",
            help="a model directory: DATA_DIR/models/VERSION/model (`supportbot model show VERSION` prints the "
            "version's directory) or a `train --standalone` one",
        ),
        data: Path = typer.Option(..., "--data", help="labelled CSV, JSONL or intents YAML"),
        json_path: Path | None = typer.Option(None, "--json", help="also write the full report as JSON here"),
        plots: Path | None = typer.Option(None, "--plots", help="write confusion.png and coverage.png here"),
        quantize: bool = typer.Option(False, "--quantize", help="evaluate the int8 (CPU) variant"),
    ) -> None:
        """Evaluate a model on labelled data: accuracy, macro-F1, per-intent scores, hand-off quality."""
        from training.evaluate import evaluate
        from training.model import IntentModel

        current = settings()
        model = IntentModel.load(model_dir, threads=current.torch_threads or None, quantize=quantize)
        rows = load_examples(data, out_of_scope_label=model.out_of_scope_label)
        report = evaluate(model, rows, plots)
        print_report(report, Console(), model.info.get("decision") or model.point.to_dict())
        if json_path:
            json_path.parent.mkdir(parents=True, exist_ok=True)
            json_path.write_text(report.to_json() + "\n", encoding="utf-8")
            typer.echo(f"report: {json_path}")
