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
from bot.versions import (
    build_version,
    derive_version,
    free_version_name,
    knowledge_documents,
    load_version,
    prune_versions,
)
from retrieval.documents import Document, documents_fingerprint
from retrieval.errors import KnowledgeBaseError
from storage.models import ModelVersion, TrainingRun
from storage.repository import Repository
from training.calibration import DecisionPolicy
from training.config import FIRST_MODEL
from training.data import Example, dataset_hash, load_examples
from training.errors import ModelError
from training.evaluate import EvalReport, evaluate
from training.feedback import FeedbackDataset, TrustPolicy, build_dataset, written_answers
from training.gate import Decision, GatePolicy, Scores, decide
from training.model import IntentModel, resolve_device
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
    only_if_empty: bool = False,
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
        only_if_empty: do nothing when a production version exists (the first-run bootstrap, see `bootstrap`).

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
            return job.run(force=force, training=training or {}, only_if_empty=only_if_empty)
        finally:
            repo.close()
    finally:
        lock.release()


def bootstrap(settings: Settings, *, progress: bool = True, echo: Callable[[str], None] | None = None) -> RetrainResult:
    """First run: the nightly job with trigger "bootstrap" and the cheap first recipe, when nothing is in production.

    Waits for a job already running (a second process starting at the same time) and trains nothing when a
    production version exists after the wait. The first version is a head on the frozen base encoder
    (`training.config.FIRST_MODEL`, seconds) unless FIRST_MODEL_FINE_TUNE is set; the next `supportbot retrain`
    fine-tunes the encoder (the recipe differs, so it is not "nothing to do") and is gated like any candidate.

    Raises:
        RetrainError: The first version could not be built.
    """
    say = echo or log.info
    recipe = {} if settings.first_model_fine_tune else dict(FIRST_MODEL)
    say(
        f"First run: no model in production yet. Training one on {settings.intents_path} and indexing "
        f"{settings.kb_path} ("
        + (
            "fine-tuning the encoder: minutes"
            if settings.first_model_fine_tune
            else "a head on the base encoder: seconds; the next `supportbot retrain` fine-tunes it"
        )
        + ")."
    )
    return retrain(
        settings, wait=True, trigger="bootstrap", training=recipe, progress=progress, echo=echo, only_if_empty=True
    )


def reindex(
    settings: Settings, *, source: str | None = None, echo: Callable[[str], None] | None = None
) -> ModelVersion:
    """Index the knowledge base again as a new production version with the model of `source` (default production).

    The classifier is unchanged, so nothing is gated: the new version is registered and promoted at once (running
    bots switch within RELOAD_INTERVAL_S). Holds the nightly job's lock (waits for a running job).

    Raises:
        RetrainError: No such version (or none in production), or it cannot be copied or indexed.
    """
    say = echo or log.info
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    with FileLock(str(settings.data_dir / LOCK_FILE)):
        repo = _open_repository(settings)
        try:
            origin = repo.get_model(source) if source else repo.production_model()
            if origin is None:
                raise RetrainError(
                    f"no model version {source!r} in the registry; see `supportbot model list`"
                    if source
                    else "no model in production yet: `supportbot ask` (or `supportbot retrain`) builds the first "
                    "version, knowledge base included"
                )
            documents = current_knowledge(settings, repo)
            version = free_version_name(settings.models_dir, lambda name: repo.get_model(name) is not None)
            say(f"indexing {len(documents)} documents from {settings.kb_path} with the model of {origin.version}")
            try:
                path = derive_version(settings.models_dir, version, origin.path, documents)
            except (ModelError, KnowledgeBaseError, OSError) as exc:
                raise RetrainError(f"cannot index the knowledge base: {_one_line(exc)}") from exc
            metrics = {**(origin.metrics or {}), "derived_from": origin.version, "kb_documents": len(documents)}
            repo.register_model(version, path=str(path.resolve()), metrics=metrics, dataset_hash=origin.dataset_hash)
            repo.promote(version)
            record = repo.get_model(version)
            assert record is not None
            return record
        finally:
            repo.close()


def current_knowledge(settings: Settings, repo: Repository) -> list[Document]:
    """What a new version indexes now: KB_DIR plus every agent-written answer in the logs."""
    return knowledge_documents(settings.kb_path, written_answers(repo.ratings_since(_EPOCH)))


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
    def run(self, *, force: bool, training: Mapping[str, Any], only_if_empty: bool = False) -> RetrainResult:
        started = time.perf_counter()
        run_id: int | None = None
        version: str | None = None
        metrics: dict[str, Any] = {}
        try:
            self._close_abandoned_runs()
            production = self.repo.production_model()
            if only_if_empty and production is not None:
                message = f"nothing to do: {production.version} is in production"
                return RetrainResult(
                    "nothing_to_do", message, production=production.version, previous=production.version
                )
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
            documents = knowledge_documents(settings.kb_path, dataset.written_answers)
        return dataset, documents

    def _training_config(self, production: ModelVersion | None, overrides: Mapping[str, Any]) -> TrainingConfig:
        settings = self.settings
        init_from = None
        if settings.retrain_warm_start and production is not None:
            model_dir = Path(production.path) / "model"
            try:
                IntentModel.load(model_dir, device="cpu")
                init_from = str(model_dir)
            except ModelError as exc:
                self.echo(
                    f"warning: production model {production.version} does not load ({_one_line(exc)}); "
                    "training from the base model"
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
        """Runs still 'running' while we hold the lock belong to a process that died: record them as failed."""
        for run in self.repo.training_runs(limit=50):
            if run.status == "running" and run.id is not None:
                self.repo.finish_training_run(
                    run.id,
                    status="failed",
                    candidate_version=run.candidate_version,
                    error="interrupted: the job stopped before finishing (found by the next run)",
                )

    def _last_completed(self) -> TrainingRun | None:
        return next((run for run in self.repo.training_runs(limit=100) if run.status in COMPLETED), None)

    def _version_name(self) -> str:
        return free_version_name(self.settings.models_dir, lambda name: self.repo.get_model(name) is not None)

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
