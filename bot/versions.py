"""Model versions on disk: one directory per version, built atomically, loaded with verification, pruned.

A version directory `models_dir/<version>/` holds everything the engine needs to answer::

    model/          the IntentModel directory (weights, tokenizer, head, supportbot.json)
    index/          the KnowledgeIndex built with that model's encoder
    answers.json    agent-written answers for intents learnt from corrections (optional)
    manifest.json   version, created_at, kb fingerprint, dataset hash, metrics summary

`build_version` trains and indexes into a hidden staging directory beside the target and renames it into
place only when everything is written, so a reader never sees half a version and a failure leaves nothing
behind. `manifest.json` is written last: a directory without it is not a version.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import re
import shutil
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NamedTuple

from retrieval.documents import Document, documents_fingerprint
from retrieval.errors import KnowledgeBaseError
from retrieval.index import KnowledgeIndex
from retrieval.ingest import AgentAnswer, documents_from_records, load_documents
from storage.models import ModelVersion
from training.calibration import DecisionPolicy
from training.data import Example
from training.errors import ModelError
from training.feedback import WrittenAnswer
from training.locations import located
from training.model import IntentModel, new_version, retag
from training.train import TrainingConfig, train

log = logging.getLogger(__name__)

MODEL_DIR = "model"
INDEX_DIR = "index"
ANSWERS_FILE = "answers.json"
MANIFEST_FILE = "manifest.json"

VERSION_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
"""Allowed version names: safe as one path component and within the registry's 64 characters."""

_STAGING_SUFFIX = ".tmp"
_STALE_STAGING_S = 6 * 3600
_METRIC_KEYS = ("threshold", "best_epoch", "train_examples", "validation_examples", "training_seconds")


class LoadedVersion(NamedTuple):
    """What `load_version` returns; unpacks as `model, index, answers = load_version(path)`."""

    model: IntentModel
    kb: KnowledgeIndex
    answers: dict[str, str]


def free_version_name(models_dir: str | os.PathLike[str], taken: Callable[[str], bool] = lambda _: False) -> str:
    """A new version name (`training.model.new_version`, e.g. `v20261128-233001`) that is neither a directory under
    `models_dir` nor `taken` (e.g. already in the registry): `-2`, `-3` ... are added within the same second."""
    root = Path(models_dir).expanduser()
    base = new_version()
    name, n = base, 1
    while (root / name).exists() or taken(name):
        n += 1
        name = f"{base}-{n}"
    return name


def knowledge_documents(kb_path: Path, answers: Iterable[WrittenAnswer] = ()) -> list[Document]:
    """What a version indexes: the knowledge-base folder (when it exists) plus the agent-written answers."""
    documents = load_documents(kb_path) if kb_path.exists() else []
    return documents + documents_from_records(AgentAnswer(a.key, a.question, a.answer) for a in answers)


def check_version_name(version: str) -> str:
    """Return `version` if it is a valid directory name for a version, else raise ModelError."""
    if not VERSION_NAME.match(version):
        raise ModelError(
            f"invalid model version name {version!r}: use letters, digits, '.', '_' or '-' (at most 64 characters, "
            "not starting with '.' or '-'), e.g. v20261128-233001"
        )
    return version


def build_version(
    models_dir: str | os.PathLike[str],
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
) -> Path:
    """Train a model, index the knowledge base with it, and write both as version `version`, atomically.

    Args:
        models_dir: Folder holding all versions (`settings.models_dir`); created if missing.
        version: The new version's name (e.g. `new_version_name()`); it must not exist yet.
        train_examples: Labelled training examples.
        val_examples: Validation examples (calibrate the abstention threshold); None carves them from training.
        training_config: Hyper-parameters; its `version` is overridden with `version`.
        kb_documents: Knowledge-base documents to index with the trained model's encoder (may be empty).
        extra_answers: Agent-written answers for intents that have no curated answer in the catalog.
        policy: How the operating point is chosen (defaults when None).
        log_out_of_scope: Agent-labelled out-of-scope questions to calibrate on (never trained on).
        progress: Show training progress bars.

    Returns:
        The version directory `models_dir/<version>`.

    Raises:
        ModelError: The version exists, its name is invalid, or training fails.
        DataError: The examples are unusable.
        KnowledgeBaseError: Indexing fails.
    """
    with _staged(models_dir, version) as staging:
        config = dataclasses.replace(training_config, version=version)
        model = train(
            config,
            train_examples,
            val_examples,
            staging / MODEL_DIR,
            policy=policy,
            log_out_of_scope=log_out_of_scope,
            progress=progress,
        )
        _build_index(model, kb_documents).save(staging / INDEX_DIR)
        answers = _clean_answers(extra_answers or {})
        if answers:
            _write_json(staging / ANSWERS_FILE, answers)
        _write_json(staging / MANIFEST_FILE, _manifest(version, model, kb_documents, answers))
    return Path(models_dir).expanduser() / version


def derive_version(
    models_dir: str | os.PathLike[str], version: str, source: str | os.PathLike[str], kb_documents: Sequence[Document]
) -> Path:
    """A new version `version` with the model and answers of the version at `source` and a fresh index of
    `kb_documents` (the knowledge base changed, the classifier did not), written atomically like `build_version`.

    The model's files are hard-linked where the file system allows (versions are never modified in place).

    Raises:
        ModelError: `source` is not a complete version, or `version` exists or is invalid.
        KnowledgeBaseError: Indexing fails.
    """
    origin = Path(source).expanduser()
    manifest = read_manifest(origin)
    with _staged(models_dir, version) as staging:
        shutil.copytree(origin / MODEL_DIR, staging / MODEL_DIR, copy_function=_link_or_copy)
        retag(staging / MODEL_DIR, version)
        model = IntentModel.load(staging / MODEL_DIR, device="cpu")
        _build_index(model, kb_documents).save(staging / INDEX_DIR)
        answers = read_answers(origin)
        if answers:
            _write_json(staging / ANSWERS_FILE, answers)
        manifest.update(
            version=version, created_at=_now(), derived_from=manifest["version"], **_kb_summary(kb_documents)
        )
        _write_json(staging / MANIFEST_FILE, manifest)
    return Path(models_dir).expanduser() / version


def import_version(models_dir: str | os.PathLike[str], source: str | os.PathLike[str]) -> tuple[str, Path]:
    """Copy the complete version directory `source` (from another data dir, a backup) into `models_dir` under its
    own name, after verifying that it loads; files are hard-linked where the file system allows. A directory
    already in `models_dir` is verified and used in place. Returns (version, directory).

    Raises:
        ModelError / KnowledgeBaseError: `source` is not a complete, loadable version, or its name is taken.
    """
    origin = Path(source).expanduser().resolve()
    version = check_version_name(str(read_manifest(origin)["version"]))
    load_version(origin)  # verify before anything is copied
    root = Path(models_dir).expanduser()
    if origin == (root / version).resolve():
        return version, root / version
    with _staged(root, version) as staging:
        shutil.copytree(origin, staging, copy_function=_link_or_copy, dirs_exist_ok=True)
    return version, root / version


def rebuild_index(version_dir: str | os.PathLike[str], kb_documents: Sequence[Document]) -> KnowledgeIndex:
    """Index `kb_documents` again with the version's own model and swap the new index in (the repair for a missing
    or corrupt index). The new index is complete on disk before the old one is moved aside; the manifest's
    knowledge-base fields are rewritten atomically. A bot already serving this version keeps the index it loaded.

    Raises:
        ModelError: The directory is not a complete version or its model does not load.
        KnowledgeBaseError: Indexing fails.
    """
    path = Path(version_dir).expanduser()
    manifest = read_manifest(path)
    model = IntentModel.load(path / MODEL_DIR, device="cpu")
    index = _build_index(model, kb_documents)
    fresh = path / f".{INDEX_DIR}.rebuilt{_STAGING_SUFFIX}"
    shutil.rmtree(fresh, ignore_errors=True)
    index.save(fresh)
    old = path / f".{INDEX_DIR}.old{_STAGING_SUFFIX}"
    shutil.rmtree(old, ignore_errors=True)
    if (path / INDEX_DIR).exists():
        os.replace(path / INDEX_DIR, old)
    os.replace(fresh, path / INDEX_DIR)
    shutil.rmtree(old, ignore_errors=True)
    manifest.update(_kb_summary(kb_documents), index_rebuilt_at=_now())
    _write_json_atomic(path / MANIFEST_FILE, manifest)
    return index


def read_manifest(version_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """The version's `manifest.json`; ModelError when the directory is not a complete version."""
    path = Path(version_dir).expanduser()
    if not path.is_dir():
        raise ModelError(f"{path}: no such model version directory; check the registry (`supportbot model list`)")
    file = path / MANIFEST_FILE
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ModelError(
            f"{path}: {MANIFEST_FILE} is missing, so this version is incomplete; roll back (`supportbot model "
            "rollback`) or train a new one (`supportbot retrain --force`)"
        ) from None
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise ModelError(f"{path}: {MANIFEST_FILE} is unreadable ({exc}); {_REPAIR}") from None
    if not isinstance(data, dict) or not isinstance(data.get("version"), str):
        raise ModelError(f"{path}: {MANIFEST_FILE} has no 'version'; {_REPAIR}")
    return data


def read_answers(version_dir: str | os.PathLike[str]) -> dict[str, str]:
    """The version's agent-written answers (`answers.json`); {} when the file is absent."""
    file = Path(version_dir).expanduser() / ANSWERS_FILE
    if not file.exists():
        return {}
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise ModelError(f"{file} is unreadable ({exc}); fix or delete it, or {_REPAIR}") from None
    if not isinstance(data, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in data.items()):
        raise ModelError(f"{file} must map intent names to answer texts; fix or delete it, or {_REPAIR}")
    return _clean_answers(data)


def load_version(
    version_dir: str | os.PathLike[str],
    *,
    device: str | None = "cpu",
    threads: int | None = None,
    quantize: bool = False,
) -> LoadedVersion:
    """Load and verify a complete version: its model, its index and its agent-written answers.

    Args:
        version_dir: `models_dir/<version>`.
        device: Torch device for the model ("cpu", "cuda", or None/"auto").
        threads: torch CPU threads (process-wide); None keeps torch's default.
        quantize: int8 dynamic quantisation of the model (CPU only).

    Raises:
        ModelError: The directory, manifest, model or answers are missing or broken, or the index was not built
            with this model's encoder.
        KnowledgeBaseError: The index is missing or broken.
    """
    path = Path(version_dir).expanduser()
    manifest = read_manifest(path)
    if not (path / INDEX_DIR).is_dir():
        raise KnowledgeBaseError(f"{path}: the {INDEX_DIR}/ directory is missing; {_reindex(path)}")
    model = IntentModel.load(path / MODEL_DIR, device=device, threads=threads, quantize=quantize)
    if model.version != manifest["version"]:
        raise ModelError(
            f"{path}: the model is version {model.version} but the manifest says {manifest['version']}; {_REPAIR}"
        )
    index = KnowledgeIndex.load(path / INDEX_DIR)
    _check_index_matches(path, index, model)
    return LoadedVersion(model, index, read_answers(path))


def load_registered(
    record: ModelVersion, models_dir: Path, *, threads: int | None = None, quantize: bool = False
) -> LoadedVersion:
    """Load the registry entry `record` (its directory found under `models_dir`, `training.pipeline.located`),
    checking that the directory holds that version: what a running bot loads, and what `supportbot model promote`
    and `rollback` check first.

    Raises:
        ModelError / KnowledgeBaseError: As `load_version`, or the directory holds another version.
    """
    directory = located(record, models_dir)
    manifest = read_manifest(directory)
    if manifest["version"] != record.version:
        raise ModelError(
            f"the registry's version {record.version} points at {directory}, which holds version "
            f"{manifest['version']}; promote the right version (`supportbot model promote VERSION`) or roll back "
            "(`supportbot model rollback`)"
        )
    return load_version(directory, threads=threads, quantize=quantize)


def list_versions(models_dir: str | os.PathLike[str]) -> list[str]:
    """Names of the complete versions (directories with a manifest) under `models_dir`, oldest first (by the
    manifest's `created_at`, then by name: a hand-picked `--version` name sorts where it was made)."""
    root = Path(models_dir).expanduser()
    if not root.is_dir():
        return []
    found = [
        entry
        for entry in root.iterdir()
        if entry.is_dir() and not entry.name.startswith(".") and (entry / MANIFEST_FILE).is_file()
    ]
    return [entry.name for entry in sorted(found, key=lambda entry: (_created_at(entry), entry.name))]


def _created_at(version_dir: Path) -> str:
    try:
        return str(read_manifest(version_dir).get("created_at") or "")
    except ModelError:
        return ""


def prune_versions(models_dir: str | os.PathLike[str], keep: int, protect: Iterable[str | None] = ()) -> list[str]:
    """Delete all but the newest `keep` versions, never one named in `protect` (production, previous).

    Also removes staging directories that a crashed build left behind (older than 6 hours). Directories that
    are not versions (no manifest) are left alone.

    Args:
        models_dir: Folder holding all versions.
        keep: How many of the newest versions to keep (besides the protected ones); at least 1.
        protect: Version names never deleted (None entries are ignored, so `{prod, previous}` may hold None).

    Returns:
        The names of the deleted versions, oldest first.
    """
    if keep < 1:
        raise ValueError(f"keep must be >= 1 (got {keep})")
    root = Path(models_dir).expanduser()
    if not root.is_dir():
        return []
    protected = {name for name in protect if name}
    versions = list_versions(root)
    doomed = [name for name in versions[: max(len(versions) - keep, 0)] if name not in protected]
    removed = []
    for name in doomed:
        try:
            _remove_directory(root / name)
        except OSError as exc:
            log.warning("could not delete model version %s: %s", name, exc)
            continue
        removed.append(name)
        log.info("pruned model version %s", name)
    remove_staging(root, _STALE_STAGING_S)
    return removed


# --- internals ------------------------------------------------------------------------------------------

_REPAIR = (
    "this version cannot be used: train a new one (`supportbot retrain --force`); if it is the production version, "
    "`supportbot model rollback` serves the previous one meanwhile"
)


def _reindex(path: Path) -> str:
    return (
        f"rebuild its index with `supportbot kb rebuild {path.name}` (the version's own encoder), or roll back "
        "(`supportbot model rollback`) if it is the production version"
    )


@contextlib.contextmanager
def _staged(models_dir: str | os.PathLike[str], version: str) -> Iterator[Path]:
    """A hidden staging directory renamed to `models_dir/version` when the block succeeds; removed if it fails."""
    check_version_name(version)
    root = Path(models_dir).expanduser()
    target = root / version
    if target.exists():
        raise ModelError(f"model version {version} already exists at {target}; choose a new version name")
    root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{version}.", suffix=_STAGING_SUFFIX, dir=root))
    try:
        yield staging
        if target.exists():
            raise ModelError(f"model version {version} appeared at {target} while it was being built")
        os.replace(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    log.info("built model version %s at %s", version, target)


def _write_json_atomic(path: Path, data: Any) -> None:
    """A new file renamed over `path` (never written in place: version files may be hard links)."""
    staging = path.with_name(f".{path.name}{_STAGING_SUFFIX}")
    _write_json(staging, data)
    os.replace(staging, path)


def _link_or_copy(source: str, destination: str) -> None:
    try:
        os.link(source, destination)
    except OSError:
        shutil.copy2(source, destination)


def _build_index(model: IntentModel, documents: Sequence[Document]) -> KnowledgeIndex:
    return KnowledgeIndex.build(list(documents), model)


def _check_index_matches(path: Path, index: KnowledgeIndex, model: IntentModel) -> None:
    """The index must hold vectors of this model's encoder (same width and, when recorded, same id)."""
    if index.dim != model.dim:
        raise ModelError(
            f"{path}: the index holds {index.dim}-dimensional vectors but the model embeds in {model.dim}; "
            + _reindex(path)
        )
    recorded = index.encoder_id
    if recorded and recorded != model.encoder_id:
        raise ModelError(
            f"{path}: the index was built with encoder {recorded!r}, not this version's model "
            f"({model.encoder_id!r}); {_reindex(path)}"
        )


def _manifest(
    version: str, model: IntentModel, documents: Sequence[Document], answers: Mapping[str, str]
) -> dict[str, Any]:
    info = model.info
    return {
        "version": version,
        "created_at": _now(),
        "dataset_hash": info.get("dataset_hash"),
        "labels": model.labels,
        "out_of_scope_label": model.out_of_scope_label,
        "metrics": {key: info[key] for key in (*_METRIC_KEYS, "validation") if key in info},
        "base_model": info.get("base_model"),
        "init_from": info.get("init_from"),
        "extra_answers": sorted(answers),
        **_kb_summary(documents),
    }


def _kb_summary(documents: Sequence[Document]) -> dict[str, Any]:
    return {"kb_fingerprint": documents_fingerprint(documents), "kb_documents": len(documents)}


def _clean_answers(answers: Mapping[str, str]) -> dict[str, str]:
    return {name.strip(): text.strip() for name, text in answers.items() if name.strip() and text.strip()}


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _write_json(path: Path, data: Any) -> None:
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n", encoding="utf-8")


def _remove_directory(path: Path) -> None:
    """Rename aside first (so the version disappears at once), then delete."""
    doomed = path.with_name(f".{path.name}.deleting{_STAGING_SUFFIX}")
    os.replace(path, doomed)
    shutil.rmtree(doomed, ignore_errors=True)


def remove_staging(models_dir: str | os.PathLike[str], older_than_s: float = 0.0) -> list[str]:
    """Delete the hidden staging directories that builds killed midway left in `models_dir` (only those older than
    `older_than_s`); returns their names. Call it with 0 only while holding the lock that every build takes."""
    root = Path(models_dir).expanduser()
    if not root.is_dir():
        return []
    cutoff = time.time() - older_than_s
    removed = []
    for entry in root.iterdir():
        if entry.name.startswith(".") and entry.name.endswith(_STAGING_SUFFIX) and entry.is_dir():
            try:
                if entry.stat().st_mtime <= cutoff:
                    shutil.rmtree(entry, ignore_errors=True)
                    removed.append(entry.name)
            except OSError:
                continue
    return sorted(removed)
