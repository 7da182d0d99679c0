"""Why the review queue's held-out gain and its test-split figure disagreed (issue 12; BENCHMARKS.md, "Review queue
vs random labelling", third session): two checks on BANKING77 with the `--holdout` split of `bench_review.py`.

* **paraphrases**: how close the held-out quarter and the test split are to the pool (cosine of the nearest pool
  question, base-encoder embeddings; the share within `SIMILAR` of one of the queue's or a random draw's N picks),
  and a head trained on seed + the whole pool scored on both;
* **same models**: the holdout arms (queue, random draws; pool = the other three quarters) trained once and scored
  on the held-out quarter *and* on the test split, so a difference between the two sets is the sets', not the picks'.

Usage:
    .venv/bin/python bench/review_checks.py --data ../shared/data/banking77 --seeds 7,8

Writes bench/results/review_checks.json and .md (git-ignored).
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse
from pathlib import Path
from typing import Any

import numpy as np
from bench_gate import recipe, run_meta, write_results
from bench_review import better_p, random_draw, scored, scored_pool, split_seed

from bot.settings import bundled_base_model
from training.data import Example, load_examples
from training.review import rank
from training.train import train

SIMILAR = 0.9
"""Cosine at or above which two questions are called paraphrases."""


def unit(vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float64)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def check(data: Path, seed: int, ns: list[int], draws: int, model_seeds: int, base: str) -> dict[str, Any]:
    seed_rows, pool, held = split_seed(data, 10, seed, 0.25)
    test = load_examples(data / "test.csv")
    memo: dict[str, Any] = {}
    production, probs, pool_vectors, signals = scored_pool(base, seed_rows, pool, memo)
    production.memo = memo
    sets = {"held out": held, "test": test}
    vectors = {name: unit(production.probabilities([ex.text for ex in rows], 128)[1]) for name, rows in sets.items()}
    production.memo = None
    pool_unit = unit(pool_vectors)
    out: dict[str, Any] = {"seed": seed, "pool": len(pool), "held out": len(held), "test": len(test), "sets": {}}
    for name, rows in sets.items():
        sims = vectors[name] @ pool_unit.T
        same = [pool[j].label == ex.label for j, ex in zip(sims.argmax(axis=1), rows, strict=True)]
        out["sets"][name] = {
            "nearest_cosine_quantiles": np.quantile(sims.max(axis=1), [0.1, 0.25, 0.5, 0.75, 0.9]).round(3).tolist(),
            "share_paraphrased": float((sims.max(axis=1) >= SIMILAR).mean()),
            "nearest_same_label": float(np.mean(same)),
        }  # fmt: skip
    whole = train(recipe(base, 0), seed_rows + pool, progress=False, memo=memo)
    out["whole_pool_top1"] = {name: float(scored(whole, rows, memo)["right"].mean()) for name, rows in sets.items()}

    def fit(extra: list[Example]) -> dict[str, np.ndarray]:
        models = [train(recipe(base, s), seed_rows + extra, progress=False, memo=memo) for s in range(model_seeds)]
        return {name: np.stack([scored(m, rows, memo)["right"] for m in models]) for name, rows in sets.items()}

    out["arms"] = []
    for n in ns:
        picks = {"queue": [r.index for r in rank(probs, pool_vectors, production.labels, signals, limit=n)]}
        for s in range(1, draws + 1):  # the draws of bench_review.py --holdout
            picks[f"random {s}"] = random_draw(seed, s, n, range(len(pool)))
        fitted = {arm: fit([pool[i] for i in chosen]) for arm, chosen in picks.items()}
        for arm, chosen in picks.items():
            near = {name: float(((vectors[name] @ pool_unit[chosen].T).max(axis=1) >= SIMILAR).mean()) for name in sets}
            row = {"n": n, "arm": arm, "near_picks": near}
            row |= {f"top1 {name}": float(right.mean()) for name, right in fitted[arm].items()}
            if arm != "queue":
                row |= {f"p queue better, {name}": better_p(fitted["queue"][name], fitted[arm][name]) for name in sets}
            out["arms"].append(row)
            print(
                f"seed {seed} N={n} {arm}: " + ", ".join(f"{k} {v:.4f}" for k, v in row.items() if k.startswith("top1"))
            )
    return out


def to_markdown(results: list[dict[str, Any]], meta: dict[str, Any]) -> str:
    lines = [
        "# Review queue: held-out vs test split (issue 12)",
        "",
        f"{meta['date']} · {meta['machine']} · load {meta['load']}",
    ]
    for res in results:
        lines += [
            "",
            f"## split seed {res['seed']} (pool {res['pool']}, held out {res['held out']}, test {res['test']})",
            "",
        ]
        for name, stats in res["sets"].items():
            lines.append(
                f"- {name}: nearest pool cosine quantiles (10/25/50/75/90 %) {stats['nearest_cosine_quantiles']}, "
                f"share >= {SIMILAR} {stats['share_paraphrased']:.3f}, nearest has the same label "
                f"{stats['nearest_same_label']:.3f}; seed + whole pool top-1 {res['whole_pool_top1'][name]:.4f}"
            )
        lines += [
            "",
            "| N | arm | top-1 held out | top-1 test | p queue better (held out / test) | "
            f"share of held out / test within {SIMILAR} of a pick |",
            "|---:|---|---:|---:|---:|---:|",
        ]
        for row in res["arms"]:
            p = (
                "-"
                if row["arm"] == "queue"
                else f"{row['p queue better, held out']:.3g} / {row['p queue better, test']:.3g}"
            )
            lines.append(
                f"| {row['n']} | {row['arm']} | {row['top1 held out']:.4f} | {row['top1 test']:.4f} | {p} | "
                f"{row['near_picks']['held out']:.3f} / {row['near_picks']['test']:.3f} |"
            )
    return "\n".join(lines) + "\n"  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data/banking77"))
    parser.add_argument("--seeds", default="7,8")
    parser.add_argument("--ns", default="100,300")
    parser.add_argument("--random-seeds", type=int, default=3)
    parser.add_argument("--model-seeds", type=int, default=3)
    parser.add_argument("--base-model", default=None)
    parser.add_argument("--out", type=Path, default=Path("bench/results/review_checks"))
    args = parser.parse_args()
    load = os.getloadavg()[0]
    base = args.base_model or bundled_base_model()
    ns = [int(n) for n in args.ns.split(",")]
    results = [check(args.data, int(s), ns, args.random_seeds, args.model_seeds, base) for s in args.seeds.split(",")]
    meta = run_meta(load)
    write_results(args.out, {"meta": meta, "results": results}, to_markdown(results, meta))


if __name__ == "__main__":
    main()
