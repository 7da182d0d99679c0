"""The nightly job (and the first-run bootstrap): learn from the logs, train a candidate, gate it, promote or reject.

One run (`retrain(settings)`):

1. takes the exclusive lock `data_dir/retrain.lock` (a second run fails fast with `RetrainLocked`, or waits);
2. builds the dataset (`training.feedback`): seed examples + agent corrections/confirmations + trusted
   customer ratings, the frozen evaluation set (seed test split + held-out agent-labelled questions, stored
   in the repository the first time they are seen) and the knowledge base (articles + agent-written answers);
3. stops with "nothing to do" when these inputs are identical to the last completed run's (unless `force`);
4-6. hands the candidate to the one model lifecycle, `training.pipeline.Pipeline`: train a version with
   `bot.versions.build_version` (model + fresh index + `answers.json`), evaluate candidate and production on
   the same frozen set, gate, report, register, promote (one transaction; running bots hot-reload) or reject;
7. prunes old version directories (never production or the one before it) and optionally posts a summary
   to the agents' Slack channel;
8. (every nightly run, whatever its outcome) ranks the review queue, proposes new intents and posts the
   digest (`bot.nightly.for_agents`).

Every run is recorded as a `TrainingRun` (promoted | rejected | failed). Whatever fails, production is left
as it was: the candidate's directory is removed, the run is recorded as failed and `RetrainError` says why
in one line.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import hashlib
import json
import logging
import shutil
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from filelock import FileLock, Timeout

from bot.nightly import for_agents
from bot.notify import AgentChannel
from bot.settings import Settings
from bot.versions import (
    MODEL_DIR,
    build_version,
    free_version_name,
    knowledge_documents,
    load_version,
    prune_versions,
    remove_staging,
)
from retrieval.documents import Document, documents_fingerprint
from storage.models import ModelVersion, TrainingRun
from storage.repository import Repository
from training.calibration import DecisionPolicy
from training.config import FIRST_MODEL
from training.data import Example, dataset_hash, load_examples
from training.errors import ModelError
from training.feedback import FeedbackDataset, TrustPolicy, build_dataset, written_answers
from training.gate import GatePolicy
from training.locations import HTML_FILE, located
from training.model import verify as verify_model
from training.pipeline import BuildFn, Pipeline, RetrainResult, one_line
from training.train import TrainingConfig

log = logging.getLogger(__name__)

EXIT_FAILED = 1
"""The run failed; production is unchanged."""
EXIT_LOCKED = 75
"""Another run holds the lock (EX_TEMPFAIL: try again later)."""

LOCK_FILE = "retrain.lock"
COMPLETED = ("promoted", "rejected")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class RetrainError(Exception):
    """The nightly job failed; the message is one line saying what went wrong. Production is unchanged."""


class RetrainLocked(RetrainError):
    """Another `supportbot retrain` holds the lock."""


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
    manual: Manual | None = None,
    announce: str | None = None,
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
        manual: train these examples into a candidate instead (`supportbot train`); no "nothing to do" check.
        announce: said once the lock is held and the job will train.

    Returns:
        What the run did.

    Raises:
        RetrainLocked: another run holds the lock (and `wait` is False).
        RetrainError: the run failed; production is unchanged.
    """
    say = echo or log.info
    nightly = manual is None and not only_if_empty
    with locked(settings, wait=wait, echo=say):
        repo = open_repository(settings)
        try:
            job = _Job(settings, repo, trigger=trigger, build=build, progress=progress, echo=say, manual=manual)
            try:
                result = job.run(force=force, training=training or {}, only_if_empty=only_if_empty, announce=announce)
            except RetrainError as exc:
                if nightly:
                    _for_agents(settings, repo, str(exc), say)
                raise
            if nightly:
                _for_agents(settings, repo, result.message, say)
            return result
        finally:
            repo.close()


def _for_agents(settings: Settings, repo: Repository, outcome: str, say: Callable[[str], None]) -> None:
    """The agents' lists and digest after a nightly run; whatever goes wrong there, the run's outcome stands."""
    try:
        for_agents(settings, repo, outcome=outcome, echo=say)
    except Exception as exc:
        log.warning("the review queue, proposals or digest failed: %s", one_line(exc))


@contextlib.contextmanager
def locked(settings: Settings, *, wait: bool, echo: Callable[[str], None]) -> Iterator[None]:
    """Hold `data_dir/retrain.lock`, the one lock of everything that makes versions (nightly job, first run,
    `supportbot train`, `kb ingest`). Says so when it waits.

    Raises:
        RetrainLocked: Another run holds it and `wait` is False.
    """
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(settings.data_dir / LOCK_FILE))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        if not wait:
            raise RetrainLocked(
                f"another retrain is running (lock {settings.data_dir / LOCK_FILE} is held); "
                "try later, or pass --wait to wait for it"
            ) from None
        echo(f"another supportbot process is building a model version (lock {lock.lock_file}); waiting for it ...")
        lock.acquire()
    try:
        yield
    finally:
        lock.release()


@dataclass(frozen=True)
class Manual:
    """`supportbot train`: train on these examples (not the seed and the logs) and register the version as a
    candidate for a person to promote; evaluated and gated like any other, never promoted by the job."""

    train: Sequence[Example]
    val: Sequence[Example] | None
    policy: DecisionPolicy
    version: str | None = None


def bootstrap(settings: Settings, *, progress: bool = True, echo: Callable[[str], None] | None = None) -> RetrainResult:
    """First run: the nightly job with trigger "bootstrap" and the cheap first recipe, when nothing is in production.

    Waits for a job already running (a second process starting at the same time) and trains nothing when a
    production version exists after the wait. The first version is a head on the frozen base encoder
    (`training.config.FIRST_MODEL`, seconds) unless FIRST_MODEL_FINE_TUNE is set; the next `supportbot retrain`
    fine-tunes the encoder (the recipe differs, so it is not "nothing to do") and is gated like any candidate.

    Raises:
        RetrainError: The first version could not be built.
    """
    recipe = {} if settings.first_model_fine_tune else dict(FIRST_MODEL)
    announce = (
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
        settings,
        wait=True,
        trigger="bootstrap",
        training=recipe,
        progress=progress,
        echo=echo,
        only_if_empty=True,
        announce=announce,
    )


def current_knowledge(settings: Settings, repo: Repository) -> list[Document]:
    """What a new version indexes now: KB_DIR plus every agent-written answer in the logs."""
    return knowledge_documents(settings.kb_path, written_answers(repo.ratings_since(_EPOCH)))


def open_repository(settings: Settings) -> Repository:
    """The store of `settings`; RetrainError (one line) when it cannot be opened."""
    try:
        return Repository(settings.db_url, mask_pii=settings.pii_masking)
    except Exception as exc:
        raise RetrainError(f"cannot open the database: {one_line(exc)}") from exc


def post_summary(settings: Settings, text: str) -> bool:
    """Post `text` to the agents' channel when RETRAIN_POST_SUMMARY is on; never raises. True if posted."""
    if not settings.retrain_post_summary:
        return False
    channel = AgentChannel(settings)
    if not channel.ready:
        log.warning("RETRAIN_POST_SUMMARY is on but SLACK_BOT_TOKEN or AGENT_CHANNEL_ID is not set; not posting")
        return False
    return channel.post(text) is not None


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
        manual: Manual | None = None,
    ) -> None:
        self.settings = settings
        self.repo = repo
        self.trigger = trigger
        self.echo = echo
        self.manual = manual
        threads = settings.torch_threads or None
        self.pipeline = Pipeline(
            repo,
            models_dir=settings.models_dir,
            build=build,
            load=lambda path: load_version(path, device=None, threads=threads).model,
            gate=GatePolicy(
                rule=settings.retrain_gate,
                alpha=settings.retrain_gate_alpha,
                regression_margin=settings.retrain_gate_margin,
                intent_margin=settings.retrain_gate_intent_margin,
                tolerance=settings.retrain_tolerance,
                max_intent_drop=settings.retrain_max_intent_drop,
                min_intent_support=settings.retrain_min_intent_support,
            ),
            operating=(lambda _: manual.policy)
            if manual
            else (lambda share: settings.decision_policy(oos_share=share)),
            progress=progress,
            echo=echo,
        )
        self.timings = self.pipeline.timings

    # --- the run ------------------------------------------------------------------------------------
    def run(
        self,
        *,
        force: bool,
        training: Mapping[str, Any],
        only_if_empty: bool = False,
        announce: str | None = None,
    ) -> RetrainResult:
        manual = self.manual
        started = time.perf_counter()
        run_id: int | None = None
        version: str | None = None
        metrics: dict[str, Any] = {}
        try:
            self._close_abandoned_runs()
            leftovers = remove_staging(self.settings.models_dir)  # we hold the lock every build takes
            if leftovers:
                self.echo(f"removed {len(leftovers)} unfinished version directories left by an interrupted build")
            production = self.repo.production_model()
            if only_if_empty and production is not None:
                message = f"nothing to do: {production.version} is in production"
                return RetrainResult(
                    "nothing_to_do", message, production=production.version, previous=production.version
                )
            if announce:
                self.echo(announce)
            last = self._last_completed()
            data_until = datetime.now(UTC)
            since = _parse_time(last.metrics.get("data_until")) if last else None

            self.echo("reading the seed data, the logs and the knowledge base")
            dataset, documents = self._inputs(since, manual)
            config = self._training_config(production, training)
            inputs = self._input_hash(dataset, documents, config)
            repeated = last is not None and last.metrics.get("input_hash") == inputs
            if manual is None and not force and production is not None and last is not None and repeated:
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
            version = self._version_name(manual.version if manual else None)
            metrics |= {
                "input_hash": inputs,
                "data_until": data_until.isoformat(),
                "dataset_hash": dataset.hash,
                "kb_fingerprint": documents_fingerprint(documents),
                "provenance": dataset.provenance,
                "new_intents": dataset.new_intents,
                "production_before": production.version if production else None,
            }
            result = self.pipeline.candidate(
                run,
                version,
                production,
                dataset,
                documents,
                config,
                metrics,
                val_examples=manual.val if manual else None,
                promote=manual is None,
            )
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

    # --- steps --------------------------------------------------------------------------------------
    def _inputs(self, since: datetime | None, manual: Manual | None) -> tuple[FeedbackDataset, list[Document]]:
        with self.pipeline.timed("dataset_s"):
            settings = self.settings
            oos = settings.out_of_scope_label
            seed = list(manual.train) if manual else load_examples(settings.intents_path, out_of_scope_label=oos)
            eval_path = settings.eval_path
            eval_seed = None
            if eval_path is not None and (settings.eval_file is not None or eval_path.is_file()):
                eval_seed = load_examples(eval_path, out_of_scope_label=oos)
            rated = self.repo.ratings_since(_EPOCH)
            dataset = build_dataset(
                seed,
                [] if manual else rated,
                eval_existing=self.repo.eval_examples(),
                eval_seed=eval_seed,
                eval_share=settings.retrain_eval_share,
                policy=TrustPolicy(settings.retrain_trust_customers, settings.retrain_customer_min_confidence),
                since=since,
                out_of_scope_label=oos,
            )
            documents = knowledge_documents(settings.kb_path, written_answers(rated))
        return dataset, documents

    def _training_config(self, production: ModelVersion | None, overrides: Mapping[str, Any]) -> TrainingConfig:
        settings = self.settings
        init_from = None
        if settings.retrain_warm_start and production is not None:
            model_dir = located(production, settings.models_dir) / MODEL_DIR
            try:
                verify_model(model_dir)  # its files, not the model: training loads it once, from init_from
                init_from = str(model_dir)
            except ModelError as exc:
                self.echo(
                    f"warning: production model {production.version} does not load ({one_line(exc)}); "
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
            raise RetrainError(f"invalid training options: {one_line(exc)}") from exc

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

    def _after(self, result: RetrainResult) -> None:
        """Housekeeping after a completed run; failures here are logged, never fatal."""
        try:
            production = self.repo.production_model()
            previous = self.repo.previous_production(production)
            removed = prune_versions(
                self.settings.models_dir,
                keep=self.settings.keep_model_versions,
                protect={production.version if production else None, previous.version if previous else None},
            )
            if removed:
                self.echo(f"pruned old versions: {', '.join(removed)}")
        except Exception as exc:
            log.warning("could not prune old model versions: %s", one_line(exc))
        page = result.report_path.with_name(HTML_FILE) if result.report_path else None
        where = f" Report: {page}" if page is not None and page.is_file() else ""
        if post_summary(self.settings, f"Nightly retraining: {result.message}{where}"):
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
                log.warning("could not mark %s rejected: %s", version, one_line(inner))
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
            log.warning("could not record the failed run: %s", one_line(inner))

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

    def _version_name(self, wanted: str | None) -> str:
        if wanted is None:
            return free_version_name(self.settings.models_dir, lambda name: self.repo.get_model(name) is not None)
        if self.repo.get_model(wanted) is not None or (self.settings.models_dir / wanted).exists():
            raise RetrainError(f"version {wanted} already exists; choose another --version")
        return wanted


def _parse_time(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _describe(exc: BaseException) -> str:
    """One line for a failure; disk-full and interruptions get a plain explanation."""
    if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
        return f"no space left on the device ({one_line(exc)}); free disk space in the data dir and rerun"
    if isinstance(exc, KeyboardInterrupt):
        return "interrupted"
    return f"{exc.__class__.__name__}: {one_line(exc)}"
