"""The knowledge base of a version: what it indexes, and re-indexing it as a new production version.

Every version indexes KB_DIR plus the agent-written answers in the logs with its own encoder. When only the
knowledge base changed, `reindex` copies the production model into a new version with a fresh index and
promotes it (the classifier is unchanged, so there is nothing to gate); `supportbot kb ingest` calls it.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator

from bot.retrain import RetrainError, current_knowledge, locked, open_repository
from bot.settings import Settings
from bot.versions import derive_version, free_version_name, rebuild_index
from retrieval.errors import KnowledgeBaseError
from storage.errors import StorageError
from storage.models import ModelVersion
from storage.repository import Repository
from training.errors import ModelError
from training.locations import located, stored_path
from training.pipeline import one_line

log = logging.getLogger(__name__)


def registered(repo: Repository, version: str | None) -> ModelVersion:
    """The registry entry of `version`, or of production when None.

    Raises:
        StorageError: No such version, or nothing in production yet (saying which command fixes it).
    """
    record = repo.get_model(version) if version else repo.production_model()
    if record is None:
        raise StorageError(
            f"no model version {version!r} in the registry; see `supportbot model list`"
            if version
            else "no model in production yet: run `supportbot ask` once (it builds the first version, knowledge "
            "base included)"
        )
    return record


@contextlib.contextmanager
def _store(settings: Settings, say: Callable[[str], None]) -> Iterator[Repository]:
    """The store, opened while holding the lock every build of a version takes."""
    with locked(settings, wait=True, echo=say):
        repo = open_repository(settings)
        try:
            yield repo
        finally:
            repo.close()


def reindex(settings: Settings, *, echo: Callable[[str], None] | None = None) -> ModelVersion:
    """Index the knowledge base again as a new production version with the production model.

    The classifier is unchanged, so nothing is gated: the new version is registered and promoted at once (running
    bots switch within RELOAD_INTERVAL_S). Holds the nightly job's lock (waits for a running job).

    Raises:
        StorageError: Nothing in production yet.
        RetrainError: The model cannot be copied or the knowledge base indexed.
    """
    say = echo or log.info
    with _store(settings, say) as repo:
        origin = registered(repo, None)
        documents = current_knowledge(settings, repo)
        version = free_version_name(settings.models_dir, lambda name: repo.get_model(name) is not None)
        say(f"indexing {len(documents)} documents from {settings.kb_path} with the model of {origin.version}")
        try:
            path = derive_version(settings.models_dir, version, located(origin, settings.models_dir), documents)
        except (ModelError, KnowledgeBaseError, OSError) as exc:
            raise RetrainError(f"cannot index the knowledge base: {one_line(exc)}") from exc
        metrics = {**(origin.metrics or {}), "derived_from": origin.version, "kb_documents": len(documents)}
        repo.register_model(
            version,
            path=stored_path(path, settings.models_dir),
            metrics=metrics,
            dataset_hash=origin.dataset_hash,
        )
        repo.promote(version)
        record = repo.get_model(version)
        assert record is not None
        return record


def rebuild(
    settings: Settings, version: str | None = None, *, echo: Callable[[str], None] | None = None
) -> ModelVersion:
    """Rebuild the index of `version` (default production) in place with its own model, from KB_DIR and the agents'
    answers: the repair for a missing or corrupt index. Holds the lock every build takes.

    Raises:
        StorageError: No such version, or none in production.
        RetrainError: The version's model does not load, or indexing fails.
    """
    say = echo or log.info
    with _store(settings, say) as repo:
        record = registered(repo, version)
        documents = current_knowledge(settings, repo)
        say(f"rebuilding the index of {record.version} from {len(documents)} documents with its own encoder")
        try:
            rebuild_index(located(record, settings.models_dir), documents)
        except (ModelError, KnowledgeBaseError, OSError) as exc:
            raise RetrainError(f"cannot rebuild the index of {record.version}: {one_line(exc)}") from exc
        return record
