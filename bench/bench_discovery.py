"""Discovery benchmark (issue 12): do the questions the bot could not answer group into the intents it is missing?

On a public intent data set (`--data`), seeded: `--withhold` intents (10) are missing; production is trained on
the other intents' training questions with the first-run recipe (a head on the frozen base encoder,
`training.config.FIRST_MODEL`; `--recipe nightly`: the encoder fine-tuned as the nightly job does). Arriving
traffic: the withheld intents' train + test questions, the kept intents' test questions, and as many out-of-scope
questions as there are withheld ones, sampled from the other data set's test split (HWU64 for BANKING77 and vice
versa; all of it when it has fewer). What the bot logs as unanswered (prediction `action` not "answer", or
confidence < 0.5) goes, with production's embeddings of it, to `training.discovery.discover`.

Per config, on the proposals:

* **coverage**: share of the withheld questions in the discovery input that land in a proposal whose majority
  label is their own intent (also: only counting proposals at >= 80 % purity; and over all withheld questions,
  the rest having been answered, wrongly, with confidence: **reached** is the share that got into the input);
* **purity**: a proposal's majority-label share (mean over proposals and size-weighted); an out-of-scope question
  is labelled `oos:<its intent>`, a kept intent's question keeps its label;
* proposals by majority (withheld / kept / oos) and the withheld intents found (majority of some proposal).

Goal (issue 12, BANKING77): >= 70 % covered at >= 80 % purity. The defaults are chosen on HWU64 only (`--grid`:
the best coverage in >= 80 %-pure proposals with size-weighted purity >= 0.8, fewer proposals on a tie, per
method) and then measured on BANKING77 once.

Usage:
    .venv/bin/python bench/bench_discovery.py --data ../shared/data/hwu64 --grid --out bench/results/discovery_grid
    .venv/bin/python bench/bench_discovery.py --data ../shared/data/banking77 --data ../shared/data/hwu64
    .venv/bin/python bench/bench_discovery.py --data ../shared/data/banking77 --recipe nightly \
        --out bench/results/discovery_nightly   # ~20 min on 2 CPU cores (the fine-tune)

Writes bench/results/discovery.json and discovery.md (git-ignored) and prints the table.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse
import dataclasses
import itertools
import random
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
from bench_few_shot import nightly
from bench_gate import recipe, run_meta, write_results

from bot.settings import bundled_base_model
from training.data import Example, load_examples
from training.discovery import Cluster, DiscoveryConfig, discover
from training.train import train

OTHER = {"banking77": "hwu64", "hwu64": "banking77"}
PURE = 0.8
CONFIDENT = 0.5
FIELDS = ("method", "min_cluster_size", "min_samples", "distance", "min_cohesion", "max_spread")


def grid() -> list[DiscoveryConfig]:
    hdbscan = [
        DiscoveryConfig("hdbscan", min_cluster_size=size, min_samples=samples, min_cohesion=cohesion, max_spread=spread)
        for size, samples, cohesion, spread in itertools.product(
            (5, 10), (None, 1, 2, 3, 5), (0.5, 0.6), (0.15, 0.25, 0.4)
        )
    ]
    agglomerative = [
        DiscoveryConfig(
            method="agglomerative", distance=distance, min_cluster_size=size, min_cohesion=cohesion, max_spread=spread
        )
        for distance, size, cohesion, spread in itertools.product(
            (0.35, 0.4, 0.45, 0.5), (5, 10), (0.5, 0.6), (0.15, 0.25, 0.4)
        )
    ]
    hybrid = [DiscoveryConfig("hybrid", distance=d, min_samples=3, max_spread=0.4) for d in (0.25, 0.3, 0.35, 0.4)]
    return hdbscan + agglomerative + hybrid


def compared() -> list[DiscoveryConfig]:
    """The defaults, the HWU64 grid's hdbscan and agglomerative picks, and hdbscan's defaults before the grid."""
    before = DiscoveryConfig("hdbscan", min_samples=None, distance=0.35, max_spread=0.15)
    picks = [
        DiscoveryConfig(method, min_samples=3, distance=0.4, max_spread=0.4) for method in ("hdbscan", "agglomerative")
    ]
    return [DiscoveryConfig(), *picks, before]


def traffic(folder: Path, seed: int, withhold: int) -> tuple[list[Example], list[Example], list[str], list[str]]:
    """Production's training rows, the arriving questions (oos ones labelled `oos:<intent>`), their kinds, and
    the withheld intents."""
    rows, test = load_examples(folder / "train.csv"), load_examples(folder / "test.csv")
    rng = random.Random(seed)
    withheld = sorted(rng.sample(sorted({ex.label for ex in rows}), withhold))
    new = [ex for ex in rows + test if ex.label in withheld]
    kept_test = [ex for ex in test if ex.label not in withheld]
    if folder.name not in OTHER:
        raise SystemExit(f"no out-of-scope data set known for {folder.name} (one of {', '.join(OTHER)})")
    foreign = load_examples(folder.parent / OTHER[folder.name] / "test.csv")
    oos = [Example(ex.text, f"oos:{ex.label}") for ex in rng.sample(foreign, min(len(new), len(foreign)))]
    kinds = ["withheld"] * len(new) + ["kept"] * len(kept_test) + ["oos"] * len(oos)
    return [ex for ex in rows if ex.label not in withheld], new + kept_test + oos, kinds, withheld


def score(clusters: list[Cluster], labels: list[str], kinds: list[str], withheld: list[str], total: int) -> dict:
    """The figures of one config's proposals (`labels` / `kinds`: of the discovery input)."""
    reached = sum(kind == "withheld" for kind in kinds)
    covered = covered_pure = 0
    purities, sizes, majorities, found = [], [], Counter(), set()
    for cluster in clusters:
        major, count = Counter(labels[i] for i in cluster.members).most_common(1)[0]
        purity = count / cluster.size
        kind = "oos" if major.startswith("oos:") else "withheld" if major in withheld else "kept"
        majorities[kind] += 1
        hits = sum(kinds[i] == "withheld" and labels[i] == major for i in cluster.members)
        covered += hits
        covered_pure += hits if purity >= PURE else 0
        purities.append(purity)
        sizes.append(cluster.size)
        found |= {major} if kind == "withheld" else set()
    return {
        "proposals": len(clusters),
        "majority_withheld": majorities["withheld"],
        "majority_kept": majorities["kept"],
        "majority_oos": majorities["oos"],
        "clustered": int(sum(sizes)),
        "coverage": covered / reached if reached else 0.0,
        "coverage_pure": covered_pure / reached if reached else 0.0,
        "coverage_all": covered / total,
        "purity_mean": float(np.mean(purities)) if purities else 0.0,
        "purity_weighted": float(np.average(purities, weights=sizes)) if purities else 0.0,
        "found": len(found),
    }


def run(folder: Path, seed: int, withhold: int, base_model: str, recipe_name: str, configs: list) -> dict[str, Any]:
    started = time.perf_counter()
    train_rows, arriving, kinds, withheld = traffic(folder, seed, withhold)
    memo: dict[str, Any] = {}
    config = recipe(base_model, seed) if recipe_name == "first" else nightly(base_model)
    print(f"[{folder.name}] training production ({recipe_name}) on {len(train_rows)} questions", flush=True)
    production = train(config, train_rows, progress=False, memo=memo)
    production.memo = memo if config.freeze_encoder else None
    predictions = production.predict([ex.text for ex in arriving])  # one `probabilities` pass: probs, embeddings
    production.memo = None
    logged = [i for i, p in enumerate(predictions) if p.action != "answer" or p.confidence < CONFIDENT]
    texts = [arriving[i].text for i in logged]
    embeddings = np.stack([predictions[i].embedding for i in logged])
    labels, input_kinds = [arriving[i].label for i in logged], [kinds[i] for i in logged]
    total = kinds.count("withheld")
    answered_right = [p.label == ex.label for p, ex, k in zip(predictions, arriving, kinds, strict=True) if k == "kept"]
    rows = []
    for cfg in configs:
        t0 = time.perf_counter()
        row = {**{f: getattr(cfg, f) for f in FIELDS}, **score(discover(texts, embeddings, cfg), labels, input_kinds,
               withheld, total), "seconds": round(time.perf_counter() - t0, 2)}  # fmt: skip
        rows.append(row)
    return {
        "data": folder.name,
        "oos_data": OTHER[folder.name],
        "seed": seed,
        "recipe": recipe_name,
        "withheld": withheld,
        "arriving": Counter(kinds),
        "input": Counter(input_kinds),
        "reached": Counter(input_kinds)["withheld"] / total,
        "kept_top_accuracy": float(np.mean(answered_right)),
        "rows": rows,
        "seconds": round(time.perf_counter() - started, 1),
    }


def best(rows: list[dict[str, Any]], method: str) -> dict[str, Any] | None:
    """The grid's pick for one method: most coverage in pure proposals, size-weighted purity >= PURE; on a tie,
    fewer proposals, then the most values in common with the current defaults."""
    ok = [r for r in rows if r["method"] == method and r["purity_weighted"] >= PURE]
    now = DiscoveryConfig()
    unchanged = {id(r): sum(r[f] == getattr(now, f) for f in FIELDS) for r in ok}
    return max(ok, key=lambda r: (round(r["coverage_pure"], 3), -r["proposals"], unchanged[id(r)]), default=None)


def is_default(row: dict[str, Any]) -> bool:
    return all(row[f] == getattr(DiscoveryConfig(), f) for f in FIELDS)


def to_markdown(results: list[dict[str, Any]], meta: dict[str, Any], is_grid: bool) -> str:
    lines = ["# Discovery benchmark (issue 12)", "", f"{meta['date']} · {meta['machine']} · load {meta['load']}", ""]
    for res in results:
        lines += [
            f"## {res['data']} (seed {res['seed']}, production: {res['recipe']} recipe, out of scope from "
            f"{res['oos_data']}): withheld {', '.join(res['withheld'])}",
            "",
            f"Arriving {dict(res['arriving'])}; discovery input (unanswered) {dict(res['input'])}; withheld questions "
            f"reaching the input {res['reached']:.3f}; production's top-label accuracy on kept intents "
            f"{res['kept_top_accuracy']:.3f}; {res['seconds']:.0f} s",
            "",
            "| method | min size | min samples | distance | cohesion | spread | proposals (withheld/kept/oos) | "
            "coverage | in >= 80 % pure | of all withheld | purity mean | weighted | intents found |",
            "|---|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|",
        ]
        for r in sorted(res["rows"], key=lambda r: (r["method"], -r["coverage_pure"])) if is_grid else res["rows"]:
            lines.append(
                f"| {r['method']}{' (defaults)' if is_default(r) else ''} | {r['min_cluster_size']} | "
                f"{r['min_samples']} | "
                f"{r['distance'] if r['method'] != 'hdbscan' else '-'} | {r['min_cohesion']} | "
                f"{r['max_spread']} | {r['proposals']} ({r['majority_withheld']}/{r['majority_kept']}/"
                f"{r['majority_oos']}) | {r['coverage']:.3f} | {r['coverage_pure']:.3f} | {r['coverage_all']:.3f} | "
                f"{r['purity_mean']:.3f} | {r['purity_weighted']:.3f} | {r['found']}/{len(res['withheld'])} |"
            )
        if is_grid:
            for method in ("hdbscan", "agglomerative", "hybrid"):
                pick = best(res["rows"], method)
                picked = {f: pick[f] for f in FIELDS} if pick else "none reaches the purity bar"
                lines += ["", f"Pick ({method}): {picked}"]
        lines.append("")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, action="append", required=True, help="banking77 or hwu64 (repeatable)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--withhold", type=int, default=10)
    parser.add_argument("--grid", action="store_true", help="sweep a small grid (choose defaults on HWU64 only)")
    parser.add_argument("--recipe", choices=("first", "nightly"), default="first")
    parser.add_argument("--base-model", default=None, help="default: the bundled all-MiniLM-L6-v2")
    parser.add_argument("--out", type=Path, default=Path("bench/results/discovery"))
    args = parser.parse_args()
    load = os.getloadavg()[0]
    base, configs = args.base_model or bundled_base_model(), grid() if args.grid else compared()
    results = [run(folder, args.seed, args.withhold, base, args.recipe, configs) for folder in args.data]
    meta = run_meta(load)
    record = {"meta": meta, "defaults": dataclasses.asdict(DiscoveryConfig()), "results": results}
    write_results(args.out, record, to_markdown(results, meta, args.grid))


if __name__ == "__main__":
    main()
