from __future__ import annotations

import dataclasses
from pathlib import Path

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
    index.save(tmp_path)
    assert KnowledgeIndex.load(tmp_path).search(embedder.encode(["x"])[0]) == []


def test_results_are_deduplicated_per_document(embedder: HashEmbedder) -> None:
    docs = [long_doc("refunds.md", "refund"), long_doc("shipping.md", "shipping")]
    index = build(docs, embedder)
    assert len(index.chunks("refunds.md")) > 3
    deduped = index.search_text("refund detail", embedder, k=5)
    assert [h.doc_id for h in deduped] == ["refunds.md", "shipping.md"]
    raw = index.search_text("refund detail", embedder, k=5, dedupe=False)
    assert len(raw) == 5 and all(h.doc_id == "refunds.md" for h in raw)
    assert len({h.chunk_id for h in raw}) == 5


def test_search_batch_returns_one_list_per_query(docs: list[Document], embedder: HashEmbedder) -> None:
    index = build(docs, embedder)
    results = index.search_batch(embedder.encode(["refund card", "parcel warehouse"]), k=1)
    assert [[h.doc_id for h in hits] for hits in results] == [["billing/refunds.md"], ["shipping.md"]]


def test_add_makes_a_document_searchable(docs: list[Document], embedder: HashEmbedder) -> None:
    index = build(docs[:2], embedder)
    index.add(docs[2], embedder)
    assert index.search_text("parcel warehouse", embedder, k=1)[0].doc_id == "shipping.md"
    with pytest.raises(KnowledgeBaseError, match="already in the knowledge base: use update"):
        index.add(docs[2], embedder)


def test_update_leaves_no_stale_vector(embedder: HashEmbedder) -> None:
    index = build([long_doc("a.md", "alpha"), long_doc("b.md", "beta")], embedder)
    before = index.stats().chunks
    old_vectors = embedder.encode([c.embed_text for c in index.chunks("a.md")])
    changed = Document("a.md", "Alpha", "Completely new zebra giraffe text.", "a.md")
    assert index.update(changed, embedder) is True
    assert index.chunk_count == before - len(old_vectors) + 1
    assert index._index.ntotal == index.chunk_count  # flat: old vectors physically removed
    for hits in index.search_batch(old_vectors, k=10, dedupe=False):
        assert all(h.doc_id != "a.md" or h.text == changed.text for h in hits)
    assert index.search_text("zebra giraffe", embedder, k=1)[0].text == changed.text
    assert index.update(changed, embedder) is False  # unchanged: nothing to do


def test_update_of_metadata_only_does_not_re_embed(docs: list[Document], embedder: HashEmbedder) -> None:
    index = build(docs, embedder)
    calls = embedder.calls
    assert index.update(dataclasses.replace(docs[0], meta={"line": 9}), embedder) is True
    assert embedder.calls == calls
    assert index.documents()[1].meta == {"line": 9}


def test_dedupe_returns_every_document_when_there_are_fewer_than_k(embedder: HashEmbedder) -> None:
    index = build([long_doc("a.md", "alpha"), long_doc("b.md", "beta")], embedder)
    assert sorted(h.doc_id for h in index.search_text("alpha", embedder, k=5)) == ["a.md", "b.md"]


def test_update_with_a_failing_encoder_leaves_the_index_unchanged(docs: list[Document], embedder: HashEmbedder) -> None:
    index = build(docs, embedder)

    class Broken(HashEmbedder):
        def encode(self, texts: list[str]) -> np.ndarray:
            return np.full((len(texts), self.dim), np.nan, dtype=np.float32)

    new = dataclasses.replace(docs[0], text="new text")
    with pytest.raises(KnowledgeBaseError, match="NaN"):
        index.update(new, Broken())
    assert index.chunks(docs[0].id)[0].text == docs[0].text
    assert index.search_text("refund card", embedder, k=1)[0].doc_id == docs[0].id


def test_delete(docs: list[Document], embedder: HashEmbedder) -> None:
    index = build(docs, embedder)
    assert index.delete("shipping.md") is True
    assert index.delete("shipping.md") is False
    assert "shipping.md" not in {d.id for d in index.documents()}
    assert all(h.doc_id != "shipping.md" for h in index.search_text("parcel warehouse", embedder, k=10))
    assert index._index.ntotal == index.chunk_count == 3


def test_wrong_dimension_query_is_a_clear_error(docs: list[Document], embedder: HashEmbedder) -> None:
    index = build(docs, embedder)
    with pytest.raises(KnowledgeBaseError, match=r"shape \(1, 384\).*128-dimensional.*supportbot kb ingest"):
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
    with pytest.raises(KnowledgeBaseError, match="built with encoder"):
        index.add(Document("n.md", "N", "n", "n.md"), other)
    with pytest.raises(KnowledgeBaseError, match="embedded by 'fine-tuned-v2'"):
        index.search(other.encode(["refund"])[0], encoder_id="fine-tuned-v2")
    with pytest.raises(KnowledgeBaseError, match="k must be at least 1"):
        index.search(embedder.encode(["refund"])[0], k=0)
    with pytest.raises(KnowledgeBaseError, match="empty"):
        index.search_text("  ", embedder)


@pytest.mark.parametrize("threshold", [1_000, 1])  # flat, HNSW
def test_vectors_are_the_stored_chunk_embeddings(embedder: HashEmbedder, threshold: int) -> None:
    docs = [long_doc("a.md", "alpha"), long_doc("b.md", "beta")]
    index = build(docs, embedder, approx_threshold=threshold)
    expected = embedder.encode([c.embed_text for c in index.chunks("a.md")])
    np.testing.assert_allclose(index.vectors("a.md"), expected, atol=1e-6)
    assert index.vectors("missing.md").shape == (0, embedder.dim)
    index.update(Document("a.md", "Alpha", "new text", "a.md"), embedder)
    np.testing.assert_allclose(index.vectors("a.md"), embedder.encode(["Alpha\nnew text"]), atol=1e-6)


def test_duplicate_document_ids_are_refused(docs: list[Document], embedder: HashEmbedder) -> None:
    with pytest.raises(KnowledgeBaseError, match="two documents have the id 'shipping.md'"):
        build([*docs, docs[2]], embedder)


def test_fingerprint_tracks_content_only(docs: list[Document], embedder: HashEmbedder) -> None:
    index = build(docs, embedder)
    assert index.fingerprint == documents_fingerprint(reversed(docs))
    assert index.fingerprint == build(docs, HashEmbedder(dim=64, encoder_id="other")).fingerprint
    index.update(dataclasses.replace(docs[1], text="changed"), embedder)
    assert index.fingerprint != documents_fingerprint(docs)


def test_documents_round_trip_to_rebuild_with_another_encoder(docs: list[Document], embedder: HashEmbedder) -> None:
    index = build(docs, embedder)
    rebuilt = KnowledgeIndex.build(index.documents(), HashEmbedder(dim=32, encoder_id="v2"))
    assert rebuilt.documents() == sorted(docs, key=lambda d: d.id)
    assert (rebuilt.encoder_id, rebuilt.dim) == ("v2", 32)


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


def test_hnsw_update_and_delete_tombstone_then_compact_on_save(embedder: HashEmbedder, tmp_path: Path) -> None:
    docs = topical_docs(50)
    index = build(docs, embedder, approx_threshold=10)
    index.update(Document("d3.md", "Walrus", "walrus tusks and ice", "x"), embedder)
    index.delete("d4.md")
    stats = index.stats()
    assert (stats.index_kind, stats.chunks, stats.stale_vectors) == ("hnsw", 49, 2)
    hits = index.search_text("password note 3 about", embedder, k=50, dedupe=False)
    assert len(hits) == 49
    assert {h.doc_id for h in hits} == {d.id for d in docs} - {"d4.md"}
    assert next(h for h in hits if h.doc_id == "d3.md").text == "walrus tusks and ice"
    index.save(tmp_path)
    assert index.stats().stale_vectors == 0
    loaded = KnowledgeIndex.load(tmp_path)
    assert loaded._index.ntotal == loaded.chunk_count == 49
    assert loaded.search_text("walrus", embedder, k=1)[0].doc_id == "d3.md"


def test_hnsw_compacts_when_tombstones_pile_up(embedder: HashEmbedder) -> None:
    index = build(topical_docs(20), embedder, approx_threshold=5)
    for i in range(5):
        index.delete(f"d{i}.md")
    assert index.stats().stale_vectors == 0  # 5 of 20 > 20 %: rebuilt
    assert index._index.ntotal == 15


def test_growing_past_the_threshold_switches_to_hnsw(embedder: HashEmbedder) -> None:
    docs = topical_docs(12)
    index = build(docs[:9], embedder, approx_threshold=10)
    assert index.index_kind == "flat"
    index.add(docs[9], embedder)
    assert index.index_kind == "hnsw"
    index.add(docs[10], embedder)
    assert {h.doc_id for h in index.search_text("note", embedder, k=20)} == {d.id for d in docs[:11]}


# --- save / load ----------------------------------------------------------------------------------------


def current_gen(root: Path) -> int:
    return int((root / "CURRENT").read_text())


def test_save_load_round_trip(docs: list[Document], embedder: HashEmbedder, tmp_path: Path) -> None:
    index = build(docs, embedder)
    assert index.save(tmp_path) == 1
    loaded = KnowledgeIndex.load(tmp_path)
    assert loaded.documents() == index.documents()
    assert (loaded.encoder_id, loaded.dim, loaded.fingerprint) == (index.encoder_id, index.dim, index.fingerprint)
    assert (loaded.generation, loaded.stats().created_at) == (1, index.created_at)
    query = embedder.encode(["reset my password"])
    assert loaded.search_batch(query, k=4) == index.search_batch(query, k=4)
    loaded.add(Document("new.md", "New", "brand new walrus", "new.md"), embedder)  # ids continue after load
    assert loaded.search_text("walrus", embedder, k=1)[0].doc_id == "new.md"
    assert loaded.save(tmp_path) == 2
    assert KnowledgeIndex.load(tmp_path).document_count == 5


def test_save_keeps_the_last_generations(docs: list[Document], embedder: HashEmbedder, tmp_path: Path) -> None:
    index = build(docs, embedder)
    for _ in range(5):
        index.save(tmp_path, keep=3)
    assert sorted(p.name for p in (tmp_path / "versions").iterdir()) == ["000003", "000004", "000005"]
    assert KnowledgeIndex.load(tmp_path, generation=3).generation == 3


def test_load_without_an_index_says_how_to_build_one(tmp_path: Path) -> None:
    with pytest.raises(KnowledgeBaseError, match="no knowledge-base index in .*supportbot kb ingest"):
        KnowledgeIndex.load(tmp_path / "missing")


def test_crash_before_the_pointer_switch_keeps_the_previous_version(
    docs: list[Document], embedder: HashEmbedder, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    build(docs[:2], embedder).save(tmp_path)
    import retrieval.store

    def crash(root: Path, generation: int) -> None:
        assert (root / "versions" / f"{generation:06d}" / "index.faiss").is_file()  # files fully written
        raise SystemExit("power cut")

    monkeypatch.setattr(retrieval.store, "_publish", crash)
    with pytest.raises(SystemExit):
        build(docs, embedder).save(tmp_path)
    monkeypatch.undo()
    loaded = KnowledgeIndex.load(tmp_path)
    assert (loaded.generation, loaded.document_count) == (1, 2)
    # the next save skips the orphaned generation number and publishes cleanly
    assert build(docs, embedder).save(tmp_path) == 3
    assert KnowledgeIndex.load(tmp_path).document_count == 4


def test_crash_while_writing_the_index_file_keeps_the_previous_version(
    docs: list[Document], embedder: HashEmbedder, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    build(docs[:2], embedder).save(tmp_path)
    import retrieval.index

    real_write = retrieval.index.faiss.write_index

    def half_write(index: object, path: str) -> None:
        real_write(index, path)
        data = Path(path).read_bytes()
        Path(path).write_bytes(data[: len(data) // 2])
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(retrieval.index.faiss, "write_index", half_write)
    with pytest.raises(KnowledgeBaseError, match="No space left on device; the previous version is kept"):
        build(docs, embedder).save(tmp_path)
    monkeypatch.undo()
    assert KnowledgeIndex.load(tmp_path).document_count == 2
    assert not [p for p in (tmp_path / "versions").iterdir() if p.name.startswith(".tmp")]


def corrupt(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


def test_corrupted_index_file_is_a_clear_error(docs: list[Document], embedder: HashEmbedder, tmp_path: Path) -> None:
    index = build(docs, embedder)
    index.save(tmp_path)
    index.save(tmp_path)
    corrupt(tmp_path / "versions" / "000002" / "index.faiss")
    with pytest.raises(
        KnowledgeBaseError,
        match=r"generation 2\) is unusable: index.faiss does not match its checksum.*"
        r"supportbot kb ingest.*other generations on disk: \[1\]",
    ):
        KnowledgeIndex.load(tmp_path)
    assert KnowledgeIndex.load(tmp_path, generation=1).document_count == 4
    (tmp_path / "CURRENT").write_text("garbage")
    assert KnowledgeIndex.load(tmp_path, generation=1).generation == 1


def rewrite_manifest(root: Path, **changes: object) -> None:
    import json

    from retrieval.store import sha256_file

    version = root / "versions" / f"{current_gen(root):06d}"
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
        ("manifest", "manifest.json is unreadable"),
        ("store", "store.json does not match its checksum"),
        ("missing", "store.json is missing"),
        ("pointer", "should hold a generation number"),
    ],
)
def test_damaged_versions_are_refused_with_what_to_do(
    docs: list[Document], embedder: HashEmbedder, tmp_path: Path, damage: str, match: str
) -> None:
    build(docs, embedder).save(tmp_path)
    version = tmp_path / "versions" / "000001"
    if damage == "truncate_faiss_fix_sum":
        data = (version / "index.faiss").read_bytes()
        (version / "index.faiss").write_bytes(data[:100])
        rewrite_manifest(tmp_path)
    elif damage == "count":
        rewrite_manifest(tmp_path, chunk_count=5)
    elif damage == "dim":
        rewrite_manifest(tmp_path, dim=64)
    elif damage == "kind":
        rewrite_manifest(tmp_path, index_kind="hnsw")
    elif damage == "newer":
        rewrite_manifest(tmp_path, format_version=99)
    elif damage == "manifest":
        (version / "manifest.json").write_text("{not json")
    elif damage == "store":
        corrupt(version / "store.json")
    elif damage == "missing":
        (version / "store.json").unlink()
    elif damage == "pointer":
        (tmp_path / "CURRENT").write_text("garbage")
    with pytest.raises(KnowledgeBaseError, match=match) as info:
        KnowledgeIndex.load(tmp_path)
    assert "supportbot kb ingest" in str(info.value)


# --- with the real base encoder -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def encoder():  # type: ignore[no-untyped-def]
    from bot.settings import bundled_base_model
    from training.model import Encoder

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
    index.save(tmp_path)
    loaded = KnowledgeIndex.load(tmp_path)
    assert loaded.search(encoder.encode(["I want my money back"])[0], k=1, encoder_id=encoder.encoder_id)[0].doc_id == (
        "refunds.md"
    )
