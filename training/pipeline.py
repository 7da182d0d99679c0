"""The one model lifecycle: every trained model version is made here, whoever asks for it.

The nightly job, the first-run bootstrap and `supportbot train` (`bot.retrain`) call `Pipeline.candidate`: train a
candidate with the injected build step, evaluate it and production on the same frozen evaluation set, apply the
gate (`training.gate`), write the report (`training.report`), register the candidate in the registry, then
promote it (one transaction; running bots hot-reload) or mark it rejected, and record the run. Plain values in:
the steps that know the disk layout of a version (build one, load one) are injected.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

from storage.models import ModelVersion, TrainingRun
from storage.repository import Repository
from training.calibration import DecisionPolicy
from training.config import TrainingConfig
from training.data import Example
from training.encoder import resolve_device
from training.evaluate import EvalReport, evaluate
from training.feedback import FeedbackDataset
from training.gate import Decision, GatePolicy, Scores, decide
from training.locations import REPORT_DIR, located, stored_path
from training.model import IntentModel
from training.report import HistoryPoint, confusion_from_eval, write_report
from training.text import normalise_text

log = logging.getLogger(__name__)

"""The report's folder inside the candidate's version directory."""

Status = Literal["promoted", "rejected", "candidate", "nothing_to_do"]


class BuildFn(Protocol):
    """Trains and writes a complete version directory (`bot.versions.build_version`; tests inject bad trainers)."""

    def __call__(
        self,
        models_dir: str | Path,
        version: str,
        *,
        train_examples: Sequence[Example],
        val_examples: Sequence[Example] | None,
        training_config: TrainingConfig,
        kb_documents: Sequence[Any],
        extra_answers: Mapping[str, str] | None = None,
        policy: DecisionPolicy | None = None,
        log_out_of_scope: Sequence[str] = (),
        progress: bool = True,
    ) -> Path: ...


class LoadFn(Protocol):
    """Loads the intent model of a version directory (`bot.versions.load_version(...).model`)."""

    def __call__(self, path: str | Path) -> IntentModel: ...


@dataclass
class RetrainResult:
    """What one run did.

    Attributes:
        status: `promoted`, `rejected`, `candidate` (registered for a person to promote) or `nothing_to_do`.
        message: one line for people (the CLI prints it).
        version: the candidate's version (None when nothing was trained).
        production: the production version after the run.
        previous: the production version before the run.
        decision: the gate's decision.
        report_path: the report's `report.md`.
        run_id: the recorded `TrainingRun` (None for nothing to do).
        metrics: what was recorded with the run.
    """

    status: Status
    message: str
    version: str | None = None
    production: str | None = None
    previous: str | None = None
    decision: Decision | None = None
    report_path: Path | None = None
    run_id: int | None = None
    metrics: dict[str, Any] = field(default_factory=dict)


class Pipeline:
    """Makes candidates for one registry.

    Args:
        repo: The registry and the frozen evaluation set.
        models_dir: Where version directories are built.
        build: Trains and writes a version directory.
        load: Loads a version's intent model.
        gate: When a candidate beats production.
        operating: The decision policy for a measured out-of-scope share (None: the configured one).
        progress: Show training progress bars.
        echo: Called with one line per step.
    """

    def __init__(
        self,
        repo: Repository,
        *,
        models_dir: Path,
        build: BuildFn,
        load: LoadFn,
        gate: GatePolicy,
        operating: Callable[[float | None], DecisionPolicy],
        progress: bool = True,
        echo: Callable[[str], None] = log.info,
    ) -> None:
        self.repo = repo
        self.models_dir = models_dir
        self.build = build
        self.load = load
        self.gate = gate
        self.operating = operating
        self.progress = progress
        self.echo = echo
        self.timings: dict[str, float] = {}

    def candidate(
        self,
        run: TrainingRun,
        version: str,
        production: ModelVersion | None,
        dataset: FeedbackDataset,
        documents: Sequence[Any],
        config: TrainingConfig,
        metrics: dict[str, Any],
        *,
        val_examples: Sequence[Example] | None = None,
        promote: bool = True,
    ) -> RetrainResult:
        """Train `version`, evaluate it and `production` on the frozen set, gate, register, promote or reject, and
        record the outcome on `run` (metrics are added to `metrics`).

        `val_examples` calibrate the operating point (None: carved from training); with `promote` False the
        candidate is registered and reported with the gate's verdict but left for a person to promote."""
        assert run.id is not None
        if dataset.new_eval:
            added = self.repo.add_eval_examples(dataset.new_eval)
            self.echo(f"frozen evaluation set: {added} new examples set aside (never trained on)")
        eval_set = [Example(normalise_text(row.text), row.label) for row in self.repo.eval_examples()]
        for intent in dataset.intents_without_answer:
            self.echo(f"warning: new intent {intent!r} has no agent-written answer; the bot will hand it off")

        counts = dataset.provenance
        self.echo(
            f"training candidate {version} on {len(dataset.train)} examples ({counts['train_seed']} seed, "
            f"{counts['train_agent_correction']} agent corrections, {counts['train_agent_confirmation']} agent "
            f"confirmations, {counts['train_customer']} customer ratings; {len(dataset.labels)} labels"
            + (f", new: {', '.join(dataset.new_intents)}" if dataset.new_intents else "")
            + f"), {len(documents)} knowledge-base documents, device {resolve_device(config.device)}"
        )
        operating = self.operating(dataset.oos_share)
        share_origin = "measured from agent labels" if dataset.oos_share is not None else "OOS_SHARE"
        self.echo(
            f"operating point: wrong answer = {operating.wrong_answer_cost:g} hand-offs, out-of-scope share "
            f"{operating.oos_share:.0%} ({share_origin}), {len(dataset.calibration_oos)} agent-labelled "
            "out-of-scope questions to calibrate on"
        )
        metrics["oos_share"] = {"value": operating.oos_share, "origin": share_origin}
        with self.timed("train_s"):
            path = self.build(
                self.models_dir,
                version,
                train_examples=dataset.train,
                val_examples=val_examples,
                training_config=config,
                kb_documents=documents,
                extra_answers=dataset.intent_answers,
                policy=operating,
                log_out_of_scope=dataset.calibration_oos,
                progress=self.progress,
            )

        self.echo(f"evaluating candidate and production on {len(eval_set)} frozen evaluation examples")
        with self.timed("eval_s"):
            candidate = self.load(path)
            candidate_report = evaluate(candidate, eval_set)
            candidate_scores = Scores.from_eval(candidate_report, candidate.labels)
            operating_point = dict(candidate.info.get("decision") or {})
            production_report, production_scores, notes = self._evaluate_production(production, eval_set)
            del candidate

        decision = decide(candidate_scores, production_scores, self.gate)
        if production is not None and production_scores is None:  # not "no production yet": it did not load
            decision = dataclasses.replace(decision, reasons=[*notes, "promoted without a comparison"])
        metrics |= {
            "decision": "promote" if decision.promote else "reject",
            "reasons": decision.reasons,
            "checks": [dataclasses.asdict(c) for c in decision.checks if c.name == "overall" or not c.passed],
            "candidate": _summary(candidate_report),
            "production": _summary(production_report) if production_report else None,
        }
        version_metrics = {
            **_summary(candidate_report),
            "per_intent_f1": dict(candidate_scores.per_intent_f1),
            "train_examples": len(dataset.train),
            "labels": len(dataset.labels),
            "new_intents": dataset.new_intents,
            "production_accuracy": production_report.accuracy if production_report else None,
            "production_macro_f1": production_report.macro_f1 if production_report else None,
            "gate": metrics["decision"],
        }
        self.repo.register_model(
            version,
            path=stored_path(path, self.models_dir),
            metrics=version_metrics,
            dataset_hash=dataset.hash,
            status="candidate",
        )
        report_path = write_report(
            path / REPORT_DIR,
            candidate_version=version,
            candidate=candidate_scores,
            candidate_confusion=confusion_from_eval(candidate_report),
            decision=decision,
            production_version=production.version if production else None,
            production=production_scores,
            production_confusion=confusion_from_eval(production_report) if production_report else None,
            provenance=dataset.provenance,
            new_intents=dataset.new_intents,
            history=self._history(),
            operating_point=operating_point,
            notes=[*notes, *self._timing_notes()],
        )

        compared = (
            f"accuracy {_pct(candidate_report.accuracy)}"
            + (
                f" (production {production.version} {_pct(production_report.accuracy)})"
                if production and production_report
                else ""
            )
            + f" on {len(eval_set)} evaluation examples"
        )
        after: str | None = production.version if production else None
        if not promote:
            status: Status = "candidate"
            verdict = "the gate would promote it" if decision.promote else "the gate would not promote it"
            reasons = "" if decision.promote else " (" + "; ".join(decision.reasons) + ")"
            message = (
                f"registered {version} as a candidate: {compared}; {verdict}{reasons}. Serve it with "
                f"`supportbot model promote {version}`"
            )
        elif decision.promote:
            self.repo.promote(version)
            status = "promoted"
            after = version
            message = f"promoted {version}: {compared}" + (
                f"; new intents: {', '.join(dataset.new_intents)}" if dataset.new_intents else ""
            )
        else:
            self.repo.set_model_status(version, "rejected")
            status = "rejected"
            message = f"rejected {version}, production stays {after}: " + "; ".join(decision.reasons)
        self.repo.finish_training_run(
            run.id,
            status=status,
            candidate_version=version,
            metrics=metrics | {"timings": dict(self.timings)},
            report_path=str(report_path),
        )
        self.echo(message)
        self.echo(f"report: {report_path}")
        return RetrainResult(
            status,
            message,
            version=version,
            production=after,
            previous=production.version if production else None,
            decision=decision,
            report_path=report_path,
            run_id=run.id,
            metrics=metrics,
        )

    def _evaluate_production(
        self, production: ModelVersion | None, eval_set: Sequence[Example]
    ) -> tuple[EvalReport | None, Scores | None, list[str]]:
        if production is None:
            return None, None, []
        try:
            loaded = self.load(located(production, self.models_dir))
        except Exception as exc:
            note = f"production {production.version} cannot be loaded ({one_line(exc)}): not compared"
            log.warning(note)
            return None, None, [note]
        report = evaluate(loaded, eval_set)
        return report, Scores.from_eval(report, loaded.labels), []

    def _history(self) -> list[HistoryPoint]:
        points = []
        for model in reversed(self.repo.models()):
            metrics = model.metrics or {}
            points.append(
                HistoryPoint(
                    model.version,
                    model.created_at,
                    _number(metrics.get("accuracy")),
                    _number(metrics.get("macro_f1")),
                    model.status,
                )
            )
        return points

    def timed(self, name: str) -> _Timer:
        """Add the seconds the block takes to `timings[name]`."""
        return _Timer(self.timings, name)

    def _timing_notes(self) -> list[str]:
        return [f"{name.removesuffix('_s')}: {seconds:.1f} s" for name, seconds in self.timings.items()]


class _Timer:
    def __init__(self, into: dict[str, float], name: str) -> None:
        self.into, self.name = into, name

    def __enter__(self) -> None:
        self.start = time.perf_counter()

    def __exit__(self, *exc: object) -> None:
        self.into[self.name] = self.into.get(self.name, 0.0) + time.perf_counter() - self.start


def _summary(report: EvalReport) -> dict[str, Any]:
    return {
        "accuracy": report.accuracy,
        "macro_f1": report.macro_f1,
        "eval_examples": report.examples,
        "coverage": report.coverage,
        "answered_precision": report.answered_precision,
        "threshold": report.threshold,
        "score": report.score,
        "clarified": report.clarified,
        "out_of_scope_recall": report.out_of_scope_recall,
        "outcomes": dict(sorted(Counter(report.outcomes_by_question).items())),
        "model_version": report.model_version,
    }


def _number(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) else None


def _pct(value: float) -> str:
    return f"{100 * value:.1f}%"


def one_line(exc: BaseException) -> str:
    """The exception's message on one line (its class name when it has none)."""
    text = " ".join(str(exc).split())
    return text or exc.__class__.__name__
