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
        (directory / "more.txt").write_text(text * 2)

    return write


def test_a_directory_appears_complete_and_alone(tmp_path: Path) -> None:
    target = tmp_path / "deep" / "index"
    store.write_directory(target, writer("v1"))
    assert sorted(p.name for p in target.iterdir()) == ["data.txt", "more.txt"]
    assert (target / "more.txt").read_text() == "v1v1"
    assert [p.name for p in target.parent.iterdir()] == ["index"]  # no temporary directory or lock left
    assert store.data_dir(target) == target


def test_an_existing_directory_is_never_overwritten(tmp_path: Path) -> None:
    store.write_directory(tmp_path / "index", writer("v1"))
    calls: list[Path] = []
    with pytest.raises(KnowledgeBaseError, match="already exists: an index directory is written once"):
        store.write_directory(tmp_path / "index", calls.append)
    assert calls == []
    assert (tmp_path / "index" / "data.txt").read_text() == "v1"


def test_a_failing_writer_leaves_nothing_behind(tmp_path: Path) -> None:
    def fail(directory: Path) -> None:
        (directory / "data.txt").write_text("partial")
        raise KnowledgeBaseError("encoder exploded")

    with pytest.raises(KnowledgeBaseError, match="encoder exploded"):
        store.write_directory(tmp_path / "index", fail)
    assert list(tmp_path.iterdir()) == []


def test_an_os_error_becomes_a_knowledge_base_error(tmp_path: Path) -> None:
    def fail(directory: Path) -> None:
        raise PermissionError(13, "Permission denied")

    with pytest.raises(KnowledgeBaseError, match="cannot write the index to .*Permission denied; nothing was written"):
        store.write_directory(tmp_path / "index", fail)
    (tmp_path / "file").write_text("x")
    with pytest.raises(KnowledgeBaseError, match="cannot write the index to"):
        store.write_directory(tmp_path / "file" / "index", writer("v1"))  # the parent is a file
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]


def test_leftovers_of_a_killed_writer_are_cleaned_by_the_next_write(tmp_path: Path) -> None:
    (tmp_path / ".index.tmp-deadbeef").mkdir()
    (tmp_path / ".index.tmp-deadbeef" / "data.txt").write_text("half")
    (tmp_path / ".other.tmp-deadbeef").mkdir()  # another target's: left alone
    store.write_directory(tmp_path / "index", writer("v1"))
    assert sorted(p.name for p in tmp_path.iterdir()) == [".other.tmp-deadbeef", "index"]


def test_data_dir_of_the_earlier_layout(tmp_path: Path) -> None:
    assert store.data_dir(tmp_path / "missing") is None
    assert store.data_dir(tmp_path) is None  # empty
    (tmp_path / "CURRENT").write_text("12\n")
    assert store.data_dir(tmp_path) == tmp_path / "versions" / "000012"
    (tmp_path / "CURRENT").write_text("twelve")
    with pytest.raises(KnowledgeBaseError, match="should hold a generation number but holds 'twelve'"):
        store.data_dir(tmp_path)


def test_concurrent_saves_to_one_directory_publish_exactly_one(tmp_path: Path) -> None:
    embedder = HashEmbedder()
    indexes = [KnowledgeIndex.build(make_docs()[:n], embedder) for n in (1, 2, 3, 4)]
    errors: list[BaseException] = []
    barrier = threading.Barrier(len(indexes))

    def save(index: KnowledgeIndex) -> None:
        barrier.wait()
        try:
            index.save(tmp_path / "index")
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=save, args=(index,)) for index in indexes]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(errors) == len(indexes) - 1
    assert all(isinstance(exc, KnowledgeBaseError) for exc in errors), errors
    [winner] = [index for index in indexes if index.created_at is not None]
    loaded = KnowledgeIndex.load(tmp_path / "index")  # complete and verified
    assert loaded.fingerprint == winner.fingerprint
    assert [p.name for p in tmp_path.iterdir()] == ["index"]


CRASHING_SAVE = """
import os, sys
import faiss
import retrieval.store
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

def die_before_rename(source, target):
    os._exit(9)

retrieval.store.faiss.write_index = write_then_die
if where == "before_rename":
    retrieval.store.os.rename = die_before_rename
KnowledgeIndex.build(make_docs(), HashEmbedder()).save(sys.argv[1])
"""


@pytest.mark.slow
@pytest.mark.parametrize("where", ["mid_file", "before_rename"])
def test_a_process_killed_mid_save_leaves_no_index(tmp_path: Path, where: str) -> None:
    target = tmp_path / "index"
    result = subprocess.run(
        [sys.executable, "-c", CRASHING_SAVE, str(target), where], cwd=ROOT, capture_output=True, timeout=120
    )
    assert result.returncode == 9, result.stderr.decode()
    assert not target.exists()
    with pytest.raises(KnowledgeBaseError, match="no knowledge-base index"):
        KnowledgeIndex.load(target)
    leftovers = [p.name for p in tmp_path.iterdir()]
    assert len(leftovers) == 1 and leftovers[0].startswith(".index.tmp-")  # the crash left debris behind
    KnowledgeIndex.build(make_docs(), HashEmbedder()).save(target)
    assert KnowledgeIndex.load(target).document_count == 4
    assert [p.name for p in tmp_path.iterdir()] == ["index"]
