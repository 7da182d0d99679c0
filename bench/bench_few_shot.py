"""Few-shot benchmark (issue 11): how many agent corrections a brand-new intent needs to be learnt in one night.

On a public intent data set (`--data`, BANKING77 by default), seeded: 5 intents are new (production never saw
them), 10 % are out of scope (their test questions enter the frozen set as `out_of_scope`), the rest is the seed.
For each k in `--ks` (default 1, 2, 3, 5, 10), a candidate is trained on the seed plus k training questions of
each new intent (the agents' corrections), and measured on:

* **new intents, unseen**: the new intents' test questions, top label right (and right answer at the model's
  operating point, i.e. what the customer gets);
* **corrected questions**: the k x 5 corrected questions themselves ("corrected today, right tomorrow");
* **seed test**: accuracy on the seed intents' test questions, with the gate's verdict against production
  (trained on the seed alone) on the whole frozen set.

Each k is trained once per variant in the same run: `none` (`rare_label_examples=0`: a rare label is split like any
other and weighted by its count, the first behaviour), `repeat` (rare labels keep every example for training and
are repeated up to 8 per epoch, no logit adjustment: the previous default) and `now` (the defaults: rare below 16,
logit adjustment `rare_logit_adjustment=1`, see `training.fine_tune.rare_adjustment`). Production is the first
model (a head on the frozen encoder, `training.config.FIRST_MODEL`), as on a fresh install. The candidates are
the same recipe by default, sharing one embedding pass, so the whole curve costs minutes; `--recipe nightly`
trains them as the nightly job does (the encoder fine-tuned, the calibration twin: ~15 min each at BANKING77 size
on 2 CPU cores).

Targets (issue 11): >= 70 % on the new intents' unseen questions at k = 3 and >= 90 % at k = 10; corrected
questions >= 95 %; seed accuracy not significantly lower; the candidate promoted at every k.

Usage:
    .venv/bin/python bench/bench_few_shot.py --data ../shared/data/banking77
    .venv/bin/python bench/bench_few_shot.py --data ../shared/data/banking77 --recipe nightly --ks 3,10 \
        --variants repeat,now --out bench/results/few_shot_nightly

Writes bench/results/few_shot.json and few_shot.md (git-ignored).
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse
import dataclasses
import random
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from bench_gate import make_sets, recipe, run_meta, write_results

from bot.settings import Settings, bundled_base_model
from training.config import TrainingConfig
from training.data import Example
from training.evaluate import evaluate
from training.gate import GatePolicy, Scores, decide
from training.model import IntentModel
from training.stats import one_sided_p
from training.train import train

VARIANTS: dict[str, dict[str, Any]] = {
    "none": {"rare_label_examples": 0, "rare_logit_adjustment": 0.0},
    "repeat": {"rare_label_examples": 8, "rare_logit_adjustment": 0.0},
    "now": {},  # the defaults
}


def _frozen(model: IntentModel) -> bool:
    return bool(model.info["training"]["freeze_encoder"])


def _right(model: IntentModel, rows: list[Example], memo: dict[str, Any]) -> np.ndarray:
    """Whether the top label of each row is its label."""
    model.memo = memo if _frozen(model) else None  # remembered embeddings are the base encoder's
    probs, _ = model.probabilities([ex.text for ex in rows], 128)
    model.memo = None
    labels = model.labels
    return np.array([labels[i] == ex.label for i, ex in zip(probs.argmax(axis=1), rows, strict=True)])


def _top(model: IntentModel, rows: list[Example], memo: dict[str, Any]) -> float:
    return float(np.mean(_right(model, rows, memo)))


def _worse_p(candidate: np.ndarray, production: np.ndarray) -> float:
    """Exact one-sided McNemar p-value that the candidate is worse than production on the same questions."""
    worse, better = int((production & ~candidate).sum()), int((candidate & ~production).sum())
    return one_sided_p(worse, worse + better)


def nightly(base_model: str) -> TrainingConfig:
    """The nightly job's recipe for a candidate whose production is the first model (its encoder is the base one,
    so warm-starting from it is starting from the base model): `bot.retrain`'s config at the default settings."""
    return TrainingConfig(base_model=base_model, epochs=Settings.model_fields["retrain_epochs"].default)


def run(
    folder: Path, seed: int, ks: list[int], base_model: str, recipe_name: str, variants: list[str]
) -> dict[str, Any]:
    sets = make_sets(folder, seed)
    memo: dict[str, Any] = {}
    rng = random.Random(seed)
    by_intent: dict[str, list[Example]] = {}
    for ex in sets.corrections:
        by_intent.setdefault(ex.label, []).append(ex)
    for rows in by_intent.values():
        rng.shuffle(rows)
    new_test = [ex for ex in sets.frozen if ex.label in sets.new_intents]
    seed_test = [ex for ex in sets.frozen if ex.label not in sets.new_intents and ex.label != "out_of_scope"]

    production = train(recipe(base_model, 0), sets.seed_rows, progress=False, memo=memo)
    production.memo = memo
    prod_report = evaluate(production, sets.frozen)
    production.memo = None
    prod_scores = Scores.from_eval(prod_report, production.labels)
    prod_seed_right = _right(production, seed_test, memo)
    prod_seed = float(np.mean(prod_seed_right))
    rows_out = []
    for k in ks:
        corrected = [ex for rows in by_intent.values() for ex in rows[:k]]
        for variant in variants:
            started = time.perf_counter()
            print(f"[{folder.name}] {datetime.now(UTC):%H:%M:%S} k={k} {variant}: training ({recipe_name})", flush=True)
            start = recipe(base_model, 0) if recipe_name == "first" else nightly(base_model)
            config = dataclasses.replace(start, **VARIANTS[variant])
            model = train(config, sets.seed_rows + corrected, progress=False, memo=memo)
            model.memo = memo if _frozen(model) else None
            report = evaluate(model, sets.frozen)
            model.memo = None
            decision = decide(Scores.from_eval(report, model.labels), prod_scores, GatePolicy())
            new_top = _top(model, new_test, memo)
            new_outcomes = [o for o, t in zip(report.outcomes_by_question, report.truth, strict=True)
                            if t in sets.new_intents]  # fmt: skip
            row = {
                "k": k,
                "variant": variant,
                "new_unseen_top": new_top,
                "new_unseen_right_answer": float(np.mean([o == "right_answer" for o in new_outcomes])),
                "corrected_top": _top(model, corrected, memo),
                "seed_test_top": float(np.mean(seed_right := _right(model, seed_test, memo))),
                "seed_test_worse_p": _worse_p(seed_right, prod_seed_right),
                "verdict": "promote" if decision.promote else "reject",
                "deciding": decision.failed[0].detail if decision.failed else decision.reasons[0],
                "seconds": round(time.perf_counter() - started, 1),
            }
            rows_out.append(row)
            print(
                f"[{folder.name}] k={k} {variant}: new {row['new_unseen_top']:.3f} "
                f"(right answer {row['new_unseen_right_answer']:.3f}), corrected {row['corrected_top']:.3f}, "
                f"seed {row['seed_test_top']:.3f} (worse p {row['seed_test_worse_p']:.2g}), {row['verdict']}"
            )
    return {
        "data": folder.name,
        "seed": seed,
        "recipe": recipe_name,
        "new_intents": sets.new_intents,
        "new_test_questions": len(new_test),
        "production_seed_test_top": prod_seed,
        "rows": rows_out,
    }


def to_markdown(result: dict[str, Any], meta: dict[str, Any]) -> str:
    lines = [
        "# Few-shot benchmark (issue 11)",
        "",
        f"{meta['date']} · {meta['machine']} · load {meta['load']} · {result['data']} seed {result['seed']}, "
        f"candidates' recipe: {result['recipe']}: "
        f"new intents {', '.join(result['new_intents'])} ({result['new_test_questions']} unseen test questions); "
        f"production's seed-test accuracy {result['production_seed_test_top']:.3f}",
        "",
        "| k | variant | new intents, unseen (top label) | right answer | corrected questions | seed test "
        "(p worse than production) | gate |",
        "|---:|---|---:|---:|---:|---:|---|",
    ]
    for row in result["rows"]:
        lines.append(
            f"| {row['k']} | {row['variant']} | {row['new_unseen_top']:.3f} | {row['new_unseen_right_answer']:.3f} | "
            f"{row['corrected_top']:.3f} | {row['seed_test_top']:.3f} ({row['seed_test_worse_p']:.2g}) | "
            f"{row['verdict']} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data/banking77"))
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--ks", default="1,2,3,5,10")
    parser.add_argument(
        "--recipe",
        choices=("first", "nightly"),
        default="first",
        help="the candidates' recipe: the first-run head on the frozen encoder (minutes for the whole curve), or "
        "the nightly fine-tune (about 15 min per candidate at BANKING77 size on 2 CPU cores); production is "
        "always the first model, as on a fresh install",
    )
    parser.add_argument("--variants", default=",".join(VARIANTS), help=f"a subset of {', '.join(VARIANTS)}")
    parser.add_argument("--base-model", default=None)
    parser.add_argument("--out", type=Path, default=Path("bench/results/few_shot"))
    args = parser.parse_args()
    load = os.getloadavg()[0]
    ks = [int(k) for k in args.ks.split(",")]
    variants = [name for name in args.variants.split(",") if name]
    if unknown := sorted(set(variants) - set(VARIANTS)):
        parser.error(f"unknown variants {unknown}; choose from {', '.join(VARIANTS)}")
    result = run(args.data, args.seed, ks, args.base_model or bundled_base_model(), args.recipe, variants)
    meta = run_meta(load)
    write_results(args.out, {"meta": meta, "result": result}, to_markdown(result, meta))


if __name__ == "__main__":
    main()
