"""The model runtime: serve the registry's production version, build the first one on first run, hot-swap.

`build_engine(settings)` returns a `ModelHolder`, the `EngineLike` every front end uses. It holds one `Engine`
(model + index + catalog of one version). `maybe_reload()` (called by a background thread every
`RELOAD_INTERVAL_S`, or directly) asks the registry which version is in production; when it changed, the new
version is loaded and warmed up entirely off the serving path, then one reference is swapped. Answers already
running finish on the engine they started with. A version that fails to load is refused (logged once and not
retried) and the current one keeps serving; so does a registry that cannot be reached.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from bot.answer import EngineAnswer
from bot.catalog import IntentCatalog
from bot.engine import Engine
from bot.options import ServingOptions
from bot.settings import Settings
from bot.versions import load_registered
from retrieval.errors import KnowledgeBaseError
from storage.models import ModelVersion
from storage.repository import Repository
from training.errors import ModelError

log = logging.getLogger(__name__)

WARM_UP_QUESTION = "hello, how do I reset my password?"
"""Answered once by a freshly loaded engine before it serves (the first torch call is the slowest)."""

Echo = Callable[[str], None]


def load_engine(record: ModelVersion, options: ServingOptions, catalog: IntentCatalog) -> Engine:
    """Load the registry entry `record` from disk as a ready (warmed-up) `Engine`.

    Raises:
        ModelError: The directory is not that version, or its model is missing or broken.
        KnowledgeBaseError: Its index is missing or broken.
    """
    model, kb, answers = load_registered(
        record, options.models_dir, threads=options.torch_threads, quantize=options.quantize
    )
    engine = Engine(
        model,
        kb,
        catalog,
        version=record.version,
        options=options,
        extra_answers=answers,
    )
    engine.answer(WARM_UP_QUESTION)
    return engine


class ModelHolder:
    """The serving engine of the current production version, swapped atomically when production changes.

    Implements `EngineLike`. Thread-safe: any number of threads may answer while one reloads.

    Args:
        engine: The engine to serve first.
        repo: The registry to poll; None disables reloading.
        options: How new versions are loaded and served (`reload_interval_s`: the poll period of the
            background thread, `start()`).
        owns_repo: Close `repo` in `close()`.
    """

    def __init__(
        self,
        engine: Engine,
        repo: Repository | None,
        options: ServingOptions,
        *,
        owns_repo: bool = False,
    ) -> None:
        self._engine = engine
        self._repo = repo
        self._options = options
        self._owns_repo = owns_repo
        self._reload_lock = threading.Lock()
        self._refused: dict[str, str] = {}
        self._registry_error: str | None = None
        self._loaded_at = time.time()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # --- EngineLike -----------------------------------------------------------------------------------

    @property
    def engine(self) -> Engine:
        """The engine serving right now."""
        return self._engine

    @property
    def version(self) -> str | None:
        """The version serving right now."""
        return self._engine.version

    def answer(self, text: str) -> EngineAnswer:
        """Answer with the current engine (a concurrent swap does not affect an answer already started)."""
        return self._engine.answer(text)

    def answer_intent(self, intent: str) -> EngineAnswer:
        """The curated answer of `intent` from the current engine."""
        return self._engine.answer_intent(intent)

    @property
    def intents(self) -> list[str]:
        """Intents of the current model."""
        return self._engine.intents

    @property
    def model_info(self) -> dict[str, Any]:
        """The current model's info, plus the reload state (refused versions, registry reachability)."""
        return {
            **self._engine.model_info,
            "loaded_at": self._loaded_at,
            "refused_versions": dict(self._refused),
            "registry_error": self._registry_error,
        }

    # --- reloading ------------------------------------------------------------------------------------

    def maybe_reload(self) -> bool:
        """Load and switch to the registry's production version if it changed; True when it switched.

        Never raises for a broken version or an unreachable registry: those are logged, and the current
        version keeps serving. A version that failed to load is not tried again.
        """
        if self._repo is None:
            return False
        with self._reload_lock:
            try:
                record = self._repo.production_model()
            except Exception as exc:  # noqa: BLE001 - any registry failure: keep serving what we have
                self._note_registry_error(exc)
                return False
            if self._registry_error is not None:
                log.info("model registry reachable again")
                self._registry_error = None
            if record is None or record.version == self._engine.version or record.version in self._refused:
                return False
            return self._switch_to(record)

    def _switch_to(self, record: ModelVersion) -> bool:
        started = time.perf_counter()
        try:
            catalog = self._load_catalog()
            engine = load_engine(record, self._options, catalog)
        except Exception as exc:  # noqa: BLE001 - a bad version must never take the bot down
            self._refused[record.version] = f"{exc.__class__.__name__}: {exc}"
            log.error(
                "refusing production model %s (%s): %s; still serving %s",
                record.version,
                record.path,
                exc,
                self._engine.version,
            )
            return False
        previous, self._engine = self._engine.version, engine
        self._loaded_at = time.time()
        log.info(
            "switched from model %s to %s (loaded in %.1fs)", previous, record.version, time.perf_counter() - started
        )
        return True

    def _load_catalog(self) -> IntentCatalog:
        """The intents file as it is now (curated answers may have been edited); the current one if it broke."""
        try:
            return IntentCatalog.load(self._options.intents_path)
        except Exception as exc:  # noqa: BLE001 - keep the answers we have
            log.warning("cannot reload the intents file (%s); keeping the current curated answers", exc)
            return self._engine.catalog

    def _note_registry_error(self, exc: Exception) -> None:
        message = f"{exc.__class__.__name__}: {exc}"
        if self._registry_error is None:
            log.warning("cannot reach the model registry (%s); still serving %s", message, self._engine.version)
        self._registry_error = message

    def start(self) -> None:
        """Poll the registry every `reload_interval_s` in a daemon thread (idempotent)."""
        if self._repo is None or (self._thread is not None and self._thread.is_alive()):
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._poll, name="supportbot-model-reload", daemon=True)
        self._thread.start()

    def _poll(self) -> None:
        while not self._stop.wait(self._options.reload_interval_s):
            try:
                self.maybe_reload()
            except Exception:  # pragma: no cover - maybe_reload handles its own failures; never let the thread die
                log.exception("model reload check failed")

    def close(self) -> None:
        """Stop polling and close the repository if this holder opened it."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        if self._owns_repo and self._repo is not None:
            self._repo.close()

    def __enter__(self) -> ModelHolder:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


def _serving_threads() -> None:
    """One FAISS OpenMP thread for single-question search: with two, each query waits on OpenMP barriers and
    took 20-40 ms instead of 0.3 ms at 10k chunks on a busy 2-core machine (bench/README.md, retrieval)."""
    import faiss

    faiss.omp_set_num_threads(1)


def build_engine(
    settings: Settings,
    repo: Repository | None = None,
    *,
    bootstrap: bool = True,
    watch: bool = True,
    echo: Echo | None = None,
    progress: bool = True,
) -> ModelHolder:
    """The serving engine for `settings`: the registry's production version, trained first if there is none.

    Args:
        settings: The one settings object (served as `ServingOptions.from_settings(settings)`).
        repo: The store holding the registry; None opens `settings.db_url` (closed by `ModelHolder.close`).
        bootstrap: Train, register and promote a first version when the registry has no production version.
        watch: Start the background thread that hot-swaps to a newly promoted version.
        echo: Where progress messages go (e.g. the CLI's stderr); None logs them.
        progress: Show training progress bars while bootstrapping.

    Raises:
        ModelError: No production version and `bootstrap` is off, or the production version cannot be loaded.
        StorageError: The store cannot be reached.
    """
    _serving_threads()
    owns_repo = repo is None
    store = repo if repo is not None else Repository(settings.db_url, mask_pii=settings.pii_masking)
    try:
        options = ServingOptions.from_settings(settings)
        catalog = IntentCatalog.load(options.intents_path)
        record = store.production_model()
        if record is None:
            if not bootstrap:
                raise ModelError(
                    "no model in production yet: run `supportbot ask` once (it builds the first one) or train and "
                    "promote one (`supportbot train`, then `supportbot model promote VERSION`)"
                )
            from bot.retrain import RetrainError
            from bot.retrain import bootstrap as build_first

            started = time.perf_counter()
            try:
                result = build_first(settings, progress=progress, echo=echo)
            except RetrainError as exc:
                raise ModelError(f"could not build the first model: {exc}") from exc
            record = store.production_model()
            if record is None:
                raise ModelError(f"the first model was not promoted: {result.message}")
            if result.version == record.version:
                (echo or log.info)(
                    f"Model {record.version} built in {time.perf_counter() - started:.0f}s and promoted to production."
                )
        try:
            engine = load_engine(record, options, catalog)
        except (ModelError, KnowledgeBaseError) as exc:
            raise ModelError(f"the production model {record.version} cannot be loaded: {exc}") from exc
    except BaseException:
        if owns_repo:
            store.close()
        raise
    holder = ModelHolder(engine, store, options, owns_repo=owns_repo)
    if watch:
        holder.start()
    return holder
