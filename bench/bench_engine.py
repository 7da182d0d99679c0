"""Engine benchmark: the full answer path on the demo model with a 10,000-chunk knowledge base.

Measures, in one run:

* single-question latency of `Engine.answer` (normalise, mask PII, one forward pass, FAISS search, decide):
  p50 / p90 / p99 / mean over the demo test questions (x --repeats), plus its parts (forward pass, search).
  All variants below are timed interleaved, question by question in rotating order, so that load from other
  processes on a shared machine falls on all of them alike;
* batched throughput of `Engine.answer_many` (questions per second, best of 2 alternating rounds);
* RSS of a process holding the loaded engine (model + 10k-chunk index), measured in a fresh subprocess;
* the baseline two-pass design (classifier pass + a separate base-encoder pass for retrieval, over an index
  built with the base encoder): latency, throughput, RSS, in the same run;
* fp32 vs int8 (dynamic quantisation): latency, throughput, RSS, decision accuracy on the demo test set,
  and agreement of the two on the predicted intent;
* retrieval quality of both embeddings on the 10k knowledge base: for test questions whose intent names
  source articles in the catalog, how often one of them is among the top 3 hits (source recall@3).

The 10,000 chunks are the demo knowledge base plus synthetic FAQ entries: questions from templates
(60 support topics x 20 actions x 8 phrasings, as in bench_retrieval.py) whose answers are 2-4 sentences
drawn (seeded) from the demo articles, so the distractors read like the real help centre. FAQ entries are one
chunk each.

Usage:
    .venv/bin/python bench/bench_engine.py --threads 2                      # production model of the data dir
    .venv/bin/python bench/bench_engine.py --model-version ~/.supportbot/models/v20261128-233001
Without --model-version the registry's production version is used; on a fresh data dir the demo model is
trained first (a few minutes). Indexes are cached under --cache (default var/bench-engine).
Results: bench/results/engine.json and engine.md (git-ignored; --out names them).

On a small CPU shared with other work, two torch threads spin-wait for each other (OpenMP's default wait
policy) and single-question latency suffers: measure with --threads 1, or with OMP_WAIT_POLICY=PASSIVE set.
"""

from __future__ import annotations

import argparse
import csv
import ctypes
import gc
import json
import os
import platform
import random
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import faiss
import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from support_templates import ACTIONS, TEMPLATES, TOPICS  # noqa: E402

from bot.catalog import IntentCatalog  # noqa: E402
from bot.engine import SEARCH_K, Engine  # noqa: E402
from bot.options import ServingOptions  # noqa: E402
from bot.settings import load_settings  # noqa: E402
from bot.versions import load_version  # noqa: E402
from retrieval.chunking import ChunkingConfig  # noqa: E402
from retrieval.documents import Document, documents_fingerprint  # noqa: E402
from retrieval.embedder import Embedder  # noqa: E402
from retrieval.index import KnowledgeIndex  # noqa: E402
from retrieval.ingest import load_documents  # noqa: E402
from training.encoder import Encoder  # noqa: E402
from training.model import IntentModel  # noqa: E402

RESULTS = ROOT / "bench" / "results"
TARGET_CHUNKS = 10_000
_SENTENCE = re.compile(r"(?<=[.!?])\s+")


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def rss_mb() -> float:
    """Resident set size of this process (Linux /proc)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def synthetic_documents(real: Sequence[Document], count: int, seed: int = 0) -> list[Document]:
    """`count` FAQ entries: templated questions answered by 2-4 sentences drawn from the real articles."""
    sentences = [s.strip() for doc in real for s in _SENTENCE.split(doc.text.replace("\n", " ")) if len(s) > 30]
    rng = random.Random(seed)
    questions = [t.format(a=a, t=topic) for topic in TOPICS for a in ACTIONS for t in TEMPLATES]
    rng.shuffle(questions)
    docs = []
    for n in range(count):
        question = questions[n % len(questions)] + ("" if n < len(questions) else f" (case {n // len(questions)})")
        answer = " ".join(rng.sample(sentences, rng.randint(2, 4)))
        docs.append(Document(id=f"synthetic/{n:05d}", title=question, text=answer, source="synthetic", kind="faq"))
    return docs


def knowledge_base(kb_dir: Path) -> list[Document]:
    """The demo KB plus synthetic entries up to TARGET_CHUNKS chunks."""
    real = load_documents(kb_dir)
    real_chunks = sum(len(ChunkingConfig().split(doc)) for doc in real)
    return real + synthetic_documents(real, TARGET_CHUNKS - real_chunks)


def cached_index(cache: Path, name: str, documents: list[Document], embedder: Embedder) -> KnowledgeIndex:
    """Build (or reuse) the index of `documents` embedded with `embedder`."""
    folder = cache / name
    fingerprint = documents_fingerprint(documents)
    if folder.exists():
        index = KnowledgeIndex.load(folder)
        if index.fingerprint == fingerprint and index.encoder_id == embedder.encoder_id:
            return index
        shutil.rmtree(folder)  # an index directory is written once
    log(f"embedding {len(documents)} documents for the {name} index ...")
    started = time.perf_counter()
    index = KnowledgeIndex.build(documents, embedder)
    log(f"  {index.chunk_count} chunks in {time.perf_counter() - started:.0f}s")
    index.save(folder)
    return index


def stats(samples_ms: Sequence[float], cpu_ms: Sequence[float] = ()) -> dict[str, float]:
    """Wall-clock percentiles, plus the mean CPU time (all threads) when given: CPU time is what a question
    costs even on a machine busy with other work, where wall-clock tails measure the scheduler."""
    values = np.asarray(samples_ms)
    result = {
        "p50_ms": round(float(np.percentile(values, 50)), 2),
        "p90_ms": round(float(np.percentile(values, 90)), 2),
        "p99_ms": round(float(np.percentile(values, 99)), 2),
        "mean_ms": round(float(values.mean()), 2),
        "n": len(values),
    }
    if len(cpu_ms):
        result["cpu_mean_ms"] = round(float(np.mean(cpu_ms)), 2)
        result["cpu_p50_ms"] = round(float(np.percentile(cpu_ms, 50)), 2)
    return result


def time_interleaved(
    variants: dict[str, Callable[[str], object]], questions: Sequence[str], warmup: int = 20
) -> dict[str, tuple[list[float], list[float]]]:
    """(wall ms, CPU ms) per question for each variant, the variants taking turns on every question in
    rotating order, so that a burst of load on the machine hits all of them alike."""
    names = list(variants)
    for question in questions[:warmup]:
        for name in names:
            variants[name](question)
    samples: dict[str, tuple[list[float], list[float]]] = {name: ([], []) for name in names}
    for number, question in enumerate(questions):
        shift = number % len(names)
        for name in names[shift:] + names[:shift]:
            cpu, wall = time.process_time(), time.perf_counter()
            variants[name](question)
            samples[name][0].append((time.perf_counter() - wall) * 1000)
            samples[name][1].append((time.process_time() - cpu) * 1000)
    return samples


def throughput(fn: Callable[[list[str]], object], questions: list[str], batch_size: int) -> float:
    fn(questions[:batch_size])  # warm-up
    started = time.perf_counter()
    for start in range(0, len(questions), batch_size):
        fn(questions[start : start + batch_size])
    return round(len(questions) / (time.perf_counter() - started), 1)


def best_throughput(
    variants: dict[str, Callable[[list[str]], object]], questions: list[str], batch_size: int, rounds: int = 2
) -> dict[str, float]:
    """Questions per second of each variant: the best of `rounds` alternating rounds."""
    best: dict[str, float] = {}
    for _ in range(rounds):
        for name, fn in variants.items():
            best[name] = max(best.get(name, 0.0), throughput(fn, questions, batch_size))
    return best


def load_test_set(path: Path) -> list[tuple[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return [(row["text"], row["label"]) for row in csv.DictReader(handle)]


def resolve_version(args: argparse.Namespace) -> Path:
    if args.model_version:
        return Path(args.model_version).expanduser()
    from bot.runtime import build_engine
    from storage.repository import Repository

    settings = load_settings()
    with build_engine(settings, watch=False, echo=log) as holder:
        version = holder.version
    repo = Repository(settings.db_url, mask_pii=settings.pii_masking)
    try:
        record = repo.get_model(str(version))
    finally:
        repo.close()
    assert record is not None
    return Path(record.path)


# --- the two designs --------------------------------------------------------------------------------------


class TwoPass:
    """The baseline: classify with the intent model, embed again with the base encoder for retrieval."""

    def __init__(self, engine: Engine, base: Encoder, base_index: KnowledgeIndex) -> None:
        self.engine, self.base, self.index = engine, base, base_index

    def core(self, question: str) -> object:
        text = self.engine.prepare(question)
        prediction = self.engine.model.predict_one(text)
        return prediction, self.index.search(self.base.encode([text])[0], SEARCH_K)

    def core_many(self, questions: list[str]) -> object:
        texts = [self.engine.prepare(q) for q in questions]
        predictions = self.engine.model.predict(texts)
        return predictions, self.index.search_batch(self.base.encode(texts), SEARCH_K)


def single_pass_core(engine: Engine) -> Callable[[str], object]:
    def core(question: str) -> object:
        prediction = engine.model.predict_one(engine.prepare(question))
        return prediction, engine.index.search(prediction.embedding, SEARCH_K)

    return core


def source_recall(
    questions: list[tuple[str, str]], catalog: IntentCatalog, search: Callable[[str], list[str]], k: int = 3
) -> dict[str, float]:
    """Share of questions whose intent cites sources and one of them is among the top-k documents found."""
    found = total = 0
    for text, label in questions:
        wanted = set(catalog.sources_for(label))
        if not wanted:
            continue
        total += 1
        found += bool(wanted & set(search(text)[:k]))
    return {"recall_at_3": round(found / total, 3) if total else float("nan"), "questions": total}


def decision_summary(engine: Engine, test: list[tuple[str, str]], oos: str) -> dict[str, Any]:
    answers = engine.answer_many([text for text, _ in test])
    decided = [a.intent if a.source == "intent" else oos for a in answers]
    truth = [label for _, label in test]
    in_scope = [i for i, label in enumerate(truth) if label != oos]
    return {
        "decision_accuracy": round(float(np.mean([d == t for d, t in zip(decided, truth, strict=True)])), 3),
        "top1_in_scope_accuracy": round(float(np.mean([answers[i].intent == truth[i] for i in in_scope])), 3),
        "sources": {kind: sum(a.source == kind for a in answers) for kind in ("intent", "retrieval", "handoff")},
        "intents": [a.intent for a in answers],
    }


# --- RSS in a fresh process ---------------------------------------------------------------------------------


def measure_rss(args: argparse.Namespace, version_dir: Path, variant: str) -> dict[str, float]:
    command = [
        sys.executable,
        __file__,
        "--rss-of",
        variant,
        "--model-version",
        str(version_dir),
        "--cache",
        str(args.cache),
        "--threads",
        str(args.threads),
    ]
    output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    return json.loads(output.strip().splitlines()[-1])


def rss_child(args: argparse.Namespace) -> None:
    """Print the RSS before and after loading one variant (with its index) and answering one question."""
    settings = load_settings()
    torch.set_num_threads(args.threads)
    before = rss_mb()
    version_dir = Path(args.model_version)
    model, _, answers = load_version(version_dir, threads=args.threads, quantize=args.rss_of == "int8")
    catalog = IntentCatalog.load(settings.intents_path)
    if args.rss_of == "two-pass":  # the classifier, plus the base encoder and its own index
        engine = Engine(model, KnowledgeIndex.build([], model), catalog, extra_answers=answers)
        base = Encoder.load(settings.base_model_name, device="cpu", threads=args.threads)
        TwoPass(engine, base, KnowledgeIndex.load(args.cache / "base")).core("I forgot my password")
    else:
        index = KnowledgeIndex.load(args.cache / f"{version_dir.name}-model")
        Engine(model, index, catalog, extra_answers=answers).answer("I forgot my password")
    gc.collect()
    ctypes.CDLL("libc.so.6").malloc_trim(0)  # hand freed heap (e.g. fp32 weights replaced by int8) back to the OS
    print(json.dumps({"rss_before_load_mb": round(before, 1), "rss_mb": round(rss_mb(), 1)}))


# --- main ---------------------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model-version", help="a version directory (models/<version>) [default: production]")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    parser.add_argument("--repeats", type=int, default=5, help="passes over the test questions (latency)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--cache", type=Path, default=ROOT / "var" / "bench-engine", help="index cache folder")
    parser.add_argument("--out", default="engine", help="results file name (bench/results/<out>.json and .md)")
    parser.add_argument("--rss-of", choices=["fp32", "int8", "two-pass"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.rss_of:
        rss_child(args)
        return

    torch.set_num_threads(args.threads)
    faiss.omp_set_num_threads(1)  # as `bot.runtime.build_engine` serves
    settings = load_settings()
    version_dir = resolve_version(args)
    log(f"model version {version_dir}")
    catalog = IntentCatalog.load(settings.intents_path)
    test = load_test_set(settings.eval_path or ROOT / "bot" / "demo" / "test.csv")
    questions = [text for text, _ in test] * args.repeats
    batch_questions = [text for text, _ in test] * 8
    documents = knowledge_base(settings.kb_path)

    model, _, answers = load_version(version_dir, threads=args.threads)
    index = cached_index(args.cache, f"{version_dir.name}-model", documents, model)
    base = Encoder.load(settings.base_model_name, device="cpu", threads=args.threads)
    base_index = cached_index(args.cache, "base", documents, base)
    oos = settings.out_of_scope_label

    def engine_for(intent_model: IntentModel) -> Engine:
        return Engine(
            intent_model,
            index,
            catalog,
            version=version_dir.name,
            options=ServingOptions.from_settings(settings),
            extra_answers=answers,
        )

    engine = engine_for(model)
    two_pass = TwoPass(engine, base, base_index)
    results: dict[str, Any] = {
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "machine": {
            "cpu": platform.processor() or platform.machine(),
            "cores": os.cpu_count(),
            "load_average_at_start": os.getloadavg(),
            "python": platform.python_version(),
            "torch": torch.__version__,
            "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),
        },
        "threads": args.threads,
        "model_version": version_dir.name,
        "kb": {"documents": index.document_count, "chunks": index.chunk_count, "index_kind": index.index_kind},
        "questions": len(test),
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
    }

    int8_model, _, _ = load_version(version_dir, threads=args.threads, quantize=True)
    int8_engine = engine_for(int8_model)

    log("single-question latency, variants interleaved question by question ...")
    samples = time_interleaved(
        {
            "fp32": engine.answer,
            "int8": int8_engine.answer,
            "fp32_core": single_pass_core(engine),
            "two_pass_core": two_pass.core,
            "fp32_forward": lambda q: model.predict_one(engine.prepare(q)),
        },
        questions,
    )
    vectors = model.encode([text for text, _ in test])
    search_times = []
    for vector in vectors:
        started = time.perf_counter()
        index.search(vector, SEARCH_K)
        search_times.append((time.perf_counter() - started) * 1000)

    log("batched throughput (best of 2 alternating rounds) ...")
    qps = best_throughput(
        {
            "fp32": lambda batch: engine.answer_many(batch),
            "int8": lambda batch: int8_engine.answer_many(batch),
            "two_pass_core": two_pass.core_many,
        },
        batch_questions,
        args.batch_size,
    )

    log("decisions on the test set, retrieval quality ...")
    fp32: dict[str, Any] = {
        "answer": stats(*samples["fp32"]),
        "core": stats(*samples["fp32_core"]),
        "prepare_and_forward_pass": stats(*samples["fp32_forward"]),
        "search": stats(search_times),
        "throughput_qps": qps["fp32"],
        **decision_summary(engine, test, oos),
        "retrieval": source_recall(
            test, catalog, lambda q: [h.doc_id for h in index.search(model.encode([q])[0], SEARCH_K)]
        ),
    }
    int8: dict[str, Any] = {
        "answer": stats(*samples["int8"]),
        "throughput_qps": qps["int8"],
        **decision_summary(int8_engine, test, oos),
    }
    int8["agreement_with_fp32"] = round(
        float(np.mean([a == b for a, b in zip(fp32.pop("intents"), int8.pop("intents"), strict=True)])), 3
    )
    baseline: dict[str, Any] = {
        "core": stats(*samples["two_pass_core"]),
        "throughput_qps": qps["two_pass_core"],
        "retrieval": source_recall(
            test, catalog, lambda q: [h.doc_id for h in base_index.search(base.encode([q])[0], SEARCH_K)]
        ),
    }

    log("RSS in fresh processes ...")
    fp32["rss"] = measure_rss(args, version_dir, "fp32")
    int8["rss"] = measure_rss(args, version_dir, "int8")
    baseline["rss"] = measure_rss(args, version_dir, "two-pass")
    results.update({"fp32": fp32, "int8": int8, "two_pass_baseline": baseline})
    results["machine"]["load_average_at_end"] = os.getloadavg()
    write(results, args.out)


def _loads(machine: dict[str, Any]) -> str:
    return " / ".join(
        "{:.1f}, {:.1f}, {:.1f}".format(*machine[key]) for key in ("load_average_at_start", "load_average_at_end")
    )


def write(results: dict[str, Any], name: str) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{name}.json").write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    fp32, int8, base = results["fp32"], results["int8"], results["two_pass_baseline"]

    def row(name: str, lat: dict[str, float], qps: float | str, rss: float | str) -> str:
        cpu = lat.get("cpu_mean_ms", "")
        return f"| {name} | {lat['p50_ms']} | {lat['p90_ms']} | {lat['p99_ms']} | {cpu} | {qps} | {rss} |"

    lines = [
        f"# Engine benchmark ({results['date']})",
        "",
        f"Model {results['model_version']}, knowledge base {results['kb']['chunks']} chunks "
        f"({results['kb']['index_kind']}), {results['threads']} torch threads, {results['questions']} test "
        f"questions x repeats. Load average {_loads(results['machine'])} (start / end).",
        "",
        "| path | p50 ms | p90 ms | p99 ms | CPU ms/question | batched q/s | RSS MB |",
        "|---|---|---|---|---|---|---|",
        row("engine.answer fp32 (single pass)", fp32["answer"], fp32["throughput_qps"], fp32["rss"]["rss_mb"]),
        row("engine.answer int8", int8["answer"], int8["throughput_qps"], int8["rss"]["rss_mb"]),
        row("  fp32 core: classify+embed, search", fp32["core"], "", ""),
        row(
            "  two-pass core: classify, base embed, search", base["core"], base["throughput_qps"], base["rss"]["rss_mb"]
        ),
        row("  fp32 prepare + forward pass", fp32["prepare_and_forward_pass"], "", ""),
        row("  FAISS search only (10k, k=5)", fp32["search"], "", ""),
        "",
        "| | fp32 | int8 |",
        "|---|---|---|",
        f"| decision accuracy (test set) | {fp32['decision_accuracy']} | {int8['decision_accuracy']} |",
        f"| top-1 in-scope accuracy | {fp32['top1_in_scope_accuracy']} | {int8['top1_in_scope_accuracy']} |",
        f"| answers intent / retrieval / hand-off | {fp32['sources']} | {int8['sources']} |",
        f"| intent agreement with fp32 | 1.0 | {int8['agreement_with_fp32']} |",
        "",
        f"Source recall@3 on the 10k KB: fine-tuned (single pass) {fp32['retrieval']['recall_at_3']}, "
        f"base encoder (two-pass) {base['retrieval']['recall_at_3']} over {fp32['retrieval']['questions']} questions.",
    ]
    (RESULTS / f"{name}.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
