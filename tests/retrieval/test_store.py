from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import pytest

from retrieval import store
from retrieval.errors import KnowledgeBaseError
from retrieval.index import KnowledgeIndex
from tests.retrieval.conftest import HashEmbedder, make_docs

ROOT = Path(__file__).resolve().parents[2]


def writer(text: str):  # type: ignore[no-untyped-def]
    def write(directory: Path) -> None:
        (directory / "data.txt").write_text(text)

    return write


def test_generations_are_published_in_order_and_pruned(tmp_path: Path) -> None:
    assert store.current_generation(tmp_path) is None
    for n in range(1, 5):
        assert store.write_generation(tmp_path, writer(f"v{n}"), keep=2) == n
    assert store.current_generation(tmp_path) == 4
    assert store.generations(tmp_path) == [3, 4]
    assert (store.generation_dir(tmp_path, 4) / "data.txt").read_text() == "v4"
    assert sorted(p.name for p in tmp_path.iterdir()) == [".lock", "CURRENT", "versions"]


def test_a_failing_writer_leaves_nothing_behind(tmp_path: Path) -> None:
    store.write_generation(tmp_path, writer("v1"))

    def fail(directory: Path) -> None:
        (directory / "data.txt").write_text("partial")
        raise KnowledgeBaseError("encoder exploded")

    with pytest.raises(KnowledgeBaseError, match="encoder exploded"):
        store.write_generation(tmp_path, fail)
    assert store.current_generation(tmp_path) == 1
    assert [p.name for p in (tmp_path / "versions").iterdir()] == ["000001"]


def test_leftovers_of_a_killed_writer_are_cleaned_by_the_next_save(tmp_path: Path) -> None:
    store.write_generation(tmp_path, writer("v1"))
    (tmp_path / "versions" / ".tmp-000002-deadbeef").mkdir()
    (tmp_path / "versions" / ".tmp-000002-deadbeef" / "data.txt").write_text("half")
    assert store.write_generation(tmp_path, writer("v2")) == 2
    assert not list((tmp_path / "versions").glob(".tmp-*"))


def test_concurrent_saves_get_distinct_generations(tmp_path: Path) -> None:
    embedder = HashEmbedder()
    indexes = [KnowledgeIndex.build(make_docs()[:n], embedder) for n in (1, 2, 3, 4)]
    errors: list[BaseException] = []

    def save(index: KnowledgeIndex) -> None:
        try:
            index.save(tmp_path, keep=10)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=save, args=(index,)) for index in indexes]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert sorted(index.generation or 0 for index in indexes) == [1, 2, 3, 4]
    for generation in range(1, 5):
        KnowledgeIndex.load(tmp_path, generation=generation)  # every generation is complete


CRASHING_SAVE = """
import os, sys
import faiss
import retrieval.index, retrieval.store
from retrieval.index import KnowledgeIndex
from tests.retrieval.conftest import HashEmbedder, make_docs

where = sys.argv[2]
real_write = faiss.write_index

def write_then_die(index, path):
    real_write(index, path)
    if where == "mid_file":
        with open(path, "r+b") as handle:
            handle.truncate(os.path.getsize(path) // 2)
        os._exit(9)

def die_before_publish(root, generation):
    os._exit(9)

retrieval.index.faiss.write_index = write_then_die
if where == "before_publish":
    retrieval.store._publish = die_before_publish
KnowledgeIndex.build(make_docs(), HashEmbedder()).save(sys.argv[1])
"""


@pytest.mark.slow
@pytest.mark.parametrize("where", ["mid_file", "before_publish"])
def test_a_process_killed_mid_save_leaves_the_previous_version_loadable(tmp_path: Path, where: str) -> None:
    KnowledgeIndex.build(make_docs()[:1], HashEmbedder()).save(tmp_path)
    result = subprocess.run(
        [sys.executable, "-c", CRASHING_SAVE, str(tmp_path), where], cwd=ROOT, capture_output=True, timeout=120
    )
    assert result.returncode == 9, result.stderr.decode()
    loaded = KnowledgeIndex.load(tmp_path)
    assert (loaded.generation, loaded.document_count) == (1, 1)
    leftovers = [p.name for p in (tmp_path / "versions").iterdir() if p.name != "000001"]
    assert leftovers  # the crash did leave debris behind (a temp dir or an unpublished generation)
    assert KnowledgeIndex.build(make_docs(), HashEmbedder()).save(tmp_path) == (2 if where == "mid_file" else 3)
    assert KnowledgeIndex.load(tmp_path).document_count == 4
    assert not list((tmp_path / "versions").glob(".tmp-*"))
