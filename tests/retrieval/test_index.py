from __future__ import annotations

import dataclasses
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from retrieval.documents import Document, documents_fingerprint
from retrieval.errors import KnowledgeBaseError
from retrieval.index import KnowledgeIndex
from tests.retrieval.conftest import HashEmbedder


def build(docs: list[Document], embedder: HashEmbedder, **kwargs: object) -> KnowledgeIndex:
    return KnowledgeIndex.build(docs, embedder, **kwargs)  # type: ignore[arg-type]


def long_doc(doc_id: str, topic: str, sentences: int = 80) -> Document:
    text = " ".join(f"{topic} detail number {i} explained here." for i in range(sentences))
    return Document(doc_id, topic.title(), text, doc_id)


def test_build_and_search_ranks_the_matching_document_first(docs: list[Document], embedder: HashEmbedder) -> None:
    index = build(docs, embedder)
    hits = index.search_text("how do I reset my password", embedder, k=3)
    assert hits[0].doc_id == "account/password.md"
    assert (hits[0].title, hits[0].chunk_id) == ("Reset password", "account/password.md::0")
    assert hits[0].text == "Open settings and click forgot password to reset it."
    assert len(hits) == 3
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    assert all(-1.0 <= h.score <= 1.0001 for h in hits)
    assert index.stats().index_kind == "flat"


def test_search_takes_a_vector_and_scores_cosine(docs: list[Document], embedder: HashEmbedder) -> None:
    index = build(docs, embedder)
    chunk = index.chunks("shipping.md")[0]
    [hit] = index.search(embedder.encode([chunk.embed_text])[0], k=1)
    assert hit.doc_id == "shipping.md"
    assert hit.score == pytest.approx(1.0, abs=1e-5)
    assert index.search(embedder.encode([chunk.embed_text]), k=1) == [hit]  # (1, dim) is accepted too


def test_empty_knowledge_base(embedder: HashEmbedder, tmp_path: Path) -> None:
    index = build([], embedder)
    assert index.search_text("anything", embedder) == []
    stats = index.stats()
    assert (stats.documents, stats.chunks, stats.index_kind, stats.dim) == (0, 0, "flat", embedder.dim)
    index.save(tmp_path / "index")
    loaded = KnowledgeIndex.load(tmp_path / "index")
    assert loaded.search(embedder.encode(["x"])[0]) == []
    assert (loaded.document_count, loaded.chunk_count, loaded.stats().documents_by_kind) == (0, 0, {})


def test_results_are_deduplicated_per_document(embedder: HashEmbedder) -> None:
    docs = [long_doc("refunds.md", "refund"), long_doc("shipping.md", "shipping")]
    index = build(docs, embedder)
    assert len(index.chunks("refunds.md")) > 3
    deduped = index.search_text("refund detail", embedder, k=5)
    assert [h.doc_id for h in deduped] == ["refunds.md", "shipping.md"]
    query = embedder.encode(["refund detail"])[0]
    for hit in deduped:  # each document's hit is its best passage
        best = int(np.argmax(index.vectors(hit.doc_id) @ query))
        assert hit.chunk_id == index.chunks(hit.doc_id)[best].chunk_id
        assert hit.score == pytest.approx(float((index.vectors(hit.doc_id) @ query).max()), abs=1e-5)


def test_search_batch_returns_one_list_per_query(docs: list[Document], embedder: HashEmbedder) -> None:
    index = build(docs, embedder)
    results = index.search_batch(embedder.encode(["refund card", "parcel warehouse"]), k=1)
    assert [[h.doc_id for h in hits] for hits in results] == [["billing/refunds.md"], ["shipping.md"]]


def test_dedupe_returns_every_document_when_there_are_fewer_than_k(embedder: HashEmbedder) -> None:
    index = build([long_doc("a.md", "alpha"), long_doc("b.md", "beta")], embedder)
    assert sorted(h.doc_id for h in index.search_text("alpha", embedder, k=5)) == ["a.md", "b.md"]


@pytest.mark.parametrize(
    ("vectors", "match"),
    [
        (lambda n, dim: np.full((n, dim), np.nan, dtype=np.float32), "NaN"),
        (lambda n, dim: np.zeros((n, dim), dtype=np.float32), "all-zero"),
        (lambda n, dim: np.ones((n, dim + 1), dtype=np.float32), "129"),
        (lambda n, dim: np.ones((n + 1, dim), dtype=np.float32), "returned 5 vectors for 4 texts"),
    ],
)
def test_a_broken_encoder_fails_the_build(
    docs: list[Document], vectors: Callable[[int, int], np.ndarray], match: str
) -> None:
    class Broken(HashEmbedder):
        def encode(self, texts: list[str]) -> np.ndarray:
            return vectors(len(texts), self.dim)

    with pytest.raises(KnowledgeBaseError, match=match):
        KnowledgeIndex.build(docs, Broken())


def test_wrong_dimension_query_is_a_clear_error(docs: list[Document], embedder: HashEmbedder) -> None:
    index = build(docs, embedder)
    with pytest.raises(KnowledgeBaseError, match=r"shape \(1, 384\).*128-dimensional.*supportbot kb rebuild"):
        index.search(np.ones(384, dtype=np.float32))


@pytest.mark.parametrize(
    ("query", "match"),
    [
        (np.full(128, np.nan, dtype=np.float32), "NaN"),
        (np.zeros(128, dtype=np.float32), "all-zero"),
        (np.ones((2, 128), dtype=np.float32), "search_batch"),
    ],
)
def test_bad_query_vectors_are_refused(
    docs: list[Document], embedder: HashEmbedder, query: np.ndarray, match: str
) -> None:
    with pytest.raises(KnowledgeBaseError, match=match):
        build(docs, embedder).search(query)


def test_another_encoder_is_refused(docs: list[Document], embedder: HashEmbedder) -> None:
    index = build(docs, embedder)
    other = HashEmbedder(encoder_id="fine-tuned-v2")
    with pytest.raises(KnowledgeBaseError, match="built with encoder 'hash-bow-v1'.*'fine-tuned-v2'"):
        index.search_text("refund", other)
    with pytest.raises(KnowledgeBaseError, match=r"\(dim 128\) but got 'hash-bow-v1' \(dim 64\).*kb rebuild"):
        index.search_text("refund", HashEmbedder(dim=64))
    with pytest.raises(KnowledgeBaseError, match="k must be at least 1"):
        index.search(embedder.encode(["refund"])[0], k=0)
    with pytest.raises(KnowledgeBaseError, match="empty"):
        index.search_text("  ", embedder)


@pytest.mark.parametrize("threshold", [1_000, 1])  # flat, HNSW
def test_vectors_are_the_stored_chunk_embeddings(embedder: HashEmbedder, threshold: int, tmp_path: Path) -> None:
    docs = [long_doc("a.md", "alpha"), long_doc("b.md", "beta")]
    index = build(docs, embedder, approx_threshold=threshold)
    expected = embedder.encode([c.embed_text for c in index.chunks("a.md")])
    np.testing.assert_allclose(index.vectors("a.md"), expected, atol=1e-6)
    assert index.vectors("missing.md").shape == (0, embedder.dim)
    assert index.chunks("missing.md") == []
    index.save(tmp_path / "index")
    loaded = KnowledgeIndex.load(tmp_path / "index")
    assert loaded.index_kind == index.index_kind
    assert loaded.chunks("a.md") == index.chunks("a.md")
    np.testing.assert_allclose(loaded.vectors("a.md"), expected, atol=1e-6)


def test_duplicate_document_ids_are_refused(docs: list[Document], embedder: HashEmbedder) -> None:
    with pytest.raises(KnowledgeBaseError, match="two documents have the id 'shipping.md'"):
        build([*docs, docs[2]], embedder)


def test_fingerprint_tracks_content_only(docs: list[Document], embedder: HashEmbedder) -> None:
    index = build(docs, embedder)
    assert index.fingerprint == documents_fingerprint(reversed(docs))
    assert index.fingerprint == build(docs, HashEmbedder(dim=64, encoder_id="other")).fingerprint
    changed = [dataclasses.replace(docs[1], text="changed") if d is docs[1] else d for d in docs]
    assert build(changed, embedder).fingerprint != index.fingerprint
    assert build([dataclasses.replace(d, meta={"line": 9}) for d in docs], embedder).fingerprint == index.fingerprint


# --- HNSW -------------------------------------------------------------------------------------------------


def topical_docs(n: int) -> list[Document]:
    topics = ["refund", "invoice", "password", "shipping", "login", "export", "team", "plan", "vat", "card"]
    return [
        Document(f"d{i}.md", f"{topics[i % 10]} {i}", f"{topics[i % 10]} note {i} about {topics[(i * 7) % 10]}.", "x")
        for i in range(n)
    ]


def test_hnsw_agrees_with_exact_search(embedder: HashEmbedder) -> None:
    docs = topical_docs(300)
    exact = build(docs, embedder)
    approx = build(docs, embedder, approx_threshold=1)
    assert (exact.stats().index_kind, approx.stats().index_kind) == ("flat", "hnsw")
    assert approx.stats().hnsw["M"] == 32
    queries = embedder.encode([f"{t} note about" for t in ["refund", "vat", "team", "login"]] + ["note 17 about"])
    overlap = []
    for e_hits, a_hits in zip(exact.search_batch(queries, k=10), approx.search_batch(queries, k=10), strict=True):
        assert a_hits[0].score == pytest.approx(e_hits[0].score, abs=1e-5)
        overlap.append(len({h.doc_id for h in e_hits} & {h.doc_id for h in a_hits}) / 10)
    assert np.mean(overlap) >= 0.9


# --- save / load ----------------------------------------------------------------------------------------


def test_save_load_round_trip(docs: list[Document], embedder: HashEmbedder, tmp_path: Path) -> None:
    index = build(docs, embedder)
    assert index.created_at is None
    index.save(tmp_path / "index")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["index"]  # no temporary directory left
    assert sorted(p.name for p in (tmp_path / "index").iterdir()) == ["index.faiss", "manifest.json", "store.json"]
    loaded = KnowledgeIndex.load(tmp_path / "index")
    assert loaded._documents == index._documents
    assert all(loaded.chunks(d.id) == index.chunks(d.id) for d in docs)
    assert (loaded.encoder_id, loaded.dim, loaded.fingerprint) == (index.encoder_id, index.dim, index.fingerprint)
    assert (loaded.document_count, loaded.chunk_count) == (index.document_count, index.chunk_count) == (4, 4)
    assert loaded.created_at is not None and loaded.created_at == index.created_at
    assert loaded.stats() == index.stats()
    query = embedder.encode(["reset my password"])
    assert loaded.search_batch(query, k=4) == index.search_batch(query, k=4)


def test_an_index_directory_is_written_once(docs: list[Document], embedder: HashEmbedder, tmp_path: Path) -> None:
    build(docs[:2], embedder).save(tmp_path / "index")
    with pytest.raises(KnowledgeBaseError, match="already exists: an index directory is written once"):
        build(docs, embedder).save(tmp_path / "index")
    assert KnowledgeIndex.load(tmp_path / "index").document_count == 2


def test_load_without_an_index_says_how_to_build_one(tmp_path: Path) -> None:
    for missing in (tmp_path / "missing", tmp_path):  # absent, or an empty directory
        with pytest.raises(KnowledgeBaseError, match="no knowledge-base index in .*supportbot kb rebuild"):
            KnowledgeIndex.load(missing)


def test_crash_before_the_rename_leaves_no_index(
    docs: list[Document], embedder: HashEmbedder, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import retrieval.store

    def crash(source: Path, target: Path) -> None:
        assert (Path(source) / "index.faiss").is_file() and (Path(source) / "manifest.json").is_file()
        raise SystemExit("power cut")

    monkeypatch.setattr(retrieval.store.os, "rename", crash)
    with pytest.raises(SystemExit):
        build(docs, embedder).save(tmp_path / "index")
    monkeypatch.undo()
    assert list(tmp_path.iterdir()) == []  # nothing half-written is visible, the temporary files are gone
    build(docs, embedder).save(tmp_path / "index")
    assert KnowledgeIndex.load(tmp_path / "index").document_count == 4


def test_crash_while_writing_the_index_file_leaves_no_index(
    docs: list[Document], embedder: HashEmbedder, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import retrieval.store

    real_write = retrieval.store.faiss.write_index

    def half_write(index: Any, path: str) -> None:
        real_write(index, path)
        data = Path(path).read_bytes()
        Path(path).write_bytes(data[: len(data) // 2])
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(retrieval.store.faiss, "write_index", half_write)
    with pytest.raises(KnowledgeBaseError, match="No space left on device; nothing was written"):
        build(docs, embedder).save(tmp_path / "index")
    monkeypatch.undo()
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(KnowledgeBaseError, match="no knowledge-base index"):
        KnowledgeIndex.load(tmp_path / "index")


def corrupt(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


def as_legacy(saved: Path, root: Path, generation: int = 3) -> Path:
    """`saved` rewritten in the layout of the earlier supportbot: CURRENT naming versions/<generation>/."""
    (root / "versions").mkdir(parents=True)
    shutil.copytree(saved, root / "versions" / f"{generation:06d}")
    shutil.copytree(saved, root / "versions" / "000001")  # an older generation, ignored
    corrupt(root / "versions" / "000001" / "index.faiss")
    (root / "CURRENT").write_text(f"{generation}\n")
    (root / ".lock").touch()
    return root


def test_indexes_of_the_earlier_generation_layout_still_load(
    docs: list[Document], embedder: HashEmbedder, tmp_path: Path
) -> None:
    index = build(docs, embedder)
    index.save(tmp_path / "new")
    legacy = as_legacy(tmp_path / "new", tmp_path / "legacy")
    loaded = KnowledgeIndex.load(legacy)
    assert (loaded.fingerprint, loaded.chunk_count, loaded.created_at) == (index.fingerprint, 4, index.created_at)
    query = embedder.encode(["parcel warehouse"])
    assert loaded.search_batch(query, k=4) == index.search_batch(query, k=4)
    (legacy / "CURRENT").write_text("7\n")
    with pytest.raises(KnowledgeBaseError, match=r"versions/000007 does not exist.*supportbot kb rebuild"):
        KnowledgeIndex.load(legacy)


def test_corrupted_index_file_is_a_clear_error(docs: list[Document], embedder: HashEmbedder, tmp_path: Path) -> None:
    build(docs, embedder).save(tmp_path / "index")
    corrupt(tmp_path / "index" / "index.faiss")
    with pytest.raises(
        KnowledgeBaseError,
        match=r"index in .*index is unusable: index.faiss does not match its checksum.*supportbot kb rebuild",
    ):
        KnowledgeIndex.load(tmp_path / "index")


def rewrite_manifest(version: Path, **changes: object) -> None:
    import json

    from retrieval.store import sha256_file

    manifest = json.loads((version / "manifest.json").read_text())
    manifest.update(changes)
    manifest["sha256"] = {name: sha256_file(version / name) for name in ("index.faiss", "store.json")}
    (version / "manifest.json").write_text(json.dumps(manifest))


@pytest.mark.parametrize(
    ("damage", "match"),
    [
        ("truncate_faiss_fix_sum", "FAISS cannot read index.faiss"),
        ("count", "holds 4 vectors of dim 128, the manifest says 5"),
        ("dim", "holds 4 vectors of dim 128, the manifest says 4 of dim 64"),
        ("kind", "not the 'hnsw' index"),
        ("newer", "format version 99 is newer.*upgrade supportbot"),
        ("older", "format version 0 is not supported"),
        ("field", "manifest.json lacks or garbles a field"),
        ("manifest", "manifest.json is unreadable"),
        ("store", "store.json does not match its checksum"),
        ("missing", "store.json is missing"),
        ("pointer", "should hold a generation number"),
    ],
)
def test_damaged_indexes_are_refused_with_what_to_do(
    docs: list[Document], embedder: HashEmbedder, tmp_path: Path, damage: str, match: str
) -> None:
    build(docs, embedder).save(tmp_path / "index")
    root = version = tmp_path / "index"
    if damage == "truncate_faiss_fix_sum":
        data = (version / "index.faiss").read_bytes()
        (version / "index.faiss").write_bytes(data[:100])
        rewrite_manifest(version)
    elif damage == "count":
        rewrite_manifest(version, chunk_count=5)
    elif damage == "dim":
        rewrite_manifest(version, dim=64)
    elif damage == "kind":
        rewrite_manifest(version, index_kind="hnsw")
    elif damage == "newer":
        rewrite_manifest(version, format_version=99)
    elif damage == "older":
        rewrite_manifest(version, format_version=0)
    elif damage == "field":
        rewrite_manifest(version, encoder_id=None, dim="wide")
    elif damage == "manifest":
        (version / "manifest.json").write_text("{not json")
    elif damage == "store":
        corrupt(version / "store.json")
    elif damage == "missing":
        (version / "store.json").unlink()
    elif damage == "pointer":
        root = as_legacy(version, tmp_path / "legacy")
        (root / "CURRENT").write_text("garbage")
    with pytest.raises(KnowledgeBaseError, match=match) as info:
        KnowledgeIndex.load(root)
    assert "supportbot kb rebuild" in str(info.value)


# --- with the real base encoder -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def encoder():  # type: ignore[no-untyped-def]
    from bot.settings import bundled_base_model
    from training.encoder import Encoder

    return Encoder.load(bundled_base_model(), device="cpu", threads=2)


@pytest.mark.slow
def test_real_encoder_finds_paraphrases(encoder, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    docs = [
        Document("refunds.md", "Refund policy", "You can ask for your money back within 30 days of purchase.", "x"),
        Document("password.md", "Reset your password", "Click 'Forgot password' on the sign-in page.", "x"),
        Document("faq.csv#linux", "Is there an app for Linux?", "Yes, .deb and .rpm packages.", "faq.csv", kind="faq"),
    ]
    index = KnowledgeIndex.build(docs, encoder)
    assert (index.dim, index.encoder_id) == (384, encoder.encoder_id)
    expected = {
        "I want my money back": "refunds.md",
        "I forgot my login credentials": "password.md",
        "does it run on ubuntu?": "faq.csv#linux",
    }
    for question, doc_id in expected.items():
        hits = index.search_text(question, encoder, k=3)
        assert hits[0].doc_id == doc_id, (question, hits)
        assert hits[0].score > hits[1].score
    index.save(tmp_path / "index")
    loaded = KnowledgeIndex.load(tmp_path / "index")
    assert loaded.search(encoder.encode(["I want my money back"])[0], k=1)[0].doc_id == "refunds.md"
