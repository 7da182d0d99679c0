"""Model versions on disk: build (atomic), load (verified), derive a re-indexed version, prune."""

from __future__ import annotations

import json
import os
import re
import shutil
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot import versions
from bot.versions import (
    ANSWERS_FILE,
    INDEX_DIR,
    MANIFEST_FILE,
    MODEL_DIR,
    build_version,
    derive_version,
    free_version_name,
    list_versions,
    load_version,
    prune_versions,
    read_manifest,
)
from retrieval.documents import Document, documents_fingerprint
from retrieval.errors import KnowledgeBaseError
from tests.bot.conftest import tiny_config
from training.data import Example
from training.errors import ModelError
from training.model import IntentModel, new_version
from training.train import TrainingConfig

TINY = "v20260101-000000"


def clone(version_dir: Path, target: Path) -> Path:
    """A cheap copy of a version (hard links): edit it only by replacing or deleting files, never in place."""
    shutil.copytree(version_dir, target, copy_function=os.link)
    return target


@pytest.fixture
def fake_train(tiny_version: Path, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Replace training with a copy of the tiny model renamed to the requested version (no real training)."""
    calls: list[str] = []

    def train(config: TrainingConfig, train_examples, val_examples, out_dir, **_: object):  # type: ignore[no-untyped-def]
        calls.append(str(config.version))
        model = IntentModel.load(tiny_version / MODEL_DIR, device="cpu")
        model.info = {**model.info, "version": config.version}
        model.save(out_dir)
        return model

    monkeypatch.setattr(versions, "train", train)
    return calls


EXAMPLES = [Example("hi", "a"), Example("yo", "b")]


def test_new_version_name_is_sortable():
    early = new_version(datetime(2026, 11, 28, 23, 30, 1, tzinfo=UTC))
    late = new_version(datetime(2026, 11, 29, 0, 0, 0, tzinfo=UTC))
    assert early == "v20261128-233001"
    assert early < late
    assert re.fullmatch(r"v\d{8}-\d{6}", new_version())


def test_free_version_name_skips_directories_and_registered_names(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(versions, "new_version", lambda: "v20261128-233001")
    (tmp_path / "v20261128-233001").mkdir()
    assert free_version_name(tmp_path) == "v20261128-233001-2"
    assert free_version_name(tmp_path, lambda name: name.endswith("-2")) == "v20261128-233001-3"


def test_built_version_is_complete_and_loads(tiny_version: Path, tiny_documents: list[Document]):
    assert sorted(p.name for p in tiny_version.iterdir()) == [INDEX_DIR, MANIFEST_FILE, MODEL_DIR]
    manifest = read_manifest(tiny_version)
    assert manifest["version"] == TINY
    assert manifest["kb_fingerprint"] == documents_fingerprint(tiny_documents)
    assert manifest["kb_documents"] == 3
    assert len(manifest["dataset_hash"]) == 64
    assert "accuracy" in manifest["metrics"]["validation"]
    assert manifest["metrics"]["threshold"] == pytest.approx(0.5, abs=0.5)

    model, kb, answers = load_version(tiny_version)
    assert model.version == TINY
    assert kb.encoder_id == model.encoder_id  # indexed with this version's own encoder
    assert kb.document_count == 3
    assert answers == {}
    assert not [p for p in tiny_version.parent.iterdir() if p.name.startswith(".")]  # no staging left


def test_build_writes_agent_answers_and_refuses_an_existing_version(tmp_path: Path, fake_train: list[str]):
    doc = Document(id="a.md", title="A", text="Alpha text.", source="a.md")
    path = build_version(
        tmp_path,
        "v2",
        train_examples=EXAMPLES,
        val_examples=None,
        training_config=tiny_config(),
        kb_documents=[doc],
        extra_answers={"new_intent": "  Agents wrote this.  ", "blank": "  "},
        progress=False,
    )
    assert fake_train == ["v2"]
    assert json.loads((path / ANSWERS_FILE).read_text()) == {"new_intent": "Agents wrote this."}
    assert read_manifest(path)["extra_answers"] == ["new_intent"]
    model, kb, answers = load_version(path)
    assert model.version == "v2" and kb.document_count == 1
    assert answers == {"new_intent": "Agents wrote this."}

    for version, message in (("v2", "already exists"), ("../evil", "invalid model version name")):
        with pytest.raises(ModelError, match=message):
            build_version(
                tmp_path,
                version,
                train_examples=EXAMPLES,
                val_examples=None,
                training_config=tiny_config(),
                kb_documents=[],
            )


def test_failure_mid_build_leaves_nothing(tmp_path: Path, fake_train: list[str], monkeypatch: pytest.MonkeyPatch):
    def broken_index(model, documents):  # type: ignore[no-untyped-def]
        raise KnowledgeBaseError("disk on fire")

    monkeypatch.setattr(versions, "_build_index", broken_index)
    with pytest.raises(KnowledgeBaseError, match="disk on fire"):
        build_version(
            tmp_path / "models",
            "v3",
            train_examples=EXAMPLES,
            val_examples=None,
            training_config=tiny_config(),
            kb_documents=[],
        )
    assert fake_train == ["v3"]  # the model was trained (and saved in staging) before the failure
    assert list((tmp_path / "models").iterdir()) == []
    assert list_versions(tmp_path / "models") == []


def test_load_refuses_incomplete_versions(tiny_version: Path, tmp_path: Path):
    no_manifest = clone(tiny_version, tmp_path / "a")
    (no_manifest / MANIFEST_FILE).unlink()
    with pytest.raises(ModelError, match="manifest.json is missing"):
        load_version(no_manifest)

    no_index = clone(tiny_version, tmp_path / "b")
    shutil.rmtree(no_index / INDEX_DIR)
    with pytest.raises(KnowledgeBaseError, match="index/ directory is missing"):
        load_version(no_index)

    no_model = clone(tiny_version, tmp_path / "c")
    shutil.rmtree(no_model / MODEL_DIR)
    with pytest.raises(ModelError, match="no such model directory"):
        load_version(no_model)

    bad_answers = clone(tiny_version, tmp_path / "d")
    (bad_answers / ANSWERS_FILE).write_text('["not", "a", "mapping"]')
    with pytest.raises(ModelError, match="answers.json"):
        load_version(bad_answers)

    wrong_version = clone(tiny_version, tmp_path / "e")
    manifest = read_manifest(wrong_version)
    (wrong_version / MANIFEST_FILE).unlink()
    (wrong_version / MANIFEST_FILE).write_text(json.dumps({**manifest, "version": "v-other"}))
    with pytest.raises(ModelError, match="manifest says v-other"):
        load_version(wrong_version)

    with pytest.raises(ModelError, match="no such model version directory"):
        load_version(tmp_path / "missing")


def test_derive_version_reindexes_with_the_same_model_as_a_new_version(tiny_version: Path, tmp_path: Path):
    docs = [Document(id="new.md", title="Only one", text="A single new article about llamas.", source="new.md")]
    path = derive_version(tmp_path, "v20260202-000000", tiny_version, docs)
    manifest = read_manifest(path)
    assert manifest["version"] == "v20260202-000000" and manifest["derived_from"] == TINY
    assert manifest["kb_fingerprint"] == documents_fingerprint(docs) != read_manifest(tiny_version)["kb_fingerprint"]
    model, kb, _ = load_version(path)
    assert model.version == "v20260202-000000"
    assert kb.document_count == 1 and kb.encoder_id == model.encoder_id
    original, _, _ = load_version(tiny_version)  # the original is untouched (its files are shared, not edited)
    assert original.version == TINY and load_version(tiny_version).kb.document_count == 3
    assert model.predict(["hello"])[0].label == original.predict(["hello"])[0].label
    with pytest.raises(ModelError, match="already exists"):
        derive_version(tmp_path, "v20260202-000000", tiny_version, docs)
    assert [p.name for p in tmp_path.iterdir()] == ["v20260202-000000"]  # no staging left behind


def _fake_version(root: Path, name: str) -> None:
    (root / name).mkdir(parents=True)
    (root / name / MANIFEST_FILE).write_text(json.dumps({"version": name}))


def test_prune_keeps_newest_and_protected(tmp_path: Path):
    for name in ["v20260101-000000", "v20260102-000000", "v20260103-000000", "v20260104-000000", "v20260105-000000"]:
        _fake_version(tmp_path, name)
    (tmp_path / "notes").mkdir()  # not a version: never touched
    stale = tmp_path / ".v9.abc.tmp"
    stale.mkdir()
    old = time.time() - 7 * 3600
    os.utime(stale, (old, old))
    fresh = tmp_path / ".v10.def.tmp"  # a build in progress
    fresh.mkdir()

    removed = prune_versions(tmp_path, keep=2, protect={"v20260101-000000", None})
    assert removed == ["v20260102-000000", "v20260103-000000"]
    assert list_versions(tmp_path) == ["v20260101-000000", "v20260104-000000", "v20260105-000000"]
    assert (tmp_path / "notes").is_dir() and fresh.is_dir() and not stale.exists()
    assert prune_versions(tmp_path, keep=5) == []
    assert prune_versions(tmp_path / "nothing-here", keep=1) == []
    with pytest.raises(ValueError, match="keep"):
        prune_versions(tmp_path, keep=0)


def test_versions_are_ordered_by_creation_time_then_name(tmp_path: Path):
    for name, created in (("zeta", "2026-01-01T00:00:00+00:00"), ("alpha", "2026-03-01T00:00:00+00:00")):
        (tmp_path / name).mkdir()
        (tmp_path / name / MANIFEST_FILE).write_text(json.dumps({"version": name, "created_at": created}))
    assert list_versions(tmp_path) == ["zeta", "alpha"]  # a hand-picked name sorts where it was made
    assert prune_versions(tmp_path, keep=1) == ["zeta"]
