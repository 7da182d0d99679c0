"""`KnowledgeIndex`: the FAISS index and the metadata it needs, built, changed, searched and saved as one unit.

Vectors live in a FAISS `IndexIDMap2` whose int64 ids point to chunk metadata. Below `APPROX_THRESHOLD`
chunks the inner index is exact (`IndexFlatIP`); from there on it is HNSW (`IndexHNSWFlat`, inner product),
the choice and parameters coming from `bench/bench_retrieval.py` (see bench/README.md).

Latency: single queries are fastest with one FAISS OpenMP thread (`faiss.omp_set_num_threads(1)` in the
serving process); with more threads on a busy machine, exact search waits on thread barriers (10x slower).

Removing vectors: the flat index removes them at once (`remove_ids`). HNSW cannot remove, so a deleted or
updated chunk's old vector is *tombstoned*: it is never returned by a search, and the graph is rebuilt from
the live vectors (`compact`) when tombstones pass `COMPACT_RATIO` of the index and always before `save`, so
a saved index never holds a stale vector.
"""

from __future__ import annotations

import json
import logging
import threading
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import faiss
import numpy as np

from retrieval import store
from retrieval.chunking import ChunkingConfig
from retrieval.documents import Chunk, Document, documents_fingerprint
from retrieval.embedder import Embedder, normalise_rows
from retrieval.errors import KnowledgeBaseError

logger = logging.getLogger(__name__)

IndexKind = Literal["flat", "hnsw"]

FORMAT_VERSION = 1
APPROX_THRESHOLD = 30_000
"""Chunks from which the index is HNSW rather than exact. On the 2-core reference box exact single-query p50 is
0.3 ms at 10k, 1.6 ms at 25k, 4.1 ms at 50k and 10 ms at 100k chunks (bench/README.md), so exact search stays
well inside the 5 ms budget below 30k, where it also gives perfect recall and true deletes."""
HNSW_M = 32
HNSW_EF_CONSTRUCTION = 80
HNSW_EF_SEARCH = 64
"""HNSW parameters: recall@10 0.990 at 1M chunks with single-query p50 0.32 ms (bench/README.md)."""
COMPACT_RATIO = 0.2
"""Rebuild an HNSW graph once this share of its vectors are tombstones."""
EMBED_BATCH = 256

INDEX_FILE = "index.faiss"
STORE_FILE = "store.json"
MANIFEST_FILE = "manifest.json"
REBUILD_HINT = "rebuild it with `supportbot kb ingest`"


@dataclass(frozen=True)
class Hit:
    """One search result.

    Attributes:
        doc_id: the matching document's id.
        chunk_id: the matching passage's id.
        title: document title.
        text: the passage (snippet).
        url: document URL, if any.
        score: cosine similarity to the query (higher is better, at most 1).
    """

    doc_id: str
    chunk_id: str
    title: str
    text: str
    url: str | None
    score: float


@dataclass(frozen=True)
class IndexStats:
    """What `KnowledgeIndex.stats()` reports."""

    documents: int
    chunks: int
    documents_by_kind: dict[str, int]
    index_kind: IndexKind
    dim: int
    encoder_id: str
    fingerprint: str
    stale_vectors: int
    approx_threshold: int
    chunking: str
    generation: int | None
    created_at: str | None
    hnsw: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form."""
        return asdict(self)


def _new_faiss(kind: IndexKind, dim: int) -> Any:
    inner: Any
    if kind == "hnsw":
        inner = faiss.IndexHNSWFlat(dim, HNSW_M, faiss.METRIC_INNER_PRODUCT)
        inner.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
        inner.hnsw.efSearch = HNSW_EF_SEARCH
    else:
        inner = faiss.IndexFlatIP(dim)
    return faiss.IndexIDMap2(inner)


def _kind_of(index: Any) -> IndexKind | None:
    inner = faiss.downcast_index(index.index) if isinstance(index, faiss.IndexIDMap2) else None
    if isinstance(inner, faiss.IndexHNSWFlat):
        return "hnsw"
    if isinstance(inner, faiss.IndexFlatIP):
        return "flat"
    return None


def _hnsw_params(index: Any) -> dict[str, int]:
    inner = faiss.downcast_index(index.index)
    if not isinstance(inner, faiss.IndexHNSWFlat):
        return {}
    hnsw = inner.hnsw
    m = int(hnsw.nb_neighbors(1))  # type: ignore[attr-defined]  # (missing from faiss's stubs)
    return {"M": m, "efConstruction": int(hnsw.efConstruction), "efSearch": int(hnsw.efSearch)}


def _check_embedder(embedder: Embedder, *, dim: int, encoder_id: str) -> None:
    if embedder.dim != dim or embedder.encoder_id != encoder_id:
        raise KnowledgeBaseError(
            f"this index was built with encoder {encoder_id!r} (dim {dim}) but got {embedder.encoder_id!r} "
            f"(dim {embedder.dim}); vectors of different encoders cannot be compared: use the encoder of the "
            f"model version the index belongs to, or {REBUILD_HINT} for the new model"
        )


def _embed(chunks: Sequence[Chunk], embedder: Embedder) -> np.ndarray:
    parts = []
    for start in range(0, len(chunks), EMBED_BATCH):
        batch = chunks[start : start + EMBED_BATCH]
        vectors = embedder.encode([c.embed_text for c in batch])
        what = f"embeddings of {batch[0].doc_id!r}" if len(batch) == 1 else "document embeddings"
        parts.append(normalise_rows(vectors, dim=embedder.dim, what=what))
        if len(batch) != parts[-1].shape[0]:
            raise KnowledgeBaseError(f"the encoder returned {parts[-1].shape[0]} vectors for {len(batch)} texts")
    return np.concatenate(parts) if parts else np.zeros((0, embedder.dim), dtype=np.float32)


class KnowledgeIndex:
    """Searchable knowledge base: a FAISS index plus the documents and chunks its vectors stand for.

    Build one with `build`, or read a saved one with `load`; do not call the constructor directly.
    All methods are thread-safe (one lock per index).

    Example:
        >>> index = KnowledgeIndex.build(load_documents("kb/"), encoder)
        >>> index.search(encoder.encode(["how do I get a refund?"])[0], k=3)[0].title
        'Refund policy'
        >>> index.save("data/index")
    """

    def __init__(
        self,
        *,
        encoder_id: str,
        dim: int,
        faiss_index: Any,
        documents: dict[str, Document],
        chunks: dict[int, Chunk],
        next_id: int,
        approx_threshold: int,
        chunking: ChunkingConfig,
        generation: int | None = None,
        created_at: str | None = None,
    ) -> None:
        self.encoder_id = encoder_id
        self.dim = dim
        self.approx_threshold = approx_threshold
        self.chunking = chunking
        self.generation = generation
        self.created_at = created_at
        self._index = faiss_index
        self._hnsw = _hnsw_params(faiss_index)
        self._documents = documents
        self._chunks = chunks
        self._by_doc: dict[str, list[int]] = {}
        for chunk_id in sorted(chunks):
            self._by_doc.setdefault(chunks[chunk_id].doc_id, []).append(chunk_id)
        self._next_id = next_id
        self._tombstones: set[int] = set()
        self._lock = threading.RLock()

    # --- building and changing ---------------------------------------------------------------------

    @classmethod
    def build(
        cls,
        documents: Iterable[Document],
        embedder: Embedder,
        *,
        approx_threshold: int = APPROX_THRESHOLD,
        chunking: ChunkingConfig | None = None,
    ) -> KnowledgeIndex:
        """Chunk and embed `documents` into a new index (exact, or HNSW from `approx_threshold` chunks).

        Args:
            documents: the knowledge base (ids must be unique); may be empty.
            embedder: the encoder of the model version this index belongs to.
            approx_threshold: chunk count from which HNSW replaces exact search.
            chunking: chunking parameters (defaults: `ChunkingConfig()`).

        Raises:
            KnowledgeBaseError: duplicate document ids, or the encoder returned malformed vectors.
        """
        chunking = chunking or ChunkingConfig()
        docs: dict[str, Document] = {}
        for document in documents:
            if document.id in docs:
                raise KnowledgeBaseError(f"two documents have the id {document.id!r}: document ids must be unique")
            docs[document.id] = document
        chunk_list = [c for document in docs.values() for c in chunking.split(document)]
        vectors = _embed(chunk_list, embedder)
        kind: IndexKind = "hnsw" if len(chunk_list) >= approx_threshold else "flat"
        faiss_index = _new_faiss(kind, embedder.dim)
        ids = np.arange(len(chunk_list), dtype=np.int64)
        if len(chunk_list):
            faiss_index.add_with_ids(vectors, ids)
        logger.info("built a %s index: %d documents, %d chunks", kind, len(docs), len(chunk_list))
        return cls(
            encoder_id=embedder.encoder_id,
            dim=embedder.dim,
            faiss_index=faiss_index,
            documents=docs,
            chunks=dict(zip(ids.tolist(), chunk_list, strict=True)),
            next_id=len(chunk_list),
            approx_threshold=approx_threshold,
            chunking=chunking,
        )

    def add(self, document: Document, embedder: Embedder) -> None:
        """Add one new document.

        Raises:
            KnowledgeBaseError: the id is already indexed (use `update`), or `embedder` is not the index's.
        """
        with self._lock:
            if document.id in self._documents:
                raise KnowledgeBaseError(f"{document.id!r} is already in the knowledge base: use update() instead")
            self._insert(document, embedder)
            self._maybe_switch_kind()

    def update(self, document: Document, embedder: Embedder) -> bool:
        """Replace a document (or add it if new), re-chunking and re-embedding it.

        Its old vectors are never returned afterwards (see the module docstring). The new chunks are
        embedded before anything is removed, so a failing encoder leaves the index unchanged.

        Returns:
            False when the document is unchanged (nothing done), True otherwise (a change of `meta` alone
            is stored without re-embedding).
        """
        with self._lock:
            old = self._documents.get(document.id)
            if old is not None and old.content_hash() == document.content_hash():
                if old.meta == document.meta:
                    return False
                self._documents[document.id] = document  # only metadata changed: no need to re-embed
                return True
            _check_embedder(embedder, dim=self.dim, encoder_id=self.encoder_id)
            chunks = self.chunking.split(document)
            vectors = _embed(chunks, embedder)
            if old is not None:
                self._remove(document.id)
            self._append(document, chunks, vectors)
            self._maybe_switch_kind()
            return True

    def delete(self, doc_id: str) -> bool:
        """Remove a document and its vectors; returns False if it was not indexed."""
        with self._lock:
            if doc_id not in self._documents:
                return False
            self._remove(doc_id)
            return True

    def compact(self) -> None:
        """Rebuild the FAISS index from the live vectors (drops HNSW tombstones; re-picks flat vs HNSW)."""
        with self._lock:
            ids = np.array(sorted(self._chunks), dtype=np.int64)
            vectors = self._index.reconstruct_batch(ids) if len(ids) else np.zeros((0, self.dim), dtype=np.float32)
            kind: IndexKind = "hnsw" if len(ids) >= self.approx_threshold else "flat"
            fresh = _new_faiss(kind, self.dim)
            if len(ids):
                fresh.add_with_ids(np.ascontiguousarray(vectors, dtype=np.float32), ids)
            self._index = fresh
            self._hnsw = _hnsw_params(fresh)
            self._tombstones.clear()
            logger.info("rebuilt the index as %s with %d chunks", kind, len(ids))

    def _insert(self, document: Document, embedder: Embedder) -> None:
        _check_embedder(embedder, dim=self.dim, encoder_id=self.encoder_id)
        chunks = self.chunking.split(document)
        self._append(document, chunks, _embed(chunks, embedder))

    def _append(self, document: Document, chunks: list[Chunk], vectors: np.ndarray) -> None:
        ids = np.arange(self._next_id, self._next_id + len(chunks), dtype=np.int64)
        if len(ids):
            self._index.add_with_ids(vectors, ids)
        self._next_id += len(chunks)
        self._documents[document.id] = document
        self._by_doc[document.id] = ids.tolist()
        self._chunks.update(zip(ids.tolist(), chunks, strict=True))

    def _remove(self, doc_id: str) -> None:
        ids = self._by_doc.pop(doc_id, [])
        del self._documents[doc_id]
        for chunk_id in ids:
            del self._chunks[chunk_id]
        if not ids:
            return
        if self.index_kind == "flat":
            removed = self._index.remove_ids(np.array(ids, dtype=np.int64))
            if removed != len(ids):
                raise KnowledgeBaseError(f"index out of sync: removed {removed} of {len(ids)} vectors; {REBUILD_HINT}")
        else:
            self._tombstones.update(ids)
            if len(self._tombstones) > COMPACT_RATIO * self._index.ntotal:
                self.compact()

    def _maybe_switch_kind(self) -> None:
        if self.index_kind == "flat" and len(self._chunks) >= self.approx_threshold:
            self.compact()

    # --- searching --------------------------------------------------------------------------------

    def search(
        self, query_vector: np.ndarray, k: int = 5, *, dedupe: bool = True, encoder_id: str | None = None
    ) -> list[Hit]:
        """The `k` passages most similar to one query embedding, best first.

        Args:
            query_vector: shape (dim,) or (1, dim), from the encoder that built the index.
            k: results wanted (fewer when the knowledge base is smaller).
            dedupe: keep only the best passage of each document.
            encoder_id: when given, refuse a query embedded by another encoder.

        Raises:
            KnowledgeBaseError: wrong dimension or encoder, NaN values, k < 1. Use `search_batch` for
                several queries.
        """
        vector = np.asarray(query_vector, dtype=np.float32)
        if vector.ndim == 1:
            vector = vector[None, :]
        elif vector.ndim != 2 or vector.shape[0] != 1:
            raise KnowledgeBaseError(
                f"search() takes one query vector of shape ({self.dim},); got {tuple(vector.shape)}: "
                "use search_batch() for several queries"
            )
        return self.search_batch(vector, k, dedupe=dedupe, encoder_id=encoder_id)[0]

    def search_batch(
        self, query_vectors: np.ndarray, k: int = 5, *, dedupe: bool = True, encoder_id: str | None = None
    ) -> list[list[Hit]]:
        """`search` for each row of a (n, dim) matrix of query embeddings."""
        if k < 1:
            raise KnowledgeBaseError(f"k must be at least 1, got {k}")
        if encoder_id is not None and encoder_id != self.encoder_id:
            raise KnowledgeBaseError(
                f"the query was embedded by {encoder_id!r} but this index was built with {self.encoder_id!r}; "
                f"use the matching model's index, or {REBUILD_HINT}"
            )
        queries = normalise_rows(query_vectors, dim=self.dim, what="query vector")
        with self._lock:
            live = len(self._chunks)
            if live == 0 or len(queries) == 0:
                return [[] for _ in range(len(queries))]
            expected = min(k, len(self._documents) if dedupe else live)
            fetch = min(live, k * 4 if dedupe else k)
            while True:
                # over-fetch: tombstones and (with dedupe) other chunks of the same documents are skipped
                wanted = min(self._index.ntotal, fetch + len(self._tombstones))
                scores, ids = self._search_faiss(queries, wanted)
                results = [self._hits(s, i, k, dedupe) for s, i in zip(scores, ids, strict=True)]
                if fetch >= live or all(len(hits) >= expected for hits in results):
                    return results
                fetch = min(live, fetch * 4)

    def search_text(self, text: str, embedder: Embedder, k: int = 5, *, dedupe: bool = True) -> list[Hit]:
        """Embed `text` with `embedder` (which must be the index's encoder) and search."""
        _check_embedder(embedder, dim=self.dim, encoder_id=self.encoder_id)
        if not text.strip():
            raise KnowledgeBaseError("the query is empty: type a question")
        return self.search(embedder.encode([text])[0], k, dedupe=dedupe)

    def _search_faiss(self, queries: np.ndarray, wanted: int) -> tuple[np.ndarray, np.ndarray]:
        if self._hnsw:
            ef = max(self._hnsw["efSearch"], wanted)
            params = faiss.SearchParametersHNSW(efSearch=ef)  # type: ignore[attr-defined]  # (missing from stubs)
            return self._index.search(queries, wanted, params=params)
        return self._index.search(queries, wanted)

    def _hits(self, scores: np.ndarray, ids: np.ndarray, k: int, dedupe: bool) -> list[Hit]:
        hits: list[Hit] = []
        seen: set[str] = set()
        for score, chunk_id in zip(scores.tolist(), ids.tolist(), strict=True):
            chunk = self._chunks.get(chunk_id)
            if chunk is None or chunk_id in self._tombstones:
                continue  # -1 padding or a tombstoned (deleted/updated) vector
            if dedupe:
                if chunk.doc_id in seen:
                    continue
                seen.add(chunk.doc_id)
            hits.append(Hit(chunk.doc_id, chunk.chunk_id, chunk.title, chunk.text, chunk.url, float(score)))
            if len(hits) == k:
                break
        return hits

    # --- reading ----------------------------------------------------------------------------------

    @property
    def index_kind(self) -> IndexKind:
        """`flat` (exact) or `hnsw` (approximate)."""
        kind = _kind_of(self._index)
        assert kind is not None
        return kind

    @property
    def fingerprint(self) -> str:
        """Content hash of the documents (`documents_fingerprint`): equal means the same knowledge base.

        It ignores the encoder (see `encoder_id`) and the chunking parameters (see `stats().chunking`).
        """
        with self._lock:
            return documents_fingerprint(self._documents.values())

    @property
    def chunk_count(self) -> int:
        """Live (searchable) chunks."""
        return len(self._chunks)

    @property
    def document_count(self) -> int:
        """Documents in the knowledge base."""
        return len(self._documents)

    def documents(self) -> list[Document]:
        """Every document, sorted by id (e.g. to rebuild the index with another encoder)."""
        with self._lock:
            return [self._documents[doc_id] for doc_id in sorted(self._documents)]

    def chunks(self, doc_id: str) -> list[Chunk]:
        """The chunks of one document in reading order ([] if unknown)."""
        with self._lock:
            return [self._chunks[i] for i in self._by_doc.get(doc_id, [])]

    def vectors(self, doc_id: str) -> np.ndarray:
        """The stored embeddings of one document's chunks, in reading order: (chunks, dim), (0, dim) if unknown."""
        with self._lock:
            ids = self._by_doc.get(doc_id, [])
            if not ids:
                return np.zeros((0, self.dim), dtype=np.float32)
            return np.asarray(self._index.reconstruct_batch(np.array(ids, dtype=np.int64)), dtype=np.float32)

    def stats(self) -> IndexStats:
        """Counts, index kind, encoder, fingerprint and version of this index."""
        with self._lock:
            return IndexStats(
                documents=len(self._documents),
                chunks=len(self._chunks),
                documents_by_kind=dict(Counter(d.kind for d in self._documents.values())),
                index_kind=self.index_kind,
                dim=self.dim,
                encoder_id=self.encoder_id,
                fingerprint=self.fingerprint,
                stale_vectors=len(self._tombstones),
                approx_threshold=self.approx_threshold,
                chunking=self.chunking.tag(),
                generation=self.generation,
                created_at=self.created_at,
                hnsw=dict(self._hnsw),
            )

    # --- persistence ------------------------------------------------------------------------------

    def save(self, directory: str | Path, *, keep: int = store.KEEP_GENERATIONS) -> int:
        """Write this index as a new generation of `directory`, atomically (see `retrieval.store`).

        Tombstoned vectors are compacted away first. A crash while saving leaves the previous generation
        published and loadable. The last `keep` generations are kept.

        Returns:
            The generation number written.

        Raises:
            KnowledgeBaseError: the directory cannot be written.
        """
        with self._lock:
            if self._tombstones:
                self.compact()
            created_at = datetime.now(UTC).isoformat(timespec="seconds")
            generation = store.write_generation(Path(directory), lambda d: self._write(d, created_at), keep=keep)
            self.generation, self.created_at = generation, created_at
            logger.info("saved the knowledge base to %s (generation %d)", directory, generation)
            return generation

    def _write(self, directory: Path, created_at: str) -> None:
        try:
            faiss.write_index(self._index, str(directory / INDEX_FILE))
        except RuntimeError as exc:  # FAISS reports I/O failures as RuntimeError
            raise KnowledgeBaseError(
                f"FAISS could not write the index ({str(exc).splitlines()[0]}); the previous version is kept"
            ) from exc
        payload = {
            "documents": [d.to_dict() for d in self.documents()],
            "chunks": [{"id": i, **self._chunks[i].to_dict()} for i in sorted(self._chunks)],
        }
        (directory / STORE_FILE).write_text(json.dumps(payload, ensure_ascii=False), encoding="utf-8")
        manifest = {
            "format_version": FORMAT_VERSION,
            "created_at": created_at,
            "encoder_id": self.encoder_id,
            "dim": self.dim,
            "index_kind": self.index_kind,
            "hnsw": self._hnsw,
            "approx_threshold": self.approx_threshold,
            "chunking": asdict(self.chunking),
            "chunk_count": len(self._chunks),
            "document_count": len(self._documents),
            "next_id": self._next_id,
            "fingerprint": self.fingerprint,
            "sha256": {name: store.sha256_file(directory / name) for name in (INDEX_FILE, STORE_FILE)},
        }
        (directory / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2), encoding="utf-8")

    @classmethod
    def load(cls, directory: str | Path, *, generation: int | None = None) -> KnowledgeIndex:
        """Read the published generation of `directory` (or the given one), verifying it fully.

        Checks the format version, the sha256 of every file, and that vector count, dimension, index kind
        and metadata agree.

        Raises:
            KnowledgeBaseError: nothing saved there, or the generation is damaged or incompatible; the
                message says how to rebuild or which older generations exist.
        """
        root = Path(directory).expanduser()
        if generation is None:
            generation = store.current_generation(root)
        if generation is None:
            raise KnowledgeBaseError(f"no knowledge-base index in {root}: build one with `supportbot kb ingest`")
        return _Loader(root, generation).load()


class _Loader:
    """Reads and verifies one generation; every failure becomes a KnowledgeBaseError saying what to do."""

    def __init__(self, root: Path, generation: int) -> None:
        self.root = root
        self.generation = generation
        self.dir = store.generation_dir(root, generation)

    def fail(self, problem: str) -> KnowledgeBaseError:
        others = [g for g in store.generations(self.root) if g != self.generation]
        older = f" (other generations on disk: {others}; KnowledgeIndex.load(dir, generation=N) reads one)"
        return KnowledgeBaseError(
            f"the knowledge-base index in {self.root} (generation {self.generation}) is unusable: {problem}; "
            f"{REBUILD_HINT}{older if others else ''}"
        )

    def _json(self, name: str) -> Any:
        try:
            return json.loads((self.dir / name).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise self.fail(f"{name} is missing") from None
        except (OSError, ValueError) as exc:
            raise self.fail(f"{name} is unreadable ({exc})") from exc

    def load(self) -> KnowledgeIndex:
        if not self.dir.is_dir():
            raise self.fail(f"{self.dir} does not exist")
        manifest = self._json(MANIFEST_FILE)
        if not isinstance(manifest, dict):
            raise self.fail(f"{MANIFEST_FILE} is not a JSON object")
        version = manifest.get("format_version")
        if version != FORMAT_VERSION:
            newer = isinstance(version, int) and version > FORMAT_VERSION
            raise self.fail(
                f"format version {version} is {'newer' if newer else 'not'} supported by this supportbot "
                f"(reads {FORMAT_VERSION}){'; upgrade supportbot or' if newer else ''}"
            )
        try:
            dim, kind = int(manifest["dim"]), manifest["index_kind"]
            chunk_count, document_count = int(manifest["chunk_count"]), int(manifest["document_count"])
            checksums: dict[str, str] = manifest["sha256"]
            chunking = ChunkingConfig(**manifest["chunking"])
            encoder_id, next_id = str(manifest["encoder_id"]), int(manifest["next_id"])
            approx_threshold = int(manifest["approx_threshold"])
        except (KeyError, TypeError, ValueError) as exc:
            raise self.fail(f"{MANIFEST_FILE} lacks or garbles a field ({exc})") from exc
        for name in (INDEX_FILE, STORE_FILE):
            path = self.dir / name
            if not path.is_file():
                raise self.fail(f"{name} is missing")
            if store.sha256_file(path) != checksums.get(name):
                raise self.fail(f"{name} does not match its checksum (truncated or corrupted)")
        try:
            faiss_index = faiss.read_index(str(self.dir / INDEX_FILE))
        except RuntimeError as exc:
            raise self.fail(f"FAISS cannot read {INDEX_FILE} ({str(exc).splitlines()[0]})") from exc
        if _kind_of(faiss_index) != kind:
            raise self.fail(f"{INDEX_FILE} is not the {kind!r} index the manifest describes")
        if faiss_index.d != dim or faiss_index.ntotal != chunk_count:
            raise self.fail(
                f"{INDEX_FILE} holds {faiss_index.ntotal} vectors of dim {faiss_index.d}, "
                f"the manifest says {chunk_count} of dim {dim}"
            )
        payload = self._json(STORE_FILE)
        try:
            documents = {d["id"]: Document.from_dict(d) for d in payload["documents"]}
            chunks = {int(c["id"]): Chunk.from_dict(c) for c in payload["chunks"]}
        except (KeyError, TypeError, ValueError) as exc:
            raise self.fail(f"{STORE_FILE} is malformed ({exc})") from exc
        if len(documents) != document_count or len(chunks) != chunk_count:
            raise self.fail(f"{STORE_FILE} does not hold the documents and chunks the manifest counts")
        if any(c.doc_id not in documents for c in chunks.values()):
            raise self.fail(f"{STORE_FILE} has chunks of unknown documents")
        return KnowledgeIndex(
            encoder_id=encoder_id,
            dim=dim,
            faiss_index=faiss_index,
            documents=documents,
            chunks=chunks,
            next_id=next_id,
            approx_threshold=approx_threshold,
            chunking=chunking,
            generation=self.generation,
            created_at=manifest.get("created_at"),
        )
