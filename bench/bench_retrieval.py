"""Retrieval benchmark: approximate vs exact search at 1M chunks, exact search at small sizes, FAQ embedding.

Sections (run one, or `all`):

* `ann`   1,000,000 synthetic chunks of dim 384: exact (IndexFlatIP) single-query latency, then HNSW
          (M x efConstruction builds, efSearch sweep) and IVF-Flat (nprobe sweep): build time, memory,
          p50/p99 single-query latency and recall@10 against exact search, all in the same run.
* `exact` single-query exact-search latency at 10k..200k chunks (to choose `APPROX_THRESHOLD`), plus
          `KnowledgeIndex.search` end to end (metadata, dedup) on 10,000 chunks.
* `faq`   FAQ rows embedded as question only vs question + answer, with the real encoder: which retrieves
          the right row for paraphrased questions (hit@1, MRR).

Synthetic vectors: a Gaussian mixture whose components are centred on real all-MiniLM-L6-v2 embeddings of
template support questions, with the covariance of those embeddings (so the noise lives in the same
low-rank subspace as real sentence embeddings), scaled so a point's cosine to its centre is ~0.75; then
L2-normalised. Queries are fresh draws from the same mixture.

Usage:
    .venv/bin/python bench/bench_retrieval.py all --threads 2
Results: bench/results/retrieval_<section>.json and .md (git-ignored).
"""

from __future__ import annotations

import argparse
import gc
import itertools
import json
import os
import platform
import random
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import faiss
import numpy as np
from support_templates import ACTIONS, TEMPLATES, TOPICS

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
DIM = 384
K = 10


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def hnsw_memory_mb(index: Any) -> float:
    """Vectors + graph (neighbour lists, offsets, levels) of an IndexHNSWFlat, from its structures."""
    hnsw = index.hnsw
    graph = hnsw.neighbors.size() * 4 + hnsw.offsets.size() * 8 + hnsw.levels.size() * 4
    return (index.ntotal * index.d * 4 + graph) / 2**20


def ivf_memory_mb(index: Any) -> float:
    """Vectors + ids in the inverted lists + centroids of an IndexIVFFlat."""
    return (index.ntotal * (index.d * 4 + 8) + index.nlist * index.d * 4) / 2**20


def encoder(threads: int) -> Any:
    from bot.settings import bundled_base_model
    from training.encoder import Encoder

    return Encoder.load(bundled_base_model(), device="cpu", threads=threads)


def anchor_embeddings(threads: int, n: int = 3000, seed: int = 0) -> np.ndarray:
    sentences = [tpl.format(a=a, t=t) for tpl, a, t in itertools.product(TEMPLATES, ACTIONS, TOPICS)]
    random.Random(seed).shuffle(sentences)
    sentences = sentences[:n]
    started = time.perf_counter()
    vectors = np.asarray(encoder(threads).encode(sentences), dtype=np.float32)
    log(f"embedded {len(sentences)} anchor questions with MiniLM in {time.perf_counter() - started:.1f}s")
    return vectors


class Mixture:
    """Gaussian mixture centred on real embeddings, with their covariance, normalised onto the sphere."""

    def __init__(self, anchors: np.ndarray, *, target_cos: float = 0.75, seed: int = 0) -> None:
        self.centres = anchors
        cov = np.cov(anchors, rowvar=False).astype(np.float64)
        eigvals, eigvecs = np.linalg.eigh(cov)
        self.factor = (eigvecs * np.sqrt(np.clip(eigvals, 0, None))).T.astype(np.float32)  # z @ factor ~ N(0, cov)
        self.rng = np.random.default_rng(seed)
        self.scale = self._calibrate(target_cos)

    def _raw(self, n: int, scale: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        which = rng.integers(0, len(self.centres), n)
        noise = rng.standard_normal((n, self.factor.shape[0]), dtype=np.float32) @ self.factor
        x = self.centres[which] + scale * noise
        x /= np.linalg.norm(x, axis=1, keepdims=True)
        return x.astype(np.float32), which

    def _calibrate(self, target: float) -> float:
        low, high = 0.0, 20.0
        for _ in range(30):
            mid = (low + high) / 2
            x, which = self._raw(2000, mid, np.random.default_rng(123))
            cos = float(np.mean(np.sum(x * self.centres[which], axis=1)))
            low, high = (mid, high) if cos > target else (low, mid)
        return (low + high) / 2

    def sample(self, n: int, batch: int = 100_000) -> np.ndarray:
        out = np.empty((n, self.centres.shape[1]), dtype=np.float32)
        for start in range(0, n, batch):
            out[start : start + batch] = self._raw(min(batch, n - start), self.scale, self.rng)[0]
        return out


def percentiles(samples_ms: Sequence[float]) -> dict[str, float]:
    array = np.asarray(samples_ms)
    return {"p50_ms": float(np.percentile(array, 50)), "p99_ms": float(np.percentile(array, 99))}


NAME = ""
LOADAVG_AT_START: list[float] = []
SEARCH_THREADS = 1
"""OpenMP threads while timing single queries (`--search-threads`); builds use `--threads`."""


def single_query_latency(search: Callable[[np.ndarray], Any], queries: np.ndarray, warmup: int = 20) -> list[float]:
    build_threads = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(SEARCH_THREADS)
    try:
        for q in queries[:warmup]:
            search(q[None, :])
        timings = []
        for q in queries:
            started = time.perf_counter_ns()
            search(q[None, :])
            timings.append((time.perf_counter_ns() - started) / 1e6)
        return timings
    finally:
        faiss.omp_set_num_threads(build_threads)


def searcher(index: Any, **kwargs: Any) -> Callable[[np.ndarray], Any]:
    """One top-K search of `index` (keyword arguments such as `params=` passed on)."""
    return lambda q: index.search(q, K, **kwargs)


def recall_at_k(found: np.ndarray, truth: np.ndarray) -> float:
    hits = sum(len(set(f[f >= 0]) & set(t)) for f, t in zip(found, truth, strict=True))
    return hits / truth.size


def ann_section(args: argparse.Namespace) -> dict[str, Any]:
    faiss.omp_set_num_threads(args.threads)
    anchors = anchor_embeddings(args.threads)
    mixture = Mixture(anchors)
    started = time.perf_counter()
    base = mixture.sample(args.n)
    queries = mixture.sample(args.queries)
    log(f"sampled {args.n:,} x {DIM} base vectors + {args.queries} queries in {time.perf_counter() - started:.1f}s")
    result: dict[str, Any] = {"n": args.n, "dim": DIM, "queries": args.queries, "k": K, "mixture_scale": mixture.scale}
    centre_cos = float(np.mean(np.max(queries[:200] @ anchors.T, axis=1)))
    result["query_to_nearest_centre_cos"] = centre_cos

    flat = faiss.IndexFlatIP(DIM)
    flat.add(base)
    started = time.perf_counter()
    _, truth = flat.search(queries, K)
    log(f"exact ground truth (batched, {args.threads} threads): {time.perf_counter() - started:.1f}s")
    exact = single_query_latency(searcher(flat), queries[: args.exact_queries], warmup=3)
    result["exact"] = {"kind": "IndexFlatIP", **percentiles(exact), "queries_timed": len(exact)}
    log(f"exact single-query: p50 {result['exact']['p50_ms']:.1f} ms, p99 {result['exact']['p99_ms']:.1f} ms")
    del flat
    gc.collect()

    result["hnsw"] = []
    for m, ef_construction in args.hnsw:
        index = faiss.IndexHNSWFlat(DIM, m, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = ef_construction
        started = time.perf_counter()
        index.add(base)
        build_s = time.perf_counter() - started
        memory = hnsw_memory_mb(index)
        log(f"HNSW M={m} efC={ef_construction}: built in {build_s:.0f}s, {memory:.0f} MB")
        for ef in args.ef_search:
            params = faiss.SearchParametersHNSW(  # type: ignore[attr-defined]
                efSearch=ef
            )
            _, found = index.search(queries, K, params=params)
            timings = single_query_latency(searcher(index, params=params), queries)
            row = {
                "M": m,
                "efConstruction": ef_construction,
                "efSearch": ef,
                "build_s": build_s,
                "memory_mb": memory,
                "recall_at_10": recall_at_k(found, truth),
                **percentiles(timings),
            }
            result["hnsw"].append(row)
            log(f"  efSearch={ef}: recall@10 {row['recall_at_10']:.4f}, p50 {row['p50_ms']:.2f} ms")
        del index
        gc.collect()

    result["ivf"] = []
    for nlist in args.ivf_nlist:
        quantizer = faiss.IndexFlatIP(DIM)
        ivf = faiss.IndexIVFFlat(quantizer, DIM, nlist, faiss.METRIC_INNER_PRODUCT)
        started = time.perf_counter()
        train = base[np.random.default_rng(1).choice(args.n, min(args.n, 40 * nlist), replace=False)]
        ivf.train(train)
        ivf.add(base)
        build_s = time.perf_counter() - started
        memory = ivf_memory_mb(ivf)
        log(f"IVF-Flat nlist={nlist}: built in {build_s:.0f}s, {memory:.0f} MB")
        for nprobe in args.nprobe:
            params_ivf = faiss.SearchParametersIVF(nprobe=nprobe)  # type: ignore[call-arg]
            _, found = ivf.search(queries, K, params=params_ivf)
            timings = single_query_latency(searcher(ivf, params=params_ivf), queries)
            row = {
                "nlist": nlist,
                "nprobe": nprobe,
                "build_s": build_s,
                "memory_mb": memory,
                "recall_at_10": recall_at_k(found, truth),
                **percentiles(timings),
            }
            result["ivf"].append(row)
            log(f"  nprobe={nprobe}: recall@10 {row['recall_at_10']:.4f}, p50 {row['p50_ms']:.2f} ms")
        del ivf, quantizer
        gc.collect()

    candidates = [r for r in result["hnsw"] + result["ivf"] if r["recall_at_10"] >= 0.95]
    result["best"] = min(candidates, key=lambda r: r["p50_ms"]) if candidates else None
    return result


def ann_markdown(result: dict[str, Any]) -> str:
    lines = [
        f"### ANN at {result['n']:,} x {result['dim']} ({result['queries']} queries, recall@{K} vs exact)",
        "",
        f"Exact `IndexFlatIP` single query: p50 {result['exact']['p50_ms']:.1f} ms, "
        f"p99 {result['exact']['p99_ms']:.1f} ms ({result['exact']['queries_timed']} queries).",
        "",
        "| index | params | build s | memory MB | recall@10 | p50 ms | p99 ms |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for r in result["hnsw"]:
        params = f"M={r['M']} efC={r['efConstruction']} efS={r['efSearch']}"
        lines.append(
            f"| HNSWFlat | {params} | {r['build_s']:.0f} | {r['memory_mb']:.0f} | {r['recall_at_10']:.4f} "
            f"| {r['p50_ms']:.2f} | {r['p99_ms']:.2f} |"
        )
    for r in result["ivf"]:
        lines.append(
            f"| IVFFlat | nlist={r['nlist']} nprobe={r['nprobe']} | {r['build_s']:.0f} | {r['memory_mb']:.0f} "
            f"| {r['recall_at_10']:.4f} | {r['p50_ms']:.2f} | {r['p99_ms']:.2f} |"
        )
    if result["best"]:
        lines += ["", f"Fastest configuration with recall@10 >= 0.95: `{json.dumps(result['best'])}`"]
    return "\n".join(lines)


def write(section: str, result: dict[str, Any], markdown: str) -> None:
    section += NAME
    RESULTS.mkdir(parents=True, exist_ok=True)
    result["environment"] = {
        "cpu_count": os.cpu_count(),
        "loadavg_at_start": LOADAVG_AT_START,
        "loadavg_at_end": os.getloadavg(),
        "search_threads": SEARCH_THREADS,
        "faiss": faiss.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
        "command": " ".join(sys.argv),
        "finished": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }
    (RESULTS / f"retrieval_{section}.json").write_text(json.dumps(result, indent=2))
    (RESULTS / f"retrieval_{section}.md").write_text(markdown + "\n")
    log(f"wrote {RESULTS / f'retrieval_{section}.json'} and .md")


def _pairs(text: str) -> list[tuple[int, int]]:
    return [tuple(int(v) for v in item.split("x")) for item in text.split(",")]  # type: ignore[misc]


def _ints(text: str) -> list[int]:
    return [int(v) for v in text.split(",")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("section", choices=["ann", "exact", "faq", "all"])
    parser.add_argument("--threads", type=int, default=2, help="faiss OpenMP and torch threads for building")
    parser.add_argument("--search-threads", type=int, default=1, help="faiss OpenMP threads for timed searches")
    parser.add_argument("--n", type=int, default=1_000_000, help="chunks for the ann section")
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--exact-queries", type=int, default=100, help="single queries timed on exact 1M")
    parser.add_argument("--hnsw", type=_pairs, default=_pairs("16x80,32x80,32x200"), help="MxefConstruction,...")
    parser.add_argument("--ef-search", type=_ints, default=_ints("16,32,48,64,96,128,192,256"))
    parser.add_argument("--ivf-nlist", type=_ints, default=_ints("4096"))
    parser.add_argument("--nprobe", type=_ints, default=_ints("8,16,32,48,64,96,128"))
    parser.add_argument("--sizes", type=_ints, default=_ints("10000,25000,50000,100000,200000"), help="exact section")
    parser.add_argument("--kb-chunks", type=int, default=10_000, help="KnowledgeIndex size in the exact section")
    parser.add_argument("--name", default="", help="suffix of the result files (retrieval_<section><name>.json)")
    parser.add_argument("--kb", type=Path, default=ROOT / "bot" / "demo" / "kb", help="knowledge base for faq")
    args = parser.parse_args()
    global SEARCH_THREADS, NAME
    SEARCH_THREADS, NAME = args.search_threads, args.name
    LOADAVG_AT_START[:] = os.getloadavg()
    sections = ["exact", "faq", "ann"] if args.section == "all" else [args.section]
    for section in sections:
        log(f"--- {section} ---")
        if section == "ann":
            result = ann_section(args)
            write("ann", result, ann_markdown(result))
        else:
            runner, markdown = SECTIONS[section]
            result = runner(args)
            write(section, result, markdown(result))


# --- exact search at small sizes, KnowledgeIndex end to end -------------------------------------------------


class LookupEmbedder:
    """Embedder for synthetic documents titled `chunk <i>`: returns the i-th precomputed vector."""

    encoder_id = "synthetic-mixture"
    dim = DIM

    def __init__(self, vectors: np.ndarray) -> None:
        self.vectors = vectors

    def encode(self, texts: list[str]) -> np.ndarray:
        return self.vectors[[int(t.split()[1]) for t in texts]]


def exact_section(args: argparse.Namespace) -> dict[str, Any]:
    from retrieval.documents import Document
    from retrieval.index import HNSW_EF_CONSTRUCTION, HNSW_EF_SEARCH, HNSW_M, KnowledgeIndex

    faiss.omp_set_num_threads(args.threads)
    mixture = Mixture(anchor_embeddings(args.threads))
    sizes = args.sizes
    base = mixture.sample(max(sizes))
    queries = mixture.sample(args.queries)
    result: dict[str, Any] = {"queries": args.queries, "k": K, "sizes": []}
    for n in sizes:
        flat = faiss.IndexFlatIP(DIM)
        flat.add(base[:n])
        _, truth = flat.search(queries, K)
        exact = single_query_latency(searcher(flat), queries)
        hnsw = faiss.IndexHNSWFlat(DIM, HNSW_M, faiss.METRIC_INNER_PRODUCT)
        hnsw.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
        started = time.perf_counter()
        hnsw.add(base[:n])
        build_s = time.perf_counter() - started
        params = faiss.SearchParametersHNSW(  # type: ignore[attr-defined]
            efSearch=HNSW_EF_SEARCH
        )
        _, found = hnsw.search(queries, K, params=params)
        approx = single_query_latency(searcher(hnsw, params=params), queries)
        row = {
            "n": n,
            "exact": percentiles(exact),
            "hnsw": {**percentiles(approx), "recall_at_10": recall_at_k(found, truth), "build_s": build_s},
        }
        result["sizes"].append(row)
        log(
            f"n={n:,}: exact p50 {row['exact']['p50_ms']:.2f} ms / HNSW p50 {row['hnsw']['p50_ms']:.3f} ms "
            f"(recall@10 {row['hnsw']['recall_at_10']:.4f}, build {build_s:.1f}s)"
        )
        del flat, hnsw
        gc.collect()

    n = args.kb_chunks
    documents = [Document(f"doc-{i}.md", f"chunk {i}", "", f"doc-{i}.md") for i in range(n)]
    started = time.perf_counter()
    index = KnowledgeIndex.build(documents, LookupEmbedder(base[:n]))
    build_s = time.perf_counter() - started
    timings = single_query_latency(lambda q: index.search(q[0], 5), queries)
    result["knowledge_index"] = {
        "chunks": n,
        "kind": index.index_kind,
        "build_s_without_encoding": build_s,
        **percentiles(timings),
    }
    p50 = result["knowledge_index"]["p50_ms"]
    log(f"KnowledgeIndex.search, {n:,} chunks ({index.index_kind}, k=5, dedupe): p50 {p50:.2f} ms")
    return result


def exact_markdown(result: dict[str, Any]) -> str:
    lines = [
        f"### Exact vs HNSW by size ({result['queries']} single queries, k={K})",
        "",
        "| chunks | exact p50 ms | exact p99 ms | HNSW p50 ms | HNSW p99 ms | HNSW recall@10 | HNSW build s |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in result["sizes"]:
        e, h = row["exact"], row["hnsw"]
        lines.append(
            f"| {row['n']:,} | {e['p50_ms']:.2f} | {e['p99_ms']:.2f} | {h['p50_ms']:.3f} | {h['p99_ms']:.3f} "
            f"| {h['recall_at_10']:.4f} | {h['build_s']:.1f} |"
        )
    ki = result["knowledge_index"]
    lines += [
        "",
        f"`KnowledgeIndex.search` end to end (metadata, dedup, k=5) on {ki['chunks']:,} chunks ({ki['kind']}): "
        f"p50 {ki['p50_ms']:.2f} ms, p99 {ki['p99_ms']:.2f} ms.",
    ]
    return "\n".join(lines)


# --- FAQ rows: embed the question only, or question + answer? ------------------------------------------------

PARAPHRASES: dict[str, tuple[str, ...]] = {
    "Can I pay for several years in advance?": (
        "is it possible to prepay three years at once",
        "do you have multi-year billing",
    ),
    "Do you offer a lifetime plan?": (
        "is there a one-time payment option instead of a subscription",
        "can I buy nimbus forever with a single purchase",
    ),
    "Can I get a quote before buying Business?": (
        "I need a PDF price quote for our procurement team",
        "how do I get an official offer for the business plan",
    ),
    "Why was I charged tax?": ("why is there VAT on my bill", "there's an extra sales tax line on my invoice, why"),
    "Can I pay by bank transfer?": (
        "can we pay via wire transfer instead of credit card",
        "do you accept SEPA payments",
    ),
    "What happens to my files if I stop paying?": (
        "if my subscription lapses will my data be deleted",
        "my card expired and the payment failed, are my files gone",
    ),
    "Is there a free trial?": ("can I try Pro for free before paying", "do you have a trial period"),
    "Can two people share one Personal plan?": (
        "can my wife and I use the same personal subscription",
        "is it ok to share my account with a colleague",
    ),
    "Do unused seats carry over?": (
        "we have seats nobody uses, are we still billed for them",
        "how do I stop paying for empty licenses",
    ),
    "Which currency will I be billed in?": ("can I pay in euros", "what currency are the charges in"),
    "Can I move my Nimbus folder to another drive?": (
        "how do I relocate the nimbus directory to my D: drive",
        "change the location of the synced folder",
    ),
    "Can I sync a folder that is outside my Nimbus folder?": (
        "can nimbus back up my Documents folder without moving it",
        "sync a directory that isn't inside the nimbus folder",
    ),
    "Does Nimbus work on a Chromebook?": (
        "is there a chromeOS client",
        "does the desktop app install on ChromeOS laptops",
    ),
    "Can I sync to an external drive?": (
        "can I keep my nimbus folder on a USB hard disk",
        "does sync work with an exFAT external disk",
    ),
    "Why does the desktop app use a lot of CPU?": (
        "the nimbus app is eating my processor",
        "high cpu usage from the desktop client",
    ),
    "Does Nimbus upload the whole file every time I change it?": (
        "if I edit a big video does it re-upload everything",
        "does nimbus use delta sync for changed files",
    ),
    "Can I use two Nimbus accounts on one computer?": (
        "can I have my work and personal nimbus accounts on the same laptop",
        "link a second account on one computer",
    ),
    "Is there a Nimbus app for Linux?": ("is there a client for ubuntu", "does nimbus support fedora"),
}


def faq_section(args: argparse.Namespace) -> dict[str, Any]:
    from retrieval.chunking import ChunkingConfig, FaqEmbedding
    from retrieval.index import KnowledgeIndex
    from retrieval.ingest import load_documents

    documents = load_documents(args.kb)
    faq_ids = {d.title: d.id for d in documents if d.kind == "faq"}
    cases = [(q, faq_ids[title]) for title, qs in PARAPHRASES.items() if title in faq_ids for q in qs]
    missing = sorted(set(PARAPHRASES) - set(faq_ids))
    embedder = encoder(args.threads)
    query_vectors = embedder.encode([q for q, _ in cases])
    result: dict[str, Any] = {
        "kb": str(args.kb),
        "documents": len(documents),
        "faq_rows": len(faq_ids),
        "queries": len(cases),
        "missing_rows": missing,
        "modes": {},
    }
    modes: tuple[FaqEmbedding, ...] = ("question", "question_answer")
    for mode in modes:
        index = KnowledgeIndex.build(documents, embedder, chunking=ChunkingConfig(faq_embedding=mode))
        ranks, correct_scores = [], []
        for hits, (_, target) in zip(index.search_batch(query_vectors, k=5), cases, strict=True):
            ids = [h.doc_id for h in hits]
            ranks.append(ids.index(target) + 1 if target in ids else None)
            if ids and ids[0] == target:
                correct_scores.append(hits[0].score)
        result["modes"][mode] = {
            "hit_at_1": sum(r == 1 for r in ranks) / len(ranks),
            "hit_at_5": sum(r is not None for r in ranks) / len(ranks),
            "mrr_at_5": sum(1 / r for r in ranks if r) / len(ranks),
            "mean_top_score_when_right": float(np.mean(correct_scores)) if correct_scores else None,
        }
        log(f"FAQ embedding {mode}: {result['modes'][mode]}")
    return result


def faq_markdown(result: dict[str, Any]) -> str:
    lines = [
        f"### FAQ rows: question only vs question + answer ({result['queries']} paraphrased questions, "
        f"{result['faq_rows']} FAQ rows among {result['documents']} documents of `{result['kb']}`)",
        "",
        "| FAQ embedding | hit@1 | hit@5 | MRR@5 | mean top score when right |",
        "|---|---:|---:|---:|---:|",
    ]
    for mode, m in result["modes"].items():
        score = f"{m['mean_top_score_when_right']:.3f}" if m["mean_top_score_when_right"] is not None else "-"
        lines.append(f"| {mode} | {m['hit_at_1']:.3f} | {m['hit_at_5']:.3f} | {m['mrr_at_5']:.3f} | {score} |")
    return "\n".join(lines)


SECTIONS: dict[str, tuple[Callable[[argparse.Namespace], dict[str, Any]], Callable[[dict[str, Any]], str]]] = {
    "exact": (exact_section, exact_markdown),
    "faq": (faq_section, faq_markdown),
}

if __name__ == "__main__":
    main()
