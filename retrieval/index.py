"""`KnowledgeIndex`: the FAISS index and the metadata it needs, built, searched and saved as one unit.

An index is built once (`build`), saved once into a new directory (`save`) and read back (`load`); it is
never changed afterwards: every model version builds its own index afresh.

Vectors live in a FAISS `IndexIDMap2` whose int64 ids point to chunk metadata. Below `APPROX_THRESHOLD`
chunks the inner index is exact (`IndexFlatIP`); from there on it is HNSW (`IndexHNSWFlat`, inner product),
the choice and parameters coming from `bench/bench_retrieval.py` (see bench/README.md).

Latency: single queries are fastest with one FAISS OpenMP thread (`faiss.omp_set_num_threads(1)` in the
serving process); with more threads on a busy machine, exact search waits on thread barriers (10x slower).
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from retrieval import store
from retrieval.chunking import ChunkingConfig
from retrieval.documents import Chunk, Document, documents_fingerprint
from retrieval.embedder import Embedder, normalise_rows
from retrieval.errors import KnowledgeBaseError

logger = logging.getLogger(__name__)

IndexKind = store.IndexKind

APPROX_THRESHOLD = 30_000
"""Chunks from which the index is HNSW rather than exact. On the 2-core reference box exact single-query p50 is
0.3 ms at 10k, 1.6 ms at 25k, 4.1 ms at 50k and 10 ms at 100k chunks (bench/README.md), so exact search stays
well inside the 5 ms budget below 30k, where it also gives perfect recall."""
HNSW_M = 32
HNSW_EF_CONSTRUCTION = 80
HNSW_EF_SEARCH = 64
"""HNSW parameters: recall@10 0.990 at 1M chunks with single-query p50 0.32 ms (bench/README.md)."""
EMBED_BATCH = 256

REBUILD_HINT = store.REBUILD_HINT


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
    approx_threshold: int
    chunking: str
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
    An index is never changed after it is made, so it may be searched from several threads at once
    (FAISS searches of a CPU index are thread-safe).

    Example:
        >>> index = KnowledgeIndex.build(load_documents("kb/"), encoder)
        >>> index.search(encoder.encode(["how do I get a refund?"])[0], k=3)[0].title
        'Refund policy'
        >>> index.save("models/v1/index")
    """

    def __init__(self, data: store.IndexData) -> None:
        kind = store.kind_of(data.faiss_index)
        if kind is None:
            raise KnowledgeBaseError(f"unsupported FAISS index {type(data.faiss_index).__name__}: {REBUILD_HINT}")
        self._data = data
        self.encoder_id = data.encoder_id
        self.dim = data.dim
        self.index_kind: IndexKind = kind
        """`flat` (exact) or `hnsw` (approximate)."""
        self.fingerprint = documents_fingerprint(data.documents.values())
        """Content hash of the documents (`documents_fingerprint`): equal means the same knowledge base.
        It ignores the encoder (see `encoder_id`) and the chunking parameters (see `stats().chunking`)."""
        self._index = data.faiss_index
        self._hnsw = store.hnsw_params(data.faiss_index)
        self._documents = data.documents
        self._chunks = data.chunks
        self._by_doc: dict[str, list[int]] = {}
        for chunk_id in sorted(data.chunks):
            self._by_doc.setdefault(data.chunks[chunk_id].doc_id, []).append(chunk_id)

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
        chunks = dict(zip(ids.tolist(), chunk_list, strict=True))
        data = store.IndexData(embedder.encoder_id, embedder.dim, faiss_index, docs, chunks, approx_threshold, chunking)
        return cls(data)

    # --- searching --------------------------------------------------------------------------------

    def search(self, query_vector: np.ndarray, k: int = 5) -> list[Hit]:
        """The `k` documents most similar to one query embedding (the best passage of each), best first.

        Args:
            query_vector: shape (dim,) or (1, dim), from the encoder that built the index.
            k: results wanted (fewer when the knowledge base is smaller).

        Raises:
            KnowledgeBaseError: wrong dimension, NaN values, k < 1. Use `search_batch` for several queries.
        """
        vector = np.asarray(query_vector, dtype=np.float32)
        if vector.ndim == 1:
            vector = vector[None, :]
        elif vector.ndim != 2 or vector.shape[0] != 1:
            raise KnowledgeBaseError(
                f"search() takes one query vector of shape ({self.dim},); got {tuple(vector.shape)}: "
                "use search_batch() for several queries"
            )
        return self.search_batch(vector, k)[0]

    def search_batch(self, query_vectors: np.ndarray, k: int = 5) -> list[list[Hit]]:
        """`search` for each row of a (n, dim) matrix of query embeddings."""
        if k < 1:
            raise KnowledgeBaseError(f"k must be at least 1, got {k}")
        queries = normalise_rows(query_vectors, dim=self.dim, what="query vector")
        total = len(self._chunks)
        if total == 0 or len(queries) == 0:
            return [[] for _ in range(len(queries))]
        expected = min(k, len(self._documents))
        fetch = min(total, k * 4)
        while True:  # over-fetch: other passages of a document already found are skipped
            scores, ids = self._search_faiss(queries, fetch)
            results = [self._hits(s, i, k) for s, i in zip(scores, ids, strict=True)]
            if fetch >= total or all(len(hits) >= expected for hits in results):
                return results
            fetch = min(total, fetch * 4)

    def search_text(self, text: str, embedder: Embedder, k: int = 5) -> list[Hit]:
        """Embed `text` with `embedder` (which must be the index's encoder) and search."""
        if embedder.dim != self.dim or embedder.encoder_id != self.encoder_id:
            raise KnowledgeBaseError(
                f"this index was built with encoder {self.encoder_id!r} (dim {self.dim}) but got "
                f"{embedder.encoder_id!r} (dim {embedder.dim}); vectors of different encoders cannot be compared: "
                f"use the encoder of the model version the index belongs to, or {REBUILD_HINT} for the new model"
            )
        if not text.strip():
            raise KnowledgeBaseError("the query is empty: type a question")
        return self.search(embedder.encode([text])[0], k)

    def _search_faiss(self, queries: np.ndarray, wanted: int) -> tuple[np.ndarray, np.ndarray]:
        if self._hnsw:
            ef = max(self._hnsw["efSearch"], wanted)
            params = faiss.SearchParametersHNSW(efSearch=ef)  # type: ignore[attr-defined]  # (missing from stubs)
            return self._index.search(queries, wanted, params=params)
        return self._index.search(queries, wanted)

    def _hits(self, scores: np.ndarray, ids: np.ndarray, k: int) -> list[Hit]:
        hits: list[Hit] = []
        seen: set[str] = set()
        for score, chunk_id in zip(scores.tolist(), ids.tolist(), strict=True):
            chunk = self._chunks.get(chunk_id)
            if chunk is None or chunk.doc_id in seen:
                continue  # -1 padding, or a document already found
            seen.add(chunk.doc_id)
            hits.append(Hit(chunk.doc_id, chunk.chunk_id, chunk.title, chunk.text, chunk.url, float(score)))
            if len(hits) == k:
                break
        return hits

    # --- reading ----------------------------------------------------------------------------------

    @property
    def chunk_count(self) -> int:
        """Chunks (passages) in the index."""
        return len(self._chunks)

    @property
    def document_count(self) -> int:
        """Documents in the knowledge base."""
        return len(self._documents)

    def chunks(self, doc_id: str) -> list[Chunk]:
        """The chunks of one document in reading order ([] if unknown)."""
        return [self._chunks[i] for i in self._by_doc.get(doc_id, [])]

    def vectors(self, doc_id: str) -> np.ndarray:
        """The stored embeddings of one document's chunks, in reading order: (chunks, dim), (0, dim) if unknown."""
        ids = self._by_doc.get(doc_id, [])
        if not ids:
            return np.zeros((0, self.dim), dtype=np.float32)
        return np.asarray(self._index.reconstruct_batch(np.array(ids, dtype=np.int64)), dtype=np.float32)

    def stats(self) -> IndexStats:
        """Counts, index kind, encoder, fingerprint and creation time of this index."""
        return IndexStats(
            documents=len(self._documents),
            chunks=len(self._chunks),
            documents_by_kind=dict(Counter(d.kind for d in self._documents.values())),
            index_kind=self.index_kind,
            dim=self.dim,
            encoder_id=self.encoder_id,
            fingerprint=self.fingerprint,
            approx_threshold=self._data.approx_threshold,
            chunking=self._data.chunking.tag(),
            created_at=self.created_at,
            hnsw=dict(self._hnsw),
        )

    # --- persistence ------------------------------------------------------------------------------

    @property
    def created_at(self) -> str | None:
        """When the index was saved (ISO 8601, UTC); None until then."""
        return self._data.created_at

    def save(self, directory: str | Path) -> None:
        """Write this index into the new directory `directory`, atomically (see `retrieval.store`).

        Raises:
            KnowledgeBaseError: the directory exists already or cannot be written (nothing is left behind).
        """
        self._data = store.save(Path(directory).expanduser(), self._data)
        logger.info("saved the knowledge base to %s", directory)

    @classmethod
    def load(cls, directory: str | Path) -> KnowledgeIndex:
        """Read the index saved in `directory` (also the older layout with generations), verifying it fully.

        Checks the format version, the sha256 of every file, and that vector count, dimension, index kind
        and metadata agree.

        Raises:
            KnowledgeBaseError: nothing saved there, or the index is damaged or incompatible; the message
                says how to rebuild it.
        """
        return cls(store.load(Path(directory).expanduser()))
