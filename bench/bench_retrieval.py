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

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
DIM = 384
K = 10

TOPICS = (
    "password", "invoice", "refund", "subscription", "two-factor authentication", "API key", "billing address",
    "credit card", "order", "shipment", "account", "email address", "team members", "data export",
    "Slack integration", "mobile app", "notifications", "SSO login", "free trial", "plan", "VAT number",
    "receipt", "delivery address", "profile picture", "workspace", "username", "phone number", "webhook",
    "calendar sync", "CSV import", "dashboard", "reports", "audit log", "permissions", "guest access",
    "storage quota", "backup", "language settings", "time zone", "dark mode", "payment method", "coupon code",
    "gift card", "return label", "warranty", "contract", "licence key", "desktop app", "browser extension",
    "security settings", "session timeout", "password manager", "recovery codes", "domain", "DNS records",
    "SAML configuration", "user roles", "billing cycle", "tax exemption", "purchase order",
)  # fmt: skip
ACTIONS = (
    "reset", "change", "cancel", "update", "delete", "find", "download", "set up", "turn off", "recover",
    "transfer", "add", "remove", "verify", "renew", "upgrade", "export", "share", "restore", "configure",
)  # fmt: skip
TEMPLATES = (
    "How do I {a} my {t}?",
    "I can't {a} my {t}, what should I do?",
    "Where can I {a} the {t}?",
    "Is it possible to {a} the {t} from the mobile app?",
    "Why does it fail when I try to {a} my {t}?",
    "What happens to my data if I {a} the {t}?",
    "Step-by-step guide: {a} your {t}",
    "Who on my team is allowed to {a} the {t}?",
)


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
    from training.model import Encoder

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


def single_query_latency(search: Callable[[np.ndarray], Any], queries: np.ndarray, warmup: int = 20) -> list[float]:
    for q in queries[:warmup]:
        search(q[None, :])
    timings = []
    for q in queries:
        started = time.perf_counter_ns()
        search(q[None, :])
        timings.append((time.perf_counter_ns() - started) / 1e6)
    return timings


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
    exact = single_query_latency(lambda q, ix=flat: ix.search(q, K), queries[: args.exact_queries], warmup=3)
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
            params = faiss.SearchParametersHNSW(efSearch=ef)
            _, found = index.search(queries, K, params=params)
            timings = single_query_latency(lambda q, ix=index, p=params: ix.search(q, K, params=p), queries)
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
        index = faiss.IndexIVFFlat(quantizer, DIM, nlist, faiss.METRIC_INNER_PRODUCT)
        started = time.perf_counter()
        train = base[np.random.default_rng(1).choice(args.n, min(args.n, 40 * nlist), replace=False)]
        index.train(train)
        index.add(base)
        build_s = time.perf_counter() - started
        memory = ivf_memory_mb(index)
        log(f"IVF-Flat nlist={nlist}: built in {build_s:.0f}s, {memory:.0f} MB")
        for nprobe in args.nprobe:
            params_ivf = faiss.SearchParametersIVF(nprobe=nprobe)
            _, found = index.search(queries, K, params=params_ivf)
            timings = single_query_latency(lambda q, ix=index, p=params_ivf: ix.search(q, K, params=p), queries)
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
        del index, quantizer
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
    RESULTS.mkdir(parents=True, exist_ok=True)
    result["environment"] = {
        "cpu_count": os.cpu_count(),
        "loadavg_at_end": os.getloadavg(),
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
    parser.add_argument("--threads", type=int, default=2, help="faiss OpenMP and torch threads")
    parser.add_argument("--n", type=int, default=1_000_000, help="chunks for the ann section")
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--exact-queries", type=int, default=100, help="single queries timed on exact 1M")
    parser.add_argument("--hnsw", type=_pairs, default=_pairs("16x80,32x80,32x200"), help="MxefConstruction,...")
    parser.add_argument("--ef-search", type=_ints, default=_ints("16,32,48,64,96,128,192,256"))
    parser.add_argument("--ivf-nlist", type=_ints, default=_ints("4096"))
    parser.add_argument("--nprobe", type=_ints, default=_ints("8,16,32,48,64,96,128"))
    args = parser.parse_args()
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


SECTIONS: dict[str, tuple[Callable[[argparse.Namespace], dict[str, Any]], Callable[[dict[str, Any]], str]]] = {}

if __name__ == "__main__":
    main()
