"""What the decision costs per question: the engine with the open-set scorer vs today's max-softmax engine.

Both engines serve the same model version (loaded twice); the baseline has its scorer removed, so it decides
by max softmax as before issue 8. Questions are answered alternately by the two (same question, back to back)
so machine noise hits both alike. Also times the scorer alone on one embedding.

Usage (from the repository root):

    .venv/bin/python bench/bench_decision.py --version ~/.supportbot/models/<version> \
        --questions bot/demo/test.csv --repeats 5 --out bench/results/decision.json
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse
import dataclasses
import json
import platform
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from bot.catalog import IntentCatalog
from bot.engine import Engine
from bot.settings import DEMO_DIR
from bot.versions import load_version
from training.calibration import OperatingPoint
from training.data import load_examples
from training.model import IntentModel
from training.openset import SCORES


def percentiles(values: list[float]) -> dict[str, float]:
    array = np.asarray(values)
    return {
        "p50": float(np.percentile(array, 50)),
        "p90": float(np.percentile(array, 90)),
        "p99": float(np.percentile(array, 99)),
        "mean": float(array.mean()),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", type=Path, required=True, help="a model version directory (its index is used)")
    parser.add_argument(
        "--model",
        type=Path,
        help="serve this model directory instead of the version's (e.g. a BANKING77 model: a larger kNN bank)",
    )
    parser.add_argument("--questions", type=Path, default=DEMO_DIR / "test.csv")
    parser.add_argument("--intents", type=Path, default=DEMO_DIR / "intents.yaml")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--score", choices=SCORES, help="time the decision on this score [default: the model's own]")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (serving default: 1 per worker)")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    import faiss
    import torch

    torch.set_num_threads(args.threads)
    faiss.omp_set_num_threads(1)
    catalog = IntentCatalog.load(args.intents)
    new_version, old_version = load_version(args.version), load_version(args.version)
    if args.model:
        new_version = new_version._replace(model=IntentModel.load(args.model, device="cpu"))
        old_version = old_version._replace(model=IntentModel.load(args.model, device="cpu"))
    assert new_version.model.scorer is not None, "this version has no open-set scorer (trained before issue 8)"
    if args.score:  # the threshold does not change the cost, only which scores are computed
        new_version.model.point = dataclasses.replace(new_version.model.point, score=args.score)
    old_version.model.scorer = None
    old_version.model.point = OperatingPoint("msp", 0.5)
    engines = {
        "open_set": Engine(new_version.model, new_version.kb, catalog),
        "max_softmax": Engine(old_version.model, old_version.kb, catalog),
    }
    questions = [ex.text for ex in load_examples(args.questions)]
    for engine in engines.values():  # warm-up
        for question in questions[:20]:
            engine.answer(question)
    times: dict[str, list[float]] = {name: [] for name in engines}
    for _ in range(args.repeats):
        for question in questions:
            for name, engine in engines.items():
                started = time.perf_counter()
                engine.answer(question)
                times[name].append((time.perf_counter() - started) * 1000)
    scorer = new_version.model.scorer
    embeddings = new_version.model.probabilities(questions)[1]
    alone: list[float] = []
    for _ in range(args.repeats):
        for row in embeddings:
            started = time.perf_counter()
            scorer.scores(row[None, :], only=new_version.model.point.score)
            alone.append((time.perf_counter() - started) * 1000)
    result: dict[str, Any] = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.node()} {platform.machine()} {os.cpu_count()} cpus",
        "load_average_start": os.getloadavg(),
        "version": str(args.version),
        "score": new_version.model.point.score,
        "model": str(args.model or args.version),
        "questions": len(questions),
        "repeats": args.repeats,
        "kb_chunks": new_version.kb.chunk_count,
        "knn_bank": int(len(scorer.bank)),
        "engine_ms": {name: percentiles(values) for name, values in times.items()},
        "scorer_alone_ms": percentiles(alone),
    }
    result["added_p50_ms"] = result["engine_ms"]["open_set"]["p50"] - result["engine_ms"]["max_softmax"]["p50"]
    result["load_average_end"] = os.getloadavg()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2), "utf-8")
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
