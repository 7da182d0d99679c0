"""The nightly job: learn from the logs, train a candidate, gate it against production, promote or reject.

One run (`retrain(settings)`):

1. takes the exclusive lock `data_dir/retrain.lock` (a second run fails fast with `RetrainLocked`, or waits);
2. builds the dataset (`training.feedback`): seed examples + agent corrections/confirmations + trusted
   customer ratings, the frozen evaluation set (seed test split + held-out agent-labelled questions, stored
   in the repository the first time they are seen) and the knowledge base (articles + agent-written answers);
3. stops with "nothing to do" when these inputs are identical to the last completed run's (unless `force`);
4. trains a candidate version with `bot.versions.build_version` (model + fresh index + `answers.json`);
5. evaluates candidate and production on the same frozen set, applies the gate (`training.gate`), writes the
   report (`training.report`) into the candidate's directory and registers the candidate;
6. promotes it (`Repository.promote`, one transaction; running bots hot-reload) or marks it rejected;
7. prunes old version directories (never production or the one before it) and optionally posts a summary
   to the agents' Slack channel.

Every run is recorded as a `TrainingRun` (promoted | rejected | failed). Whatever fails, production is left
as it was: the candidate's directory is removed, the run is recorded as failed and `RetrainError` says why
in one line.
"""

from __future__ import annotations

import dataclasses
import errno
import hashlib
import json
import logging
import shutil
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, Protocol

from filelock import FileLock, Timeout

from bot.settings import Settings
from bot.versions import build_version, load_version, new_version_name, prune_versions
from retrieval.documents import Document, documents_fingerprint
from retrieval.ingest import AgentAnswer, documents_from_records, load_documents
from storage.models import ModelVersion, TrainingRun
from storage.repository import Repository
from training.calibration import DecisionPolicy
from training.data import Example, dataset_hash, load_examples
from training.evaluate import EvalReport, evaluate
from training.feedback import FeedbackDataset, TrustPolicy, build_dataset
from training.gate import Decision, GatePolicy, Scores, decide
from training.model import resolve_device
from training.report import HistoryPoint, confusion_from_eval, write_report
from training.text import normalise_text
from training.train import TrainingConfig

log = logging.getLogger(__name__)

EXIT_OK = 0
"""Promoted, rejected by the gate, or nothing to do."""
EXIT_FAILED = 1
"""The run failed; production is unchanged."""
EXIT_LOCKED = 75
"""Another run holds the lock (EX_TEMPFAIL: try again later)."""

LOCK_FILE = "retrain.lock"
REPORT_DIR = "report"
COMPLETED = ("promoted", "rejected")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

Status = Literal["promoted", "rejected", "nothing_to_do"]


class RetrainError(Exception):
    """The nightly job failed; the message is one line saying what went wrong. Production is unchanged."""


class RetrainLocked(RetrainError):
    """Another `supportbot retrain` holds the lock."""


class BuildFn(Protocol):
    """The signature of `bot.versions.build_version` (injectable, e.g. to test the gate with a bad trainer)."""

    def __call__(
        self,
        models_dir: str | Path,
        version: str,
        *,
        train_examples: Sequence[Example],
        val_examples: Sequence[Example] | None,
        training_config: TrainingConfig,
        kb_documents: Sequence[Document],
        extra_answers: Mapping[str, str] | None = None,
        policy: DecisionPolicy | None = None,
        log_out_of_scope: Sequence[str] = (),
        progress: bool = True,
    ) -> Path: ...


@dataclass
class RetrainResult:
    """What one run did.

    Attributes:
        status: `promoted`, `rejected` or `nothing_to_do`.
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


def retrain(
    settings: Settings,
    *,
    force: bool = False,
    wait: bool = False,
    trigger: str = "cli",
    training: Mapping[str, Any] | None = None,
    build: BuildFn = build_version,
    progress: bool = True,
    echo: Callable[[str], None] | None = None,
) -> RetrainResult:
    """Run the nightly job once (see the module docstring).

    Args:
        settings: the settings (data dir, database, intents, knowledge base, RETRAIN_* thresholds).
        force: train even when nothing changed since the last completed run.
        wait: wait for a running job to finish instead of failing with `RetrainLocked`.
        trigger: recorded with the run (`cli`, `cron`, ...).
        training: overrides of `TrainingConfig` fields (e.g. `{"max_length": 32, "epochs": 1}`).
        build: the function that trains and writes a version (`bot.versions.build_version`).
        progress: show training progress bars.
        echo: called with one line per step (default: the log).

    Returns:
        What the run did.

    Raises:
        RetrainLocked: another run holds the lock (and `wait` is False).
        RetrainError: the run failed; production is unchanged.
    """
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(settings.data_dir / LOCK_FILE), timeout=-1 if wait else 0)
    try:
        lock.acquire()
    except Timeout:
        raise RetrainLocked(
            f"another retrain is running (lock {settings.data_dir / LOCK_FILE} is held); "
            "try later, or pass --wait to wait for it"
        ) from None
    try:
        repo = _open_repository(settings)
        try:
            job = _Job(settings, repo, trigger=trigger, build=build, progress=progress, echo=echo or log.info)
            return job.run(force=force, training=training or {})
        finally:
            repo.close()
    finally:
        lock.release()


def _open_repository(settings: Settings) -> Repository:
    try:
        return Repository(settings.db_url, mask_pii=settings.pii_masking)
    except Exception as exc:
        raise RetrainError(f"cannot open the database: {_one_line(exc)}") from exc


def previous_production(models: Sequence[ModelVersion], current: ModelVersion | None) -> ModelVersion | None:
    """The rollback target: the newest retired version created before `current` (any retired one if None).

    Successive rollbacks therefore walk back through the versions that were in production.

    Args:
        models: the registry (`Repository.models()`), any order.
        current: the production version.
    """
    retired = [
        m
        for m in models
        if m.status == "retired"
        and (current is None or (m.created_at, m.id or 0) < (current.created_at, current.id or 0))
    ]
    return max(retired, key=lambda m: (m.created_at, m.id or 0), default=None)


def scores_of(report: EvalReport, labels: Sequence[str]) -> Scores:
    """Gate scores from an evaluation report of a model with label set `labels`."""
    return Scores.from_eval(report, labels)


def post_summary(settings: Settings, text: str) -> bool:
    """Post `text` to the agents' channel when RETRAIN_POST_SUMMARY is on; never raises. True if posted."""
    if not settings.retrain_post_summary:
        return False
    token = settings.slack_bot_token.get_secret_value() if settings.slack_bot_token else ""
    if not token or not settings.agent_channel_id:
        log.warning("RETRAIN_POST_SUMMARY is on but SLACK_BOT_TOKEN or AGENT_CHANNEL_ID is not set; not posting")
        return False
    try:
        from slack_sdk import WebClient

        client = WebClient(token=token, base_url=settings.slack_api_base_url, timeout=15)
        client.chat_postMessage(channel=settings.agent_channel_id, text=text)
    except Exception as exc:  # a summary must never fail the job
        log.warning("could not post the retraining summary to Slack: %s", _one_line(exc))
        return False
    return True


class _Job:
    """One run, holding the lock and an open repository."""

    def __init__(
        self,
        settings: Settings,
        repo: Repository,
        *,
        trigger: str,
        build: BuildFn,
        progress: bool,
        echo: Callable[[str], None],
    ) -> None:
        self.settings = settings
        self.repo = repo
        self.trigger = trigger
        self.build = build
        self.progress = progress
        self.echo = echo
        self.timings: dict[str, float] = {}

    # --- the run ------------------------------------------------------------------------------------
    def run(self, *, force: bool, training: Mapping[str, Any]) -> RetrainResult:
        started = time.perf_counter()
        run_id: int | None = None
        version: str | None = None
        metrics: dict[str, Any] = {}
        try:
            self._close_abandoned_runs()
            production = self.repo.production_model()
            last = self._last_completed()
            data_until = datetime.now(UTC)
            since = _parse_time(last.metrics.get("data_until")) if last else None

            self.echo("reading the seed data, the logs and the knowledge base")
            dataset, documents = self._inputs(since)
            config = self._training_config(production, training)
            inputs = self._input_hash(dataset, documents, config)
            if not force and production is not None and last is not None and last.metrics.get("input_hash") == inputs:
                message = (
                    "nothing to do: no new ratings, corrections, seed or knowledge-base changes since the run of "
                    f"{last.started_at:%Y-%m-%d %H:%M} UTC (production: {production.version}); use --force to retrain"
                )
                self.echo(message)
                return RetrainResult(
                    "nothing_to_do", message, production=production.version, previous=production.version
                )

            run = self.repo.start_training_run(trigger=self.trigger)
            run_id = run.id
            version = self._version_name()
            metrics |= {
                "input_hash": inputs,
                "data_until": data_until.isoformat(),
                "dataset_hash": dataset.hash,
                "kb_fingerprint": documents_fingerprint(documents),
                "provenance": dataset.provenance,
                "new_intents": dataset.new_intents,
                "production_before": production.version if production else None,
            }
            result = self._train_gate_promote(run, version, production, dataset, documents, config, metrics)
        except BaseException as exc:
            self._fail(run_id, version, exc, metrics)
            message = f"retrain failed, production unchanged: {_describe(exc)}"
            post_summary(self.settings, f"Nightly retraining: {message}")
            if isinstance(exc, RetrainError):
                raise
            if isinstance(exc, Exception):
                raise RetrainError(message) from exc
            raise
        self.timings["total_s"] = time.perf_counter() - started
        result.metrics["timings"] = {key: round(value, 1) for key, value in self.timings.items()}
        self._after(result)
        return result

    def _train_gate_promote(
        self,
        run: TrainingRun,
        version: str,
        production: ModelVersion | None,
        dataset: FeedbackDataset,
        documents: list[Document],
        config: TrainingConfig,
        metrics: dict[str, Any],
    ) -> RetrainResult:
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
        operating = self.settings.decision_policy(oos_share=dataset.oos_share)
        share_origin = "measured from agent labels" if dataset.oos_share is not None else "OOS_SHARE"
        self.echo(
            f"operating point: wrong answer = {operating.wrong_answer_cost:g} hand-offs, out-of-scope share "
            f"{operating.oos_share:.0%} ({share_origin}), {len(dataset.calibration_oos)} agent-labelled "
            "out-of-scope questions to calibrate on"
        )
        metrics["oos_share"] = {"value": operating.oos_share, "origin": share_origin}
        with self._timed("train_s"):
            path = self.build(
                self.settings.models_dir,
                version,
                train_examples=dataset.train,
                val_examples=None,
                training_config=config,
                kb_documents=documents,
                extra_answers=dataset.intent_answers,
                policy=operating,
                log_out_of_scope=dataset.calibration_oos,
                progress=self.progress,
            )

        self.echo(f"evaluating candidate and production on {len(eval_set)} frozen evaluation examples")
        with self._timed("eval_s"):
            candidate = load_version(path, device=None, threads=self.settings.torch_threads or None)
            candidate_report = evaluate(candidate.model, eval_set)
            candidate_scores = scores_of(candidate_report, candidate.model.labels)
            operating_point = dict(candidate.model.info.get("decision") or {})
            production_report, production_scores, notes = self._evaluate_production(production, eval_set)
            del candidate

        policy = GatePolicy(
            tolerance=self.settings.retrain_tolerance,
            max_intent_drop=self.settings.retrain_max_intent_drop,
            min_intent_support=self.settings.retrain_min_intent_support,
        )
        decision = decide(candidate_scores, production_scores, policy)
        if production is not None and production_scores is None:
            decision = dataclasses.replace(decision, reasons=[*notes, *decision.reasons])
        metrics |= {
            "decision": "promote" if decision.promote else "reject",
            "reasons": decision.reasons,
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
            version, path=str(path.resolve()), metrics=version_metrics, dataset_hash=dataset.hash, status="candidate"
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

        if decision.promote:
            self.repo.promote(version)
            status: Status = "promoted"
            after: str | None = version
            message = (
                f"promoted {version}: accuracy {_pct(candidate_report.accuracy)}"
                + (
                    f" (production {production.version} {_pct(production_report.accuracy)})"
                    if production and production_report
                    else ""
                )
                + f" on {len(eval_set)} evaluation examples"
                + (f"; new intents: {', '.join(dataset.new_intents)}" if dataset.new_intents else "")
            )
        else:
            self.repo.set_model_status(version, "rejected")
            status = "rejected"
            after = production.version if production else None
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

    # --- steps --------------------------------------------------------------------------------------
    def _inputs(self, since: datetime | None) -> tuple[FeedbackDataset, list[Document]]:
        with self._timed("dataset_s"):
            settings = self.settings
            oos = settings.out_of_scope_label
            seed = load_examples(settings.intents_path, out_of_scope_label=oos)
            eval_path = settings.eval_path
            eval_seed = None
            if eval_path is not None and (settings.eval_file is not None or eval_path.is_file()):
                eval_seed = load_examples(eval_path, out_of_scope_label=oos)
            dataset = build_dataset(
                seed,
                self.repo.ratings_since(_EPOCH),
                eval_existing=self.repo.eval_examples(),
                eval_seed=eval_seed,
                eval_share=settings.retrain_eval_share,
                policy=TrustPolicy(settings.retrain_trust_customers, settings.retrain_customer_min_confidence),
                since=since,
                out_of_scope_label=oos,
            )
            documents = load_documents(settings.kb_path) if settings.kb_path.exists() else []
            records = [AgentAnswer(w.key, w.question, w.answer) for w in dataset.written_answers]
            documents += documents_from_records(records)
        return dataset, documents

    def _training_config(self, production: ModelVersion | None, overrides: Mapping[str, Any]) -> TrainingConfig:
        settings = self.settings
        init_from = None
        if settings.retrain_warm_start and production is not None:
            model_dir = Path(production.path) / "model"
            if model_dir.is_dir():
                init_from = str(model_dir)
            else:
                log.warning(
                    "production model %s not found at %s; training from the base model", production.version, model_dir
                )
        config = TrainingConfig(
            base_model=settings.base_model_name,
            epochs=settings.retrain_epochs,
            calibration_twin=settings.calibration_twin,
            out_of_scope_label=settings.out_of_scope_label,
            num_threads=settings.torch_threads or None,
            init_from=init_from,
        )
        try:
            return dataclasses.replace(config, **dict(overrides))
        except (TypeError, ValueError) as exc:
            raise RetrainError(f"invalid training options: {_one_line(exc)}") from exc

    def _input_hash(self, dataset: FeedbackDataset, documents: Sequence[Document], config: TrainingConfig) -> str:
        """Everything that would change the candidate: data, evaluation set, knowledge base, recipe."""
        recipe = {
            key: value
            for key, value in dataclasses.asdict(config).items()
            if key not in ("init_from", "version", "num_threads", "device", "extra")
        }
        payload = {
            "train": dataset.hash,
            "eval": dataset_hash(dataset.eval),
            "kb": documents_fingerprint(documents),
            "answers": dataset.intent_answers,
            "recipe": recipe,
        }
        return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()

    def _evaluate_production(
        self, production: ModelVersion | None, eval_set: Sequence[Example]
    ) -> tuple[EvalReport | None, Scores | None, list[str]]:
        if production is None:
            return None, None, []
        try:
            loaded = load_version(production.path, device=None, threads=self.settings.torch_threads or None)
        except Exception as exc:
            note = f"production {production.version} cannot be loaded ({_one_line(exc)}): not compared"
            log.warning(note)
            return None, None, [note]
        report = evaluate(loaded.model, eval_set)
        return report, scores_of(report, loaded.model.labels), []

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

    def _after(self, result: RetrainResult) -> None:
        """Housekeeping after a completed run; failures here are logged, never fatal."""
        try:
            models = self.repo.models()
            production = self.repo.production_model()
            previous = previous_production(models, production)
            removed = prune_versions(
                self.settings.models_dir,
                keep=self.settings.keep_model_versions,
                protect={production.version if production else None, previous.version if previous else None},
            )
            if removed:
                self.echo(f"pruned old versions: {', '.join(removed)}")
        except Exception as exc:
            log.warning("could not prune old model versions: %s", _one_line(exc))
        if post_summary(self.settings, f"Nightly retraining: {result.message}"):
            self.echo(f"summary posted to {self.settings.agent_channel_id}")

    def _fail(self, run_id: int | None, version: str | None, exc: BaseException, metrics: dict[str, Any]) -> None:
        """Leave production as it was: drop the candidate, record the failure. Never raises."""
        if version is not None:
            registered: ModelVersion | None = None
            try:
                registered = self.repo.get_model(version)
                if registered is not None and registered.status != "production":
                    self.repo.set_model_status(version, "rejected")
            except Exception as inner:
                log.warning("could not mark %s rejected: %s", version, _one_line(inner))
            target = self.settings.models_dir / version
            if target.exists() and (registered is None or registered.status != "production"):
                shutil.rmtree(target, ignore_errors=True)
        try:
            if run_id is None:
                run_id = self.repo.start_training_run(trigger=self.trigger).id
            assert run_id is not None
            self.repo.finish_training_run(
                run_id, status="failed", candidate_version=version, metrics=metrics, error=_describe(exc)
            )
        except Exception as inner:
            log.warning("could not record the failed run: %s", _one_line(inner))

    def _close_abandoned_runs(self) -> None:
        """Runs still 'running' while we hold the lock belong to a process that died: record them as failed.

        (A first-run bootstrap by `bot.runtime` holds its own lock, so its run may really be running.)
        """
        for run in self.repo.training_runs(limit=50):
            if run.status == "running" and run.id is not None and run.trigger != "bootstrap":
                self.repo.finish_training_run(
                    run.id,
                    status="failed",
                    candidate_version=run.candidate_version,
                    error="interrupted: the job stopped before finishing (found by the next run)",
                )

    def _last_completed(self) -> TrainingRun | None:
        return next((run for run in self.repo.training_runs(limit=100) if run.status in COMPLETED), None)

    def _version_name(self) -> str:
        base = new_version_name()
        name, n = base, 1
        while (self.settings.models_dir / name).exists() or self.repo.get_model(name) is not None:
            n += 1
            name = f"{base}-{n}"
        return name

    def _timed(self, name: str) -> _Timer:
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
        "model_version": report.model_version,
    }


def _number(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) else None


def _pct(value: float) -> str:
    return f"{100 * value:.1f}%"


def _parse_time(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text or exc.__class__.__name__


def _describe(exc: BaseException) -> str:
    """One line for a failure; disk-full and interruptions get a plain explanation."""
    if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
        return f"no space left on the device ({_one_line(exc)}); free disk space in the data dir and rerun"
    if isinstance(exc, KeyboardInterrupt):
        return "interrupted"
    return f"{exc.__class__.__name__}: {_one_line(exc)}"
