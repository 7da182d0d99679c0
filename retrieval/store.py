"""The on-disk form of a `KnowledgeIndex`: crash-safe, write-once, verified when read.

An index directory holds `index.faiss` (the FAISS index), `store.json` (documents and chunks by FAISS id) and
`manifest.json` (format version, encoder, counts, the sha256 of both files). `save` writes it with
`write_directory`, `load` reads it back and checks everything agrees.

`write_directory(target, write)` lets `write` fill a hidden sibling (`.<name>.tmp-<random>`), fsyncs every
file and the directory, then renames it to `target` and fsyncs the parent. A crash or an error before the
rename leaves no `target`, only the hidden temporary directory (removed by the next successful write of the
same target). A directory is written once: every model version builds its index afresh.

Index directories written before this layout (`CURRENT` naming the published generation under
`versions/<NNNNNN>/`) are still read: `data_dir` resolves them to the published generation's directory.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import faiss

from retrieval.chunking import ChunkingConfig
from retrieval.documents import Chunk, Document, documents_fingerprint
from retrieval.errors import KnowledgeBaseError

FORMAT_VERSION = 1
INDEX_FILE = "index.faiss"
STORE_FILE = "store.json"
MANIFEST_FILE = "manifest.json"
REBUILD_HINT = "rebuild the version's index with `supportbot kb rebuild VERSION` (its own encoder)"
LEGACY_POINTER = "CURRENT"
LEGACY_VERSIONS = "versions"


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file (streamed by the standard library)."""
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def fsync_path(path: Path) -> None:
    """Flush a file's or a directory's content and metadata to disk."""
    flags = os.O_RDONLY | (os.O_DIRECTORY if path.is_dir() else 0)
    fd = os.open(path, flags)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_directory(target: Path, write: Callable[[Path], None]) -> None:
    """Create `target` with the files `write(directory)` puts in an empty temporary directory, atomically.

    If `write` (or anything before the rename) raises, `target` is not created, the temporary directory is
    removed and the exception propagates.

    Raises:
        KnowledgeBaseError: `target` already exists (or appeared meanwhile), or the files cannot be written.
    """
    target = target.expanduser()
    if target.exists():
        raise KnowledgeBaseError(
            f"{target} already exists: an index directory is written once, so save to a new directory"
        )
    parent = target.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
        temp = parent / f".{target.name}.tmp-{uuid.uuid4().hex[:12]}"
        temp.mkdir()
    except OSError as exc:
        raise KnowledgeBaseError(f"cannot write the index to {target}: {exc}") from exc
    try:
        write(temp)
        for path in temp.iterdir():
            fsync_path(path)
        fsync_path(temp)
        os.rename(temp, target)  # fails if a non-empty `target` appeared meanwhile
        fsync_path(parent)
    except BaseException as exc:
        shutil.rmtree(temp, ignore_errors=True)
        if isinstance(exc, OSError):
            raise KnowledgeBaseError(f"cannot write the index to {target}: {exc}; nothing was written") from exc
        raise
    for leftover in parent.glob(f".{target.name}.tmp-*"):  # left by writers that crashed
        shutil.rmtree(leftover, ignore_errors=True)


def data_dir(root: Path) -> Path | None:
    """The directory holding the index files saved at `root`, or None when nothing was saved there.

    That is `root` itself, or for a directory of the old layout the generation its `CURRENT` names.

    Raises:
        KnowledgeBaseError: an old-layout `CURRENT` that cannot be read or does not hold a generation number.
    """
    pointer = root / LEGACY_POINTER
    if not pointer.is_file():
        return root if root.is_dir() and any(root.iterdir()) else None
    try:
        text = pointer.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise KnowledgeBaseError(f"cannot read {pointer} ({exc})") from exc
    if not text.isdigit():
        raise KnowledgeBaseError(f"{pointer} should hold a generation number but holds {text[:40]!r}")
    return root / LEGACY_VERSIONS / f"{int(text):06d}"


IndexKind = Literal["flat", "hnsw"]


def kind_of(index: Any) -> IndexKind | None:
    """`flat` for an `IndexIDMap2` over `IndexFlatIP`, `hnsw` over `IndexHNSWFlat`, else None."""
    inner = faiss.downcast_index(index.index) if isinstance(index, faiss.IndexIDMap2) else None
    if isinstance(inner, faiss.IndexHNSWFlat):
        return "hnsw"
    if isinstance(inner, faiss.IndexFlatIP):
        return "flat"
    return None


def hnsw_params(index: Any) -> dict[str, int]:
    """M, efConstruction and efSearch of an HNSW index; {} for an exact one."""
    inner = faiss.downcast_index(index.index)
    if not isinstance(inner, faiss.IndexHNSWFlat):
        return {}
    hnsw = inner.hnsw
    m = int(hnsw.nb_neighbors(1))  # type: ignore[attr-defined]  # (missing from faiss's stubs)
    return {"M": m, "efConstruction": int(hnsw.efConstruction), "efSearch": int(hnsw.efSearch)}


@dataclass(frozen=True)
class IndexData:
    """What a `KnowledgeIndex` is made of: the FAISS index, the documents and chunks (by FAISS id) it stands for."""

    encoder_id: str
    dim: int
    faiss_index: Any
    documents: dict[str, Document]
    chunks: dict[int, Chunk]
    approx_threshold: int
    chunking: ChunkingConfig
    created_at: str | None = None


def unusable(root: Path, problem: str) -> KnowledgeBaseError:
    """The error for an index directory that cannot be read, saying how to rebuild it."""
    return KnowledgeBaseError(f"the knowledge-base index in {root} is unusable: {problem}; {REBUILD_HINT}")


def save(target: Path, data: IndexData) -> IndexData:
    """Write `data` into the new directory `target` atomically (`write_directory`); returns it with `created_at`."""
    created_at = datetime.now(UTC).isoformat(timespec="seconds")

    def write(directory: Path) -> None:
        try:
            faiss.write_index(data.faiss_index, str(directory / INDEX_FILE))
        except RuntimeError as exc:  # FAISS reports I/O failures as RuntimeError
            raise KnowledgeBaseError(
                f"FAISS could not write the index ({str(exc).splitlines()[0]}); nothing was written"
            ) from exc
        payload = {
            "documents": [data.documents[doc_id].to_dict() for doc_id in sorted(data.documents)],
            "chunks": [{"id": i, **data.chunks[i].to_dict()} for i in sorted(data.chunks)],
        }
        (directory / STORE_FILE).write_text(json.dumps(payload, ensure_ascii=False), encoding="utf-8")
        manifest = {
            "format_version": FORMAT_VERSION,
            "created_at": created_at,
            "encoder_id": data.encoder_id,
            "dim": data.dim,
            "index_kind": kind_of(data.faiss_index),
            "hnsw": hnsw_params(data.faiss_index),
            "approx_threshold": data.approx_threshold,
            "chunking": asdict(data.chunking),
            "chunk_count": len(data.chunks),
            "document_count": len(data.documents),
            "fingerprint": documents_fingerprint(data.documents.values()),
            "sha256": {name: sha256_file(directory / name) for name in (INDEX_FILE, STORE_FILE)},
        }
        (directory / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2), encoding="utf-8")

    write_directory(target, write)
    return replace(data, created_at=created_at)


def load(root: Path) -> IndexData:
    """Read the index saved at `root` (either layout), checking format version, checksums, kind and counts.

    Raises:
        KnowledgeBaseError: nothing saved there, or the files are damaged or incompatible; the message says
            how to rebuild the index.
    """
    try:
        directory = data_dir(root)
    except KnowledgeBaseError as exc:
        raise unusable(root, str(exc)) from None
    if directory is None:
        raise KnowledgeBaseError(f"no knowledge-base index in {root}: {REBUILD_HINT}")
    if not directory.is_dir():
        raise unusable(root, f"{directory} does not exist")

    def read_json(name: str) -> Any:
        try:
            return json.loads((directory / name).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise unusable(root, f"{name} is missing") from None
        except (OSError, ValueError) as exc:
            raise unusable(root, f"{name} is unreadable ({exc})") from exc

    manifest = read_json(MANIFEST_FILE)
    if not isinstance(manifest, dict):
        raise unusable(root, f"{MANIFEST_FILE} is not a JSON object")
    version = manifest.get("format_version")
    if version != FORMAT_VERSION:
        newer = isinstance(version, int) and version > FORMAT_VERSION
        raise unusable(
            root,
            f"format version {version} is {'newer' if newer else 'not'} supported by this supportbot "
            f"(reads {FORMAT_VERSION}){'; upgrade supportbot or' if newer else ''}",
        )
    try:
        dim, kind = int(manifest["dim"]), manifest["index_kind"]
        chunk_count, document_count = int(manifest["chunk_count"]), int(manifest["document_count"])
        checksums: dict[str, str] = manifest["sha256"]
        chunking = ChunkingConfig(**manifest["chunking"])
        encoder_id, approx_threshold = str(manifest["encoder_id"]), int(manifest["approx_threshold"])
    except (KeyError, TypeError, ValueError) as exc:
        raise unusable(root, f"{MANIFEST_FILE} lacks or garbles a field ({exc})") from exc
    for name in (INDEX_FILE, STORE_FILE):
        path = directory / name
        if not path.is_file():
            raise unusable(root, f"{name} is missing")
        if sha256_file(path) != checksums.get(name):
            raise unusable(root, f"{name} does not match its checksum (truncated or corrupted)")
    try:
        faiss_index = faiss.read_index(str(directory / INDEX_FILE))
    except RuntimeError as exc:
        raise unusable(root, f"FAISS cannot read {INDEX_FILE} ({str(exc).splitlines()[0]})") from exc
    if kind_of(faiss_index) != kind:
        raise unusable(root, f"{INDEX_FILE} is not the {kind!r} index the manifest describes")
    if faiss_index.d != dim or faiss_index.ntotal != chunk_count:
        raise unusable(
            root,
            f"{INDEX_FILE} holds {faiss_index.ntotal} vectors of dim {faiss_index.d}, "
            f"the manifest says {chunk_count} of dim {dim}",
        )
    payload = read_json(STORE_FILE)
    try:
        documents = {d["id"]: Document.from_dict(d) for d in payload["documents"]}
        chunks = {int(c["id"]): Chunk.from_dict(c) for c in payload["chunks"]}
    except (KeyError, TypeError, ValueError) as exc:
        raise unusable(root, f"{STORE_FILE} is malformed ({exc})") from exc
    if len(documents) != document_count or len(chunks) != chunk_count:
        raise unusable(root, f"{STORE_FILE} does not hold the documents and chunks the manifest counts")
    if any(c.doc_id not in documents for c in chunks.values()):
        raise unusable(root, f"{STORE_FILE} has chunks of unknown documents")
    created_at = manifest.get("created_at")
    return IndexData(encoder_id, dim, faiss_index, documents, chunks, approx_threshold, chunking, created_at)
