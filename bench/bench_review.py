"""Review-queue benchmark (issue 12): does labelling the top of the queue help the next model more than random?

On a public intent data set (`--data`, BANKING77 by default), seeded: the **seed** is `--per-intent` training
questions of each intent (what production was trained on), the rest of the training split is the **pool** of
logged, unlabelled questions. Production is the first model (a head on the frozen base encoder,
`training.config.FIRST_MODEL`), as on a fresh install. It scores the pool; each question's signals are
`Signals(handed_off=action != "answer")` (the data has no customer ratings, so no disagreement signal, and no
discovery proposals). For each N in `--ns`, N pool questions are labelled (their true labels) by each arm:

* `queue`: `training.review.rank(...)[:N]` with the default `ReviewConfig` (`--similarities 0.8,0.6`: extra
  queue arms with those `duplicate_similarity` values);
* `margin only`: the same with `handoff_bonus=0` (the ablation);
* `random s`: N questions drawn uniformly, one draw per seed in `--random-seeds`;
* `capped` (exploratory, only with `--arms`): the queue's order, at most ceil(N / labels) per top guess;

and the next model (same recipe, or `--recipe nightly`: the encoder fine-tuned, ~3 min per model here on 2 CPU
cores, since it trains on seed + N only) is trained `--model-seeds` times on seed + those N (mean reported), then
measured on the test split (`--eval-file valid.csv`, or `--holdout 0.25`: a quarter of each intent's
training questions kept out of the pool, to try alternatives without touching it): top-1 accuracy and
the share answered right at the model's operating point (`right_answer`: answered right, or a clarifying question
offering the right intent). `seed only` is the baseline. Significance: one-sided paired test on the test questions
that the queue's models are better than each random draw's: a sign test on each question's share of models right,
the exact McNemar test with one model (`training.stats.one_sided_p`).

`--log-samples K --log-share F`: the arms are run on K samples of the pool (F of it each, uniform), as K teams'
logs: the queue's picks move with the logs (a 75 % sample of the same pool moved its N = 300 model 1.5 points on
the test split), so one pool measures one draw of the queue as much as the queue. `across_samples` reports each
sample's difference from its random draws, their mean and a one-sided t-test over the samples.

Target (issue 12): the queue's next model better than random's at N = 100 and 300 (p < 0.05 against each draw;
with log samples, the mean difference above 0 over the samples, p < 0.05).

Usage:
    .venv/bin/python bench/bench_review.py --data ../shared/data/banking77 --ns 100,300
    .venv/bin/python bench/bench_review.py --data ../shared/data/banking77 --arms seed,queue,random \
        --log-samples 5 --log-share 0.75 --seed 8 --out bench/results/review_logs_s8
    .venv/bin/python bench/bench_review.py --data ../shared/data/banking77 --ns 300 --recipe nightly \
        --arms queue,random --model-seeds 1 --out bench/results/review_nightly
    .venv/bin/python bench/bench_review.py --data ../shared/data/hwu64 --eval-file valid.csv \
        --arms queue,random,capped --similarities 0.8,0.6 --model-seeds 5 --out bench/results/review_hwu64

Writes bench/results/review.json and review.md (git-ignored).
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse
import dataclasses
import random
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from bench_few_shot import nightly
from bench_gate import recipe, run_meta, write_results

from bot.settings import bundled_base_model
from training.data import Example, load_examples
from training.evaluate import evaluate
from training.model import IntentModel
from training.review import ReviewConfig, Signals, rank
from training.stats import one_sided_p
from training.train import train

ARMS = ("seed", "queue", "margin", "random", "capped")


def split_seed(
    folder: Path, per_intent: int, seed: int, holdout: float = 0.0
) -> tuple[list[Example], list[Example], list[Example]]:
    """The seed (`per_intent` training questions of each intent), the pool (the rest of the training split) and,
    with `holdout` > 0, that share of each intent's rest kept out of the pool to tune on (else empty)."""
    by_label: dict[str, list[Example]] = {}
    for ex in load_examples(folder / "train.csv"):
        by_label.setdefault(ex.label, []).append(ex)
    rng = random.Random(seed)
    seed_rows: list[Example] = []
    pool: list[Example] = []
    held: list[Example] = []
    for label in sorted(by_label):
        group = by_label[label][:]
        rng.shuffle(group)
        kept = round(holdout * (len(group) - per_intent))
        seed_rows += group[:per_intent]
        held += group[per_intent : per_intent + kept]
        pool += group[per_intent + kept :]
    return seed_rows, pool, held


def scored(model: IntentModel, rows: list[Example], memo: dict[str, Any]) -> dict[str, Any]:
    """Test-split measures of `model`: per-question top-1 right, and the share answered right at its point."""
    model.memo = memo if model.info["training"]["freeze_encoder"] else None  # memo: the base encoder's
    probs, _ = model.probabilities([ex.text for ex in rows], 128)
    report = evaluate(model, rows, batch_size=128)
    model.memo = None
    labels = model.labels
    right = np.array([labels[i] == ex.label for i, ex in zip(probs.argmax(axis=1), rows, strict=True)])
    return {"right": right, "right_answer": float(np.mean([o == "right_answer" for o in report.outcomes_by_question]))}


def better_p(first: np.ndarray, second: np.ndarray) -> float:
    """One-sided p-value that `first` is better than `second` on the same questions: a sign test on each
    question's share of models right (rows: model seeds), the exact McNemar test with one model each."""
    diff = np.atleast_2d(first).mean(axis=0) - np.atleast_2d(second).mean(axis=0)
    return one_sided_p(int((diff > 0).sum()), int((diff != 0).sum()))


def scored_pool(
    base_model: str, seed_rows: list[Example], pool: list[Example], memo: dict[str, Any]
) -> tuple[IntentModel, np.ndarray, np.ndarray, list[Signals]]:
    """Production (the first model, trained on the seed) and what it says of the pool: probabilities, embeddings
    and each question's signals (handed off when its action is not "answer")."""
    production = train(recipe(base_model, 0), seed_rows, progress=False, memo=memo)
    production.memo = memo
    texts = [ex.text for ex in pool]
    probs, embeddings = production.probabilities(texts, 128)
    signals = [Signals(handed_off=p.action != "answer") for p in production.predict(texts, 128)]
    production.memo = None
    return production, probs, embeddings, signals


def random_draw(seed: int, draw: int, n: int, logs: Sequence[int], tag: str = "") -> list[int]:
    """Random draw number `draw` of N of the logged questions `logs` (`tag` names the log sample; "" for the pool)."""
    return random.Random(f"{seed}-{draw}-{n}{tag}").sample(list(logs), n)


def run(args: argparse.Namespace, base_model: str) -> dict[str, Any]:
    seed_rows, pool, held = split_seed(args.data, args.per_intent, args.seed, args.holdout)
    test = held if args.holdout else load_examples(args.data / args.eval_file)
    memo: dict[str, Any] = {}
    started = time.perf_counter()
    production, probs, embeddings, signals = scored_pool(base_model, seed_rows, pool, memo)
    labels = production.labels
    wrong = np.array([labels[i] != ex.label for i, ex in zip(probs.argmax(axis=1), pool, strict=True)])
    handed = np.array([s.handed_off for s in signals])
    print(f"[{args.data.name}] production + pool scored in {time.perf_counter() - started:.0f} s: {len(pool)} pool, "
          f"{handed.mean():.3f} handed off, {wrong.mean():.3f} wrong")  # fmt: skip

    def fit(extra: list[Example]) -> dict[str, Any]:
        """The next model trained once per model seed on seed + `extra`: its test measures, seeds stacked."""
        t0, runs = time.perf_counter(), []
        for model_seed in range(args.model_seeds):
            config = recipe(base_model, model_seed)
            if args.recipe == "nightly":
                config = dataclasses.replace(nightly(base_model), seed=model_seed)
            runs.append(scored(train(config, seed_rows + extra, progress=False, memo=memo), test, memo))
        right = np.stack([run["right"] for run in runs])
        return {
            "right": right,
            "top1_by_model_seed": [float(r.mean()) for r in right],
            "right_answer": float(np.mean([run["right_answer"] for run in runs])),
            "seconds": round(time.perf_counter() - t0, 1),
        }

    queues = [("queue", "queue", ReviewConfig()), ("margin", "margin only", ReviewConfig(handoff_bonus=0.0))]
    queues += [("queue", f"queue, dup >= {v:g}", ReviewConfig(duplicate_similarity=v)) for v in args.similarities]
    queues += [
        ("queue", f"queue, diverse x{k}" if k > 1 else "queue, margin order (no k-means)", ReviewConfig(diversity=k))
        for k in args.diversities
    ]

    def picks(n: int, logs: list[int], tag: str) -> dict[str, list[int]]:
        """Each arm's N questions (pool indices) from the logged questions `logs` (pool indices)."""
        sub = (probs[logs], embeddings[logs], labels)
        mapped = {name: [logs[r.index] for r in rank(*sub, [signals[i] for i in logs], limit=n, config=config)]
                  for arm, name, config in queues if arm in args.arms}  # fmt: skip
        if "random" in args.arms:
            for s in range(1, args.random_seeds + 1):
                mapped[f"random {s}"] = random_draw(args.seed, s, n, logs, tag)
        if args.rated:  # simulated customers: "not helpful" on a share of wrong answers (a fifth of that on right ones)
            rng = random.Random(f"{args.seed}-rated")
            odds = [args.rated if w else args.rated / 5 for w in wrong]
            rated = [
                dataclasses.replace(s, disagreement=not s.handed_off and rng.random() < p)
                for s, p in zip(signals, odds, strict=True)
            ]
            mapped[f"queue, customers rate {args.rated:.0%} of wrong answers"] = [
                logs[r.index] for r in rank(*sub, [rated[i] for i in logs], limit=n)
            ]
        if "capped" in args.arms:  # exploratory: the queue's order, at most ceil(N / labels) per top guess
            cap, seen, capped = -(-n // len(labels)), dict[str, int](), list[int]()
            for r in rank(*sub, [signals[i] for i in logs], limit=min(len(logs), 20 * n)):
                seen[r.guesses[0][0]] = seen.get(r.guesses[0][0], 0) + 1
                capped += [logs[r.index]] if seen[r.guesses[0][0]] <= cap and len(capped) < n else []
            mapped[f"queue, <= {cap} per top guess"] = capped
        return mapped

    rows: list[dict[str, Any]] = []
    seed_model = fit([]) if "seed" in args.arms else None
    if seed_model is not None:
        rows.append({"n": 0, "sample": None, "arm": "seed only", **seed_model})
    for sample in range(args.log_samples):
        logs, tag = list(range(len(pool))), ""
        if args.log_share < 1:  # a team's logs: a uniform share of the pool, one per sample
            tag = f"-logs{sample}"
            logs = sorted(random.Random(f"{args.seed}{tag}").sample(logs, round(args.log_share * len(pool))))
        for n in args.ns:
            chosen_by = picks(n, logs, tag)
            for name, chosen in chosen_by.items():
                print(f"[{args.data.name}] {datetime.now(UTC):%H:%M:%S} logs {sample} N={n} {name}: training "
                      f"({args.recipe})", flush=True)  # fmt: skip
                row = {"n": n, "sample": sample, "arm": name, **fit([pool[i] for i in chosen])}
                row |= {
                    "intents": len({pool[i].label for i in chosen}),
                    "handed_off": float(handed[chosen].mean()),
                    "production_wrong": float(wrong[chosen].mean()),
                    "shared_with_queue": len(set(chosen) & set(chosen_by.get("queue", []))),
                }
                rows.append(row)
            here = [r for r in rows if r["n"] == n and r["sample"] == sample]
            draws = [r for r in here if r["arm"].startswith("random")]
            for row in here:
                row["top1"] = float(row["right"].mean())
                if seed_model is not None:
                    row["p_better_than_seed"] = better_p(row["right"], seed_model["right"])
                if not row["arm"].startswith("random"):
                    row["p_better_than_random"] = [better_p(row["right"], r["right"]) for r in draws]
                print(f"[{args.data.name}] logs {sample} N={n} {row['arm']}: top-1 {row['top1']:.4f}, right answer "
                      f"{row['right_answer']:.4f}, {row['seconds']} s")  # fmt: skip
    summary = across_samples(rows)
    for row in rows:
        row["top1"] = float(row.pop("right").mean())
    return {
        "data": args.data.name,
        "seed": args.seed,
        "per_intent": args.per_intent,
        "recipe": args.recipe,
        "model_seeds": args.model_seeds,
        "seed_rows": len(seed_rows),
        "pool": len(pool),
        "test": len(test),
        "eval_file": f"{args.holdout:.0%} of train held out" if args.holdout else args.eval_file,
        "pool_handed_off": float(handed.mean()),
        "pool_production_wrong": float(wrong.mean()),
        "log_samples": args.log_samples,
        "log_share": args.log_share,
        "rows": rows,
        "across_samples": summary,
        "seconds": round(time.perf_counter() - started, 1),
    }


def across_samples(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per N and non-random arm, over the log samples: its top-1 minus the mean of that sample's random draws
    (each sample's difference; their mean, and a one-sided t-test that it is above 0, the samples being the
    unit: it counts the variance of the queue's own picks), and a sign test on the test questions pooling every
    sample's models (`better_p`)."""
    from scipy.stats import ttest_1samp

    out = []
    for n in sorted({r["n"] for r in rows if r["n"] and r["arm"].startswith("random")}):  # Ns with random draws
        arms = dict.fromkeys(r["arm"] for r in rows if r["n"] == n and not r["arm"].startswith("random"))
        for arm in arms:
            mine = [r for r in rows if r["n"] == n and r["arm"] == arm]
            diffs, draws = [], []
            for row in mine:
                drawn = [
                    r for r in rows if r["n"] == n and r["sample"] == row["sample"] and r["arm"].startswith("random")
                ]
                diffs.append(float(row["right"].mean() - np.mean([r["right"].mean() for r in drawn])))
                draws += [r["right"] for r in drawn]
            t_p = float(ttest_1samp(diffs, 0.0, alternative="greater").pvalue) if len(diffs) > 1 else None
            out.append({
                "n": n,
                "arm": arm,
                "samples": len(mine),
                "top1": float(np.mean([r["right"].mean() for r in mine])),
                "random_top1": float(np.mean([d.mean() for d in draws])),
                "differences": diffs,
                "t_p": t_p,
                "question_p": better_p(np.vstack([r["right"] for r in mine]), np.vstack(draws)),
                "beat_every_draw": sum(max(r["p_better_than_random"], default=1.0) < 0.05 for r in mine),
            })  # fmt: skip
    return out


def verdicts(result: dict[str, Any]) -> dict[int, bool]:
    """Per N: the queue beat every random draw (p < 0.05) in every log sample."""
    return {
        row["n"]: row["beat_every_draw"] == row["samples"] for row in result["across_samples"] if row["arm"] == "queue"
    }


def sample_verdicts(result: dict[str, Any]) -> dict[int, bool]:
    """Per N, with more than one log sample: the queue's mean difference from random is above 0 (t-test, p < 0.05)."""
    return {
        row["n"]: row["t_p"] is not None and row["t_p"] < 0.05
        for row in result["across_samples"]
        if row["arm"] == "queue"
    }


def to_markdown(result: dict[str, Any], meta: dict[str, Any]) -> str:
    lines = [
        "# Review-queue benchmark (issue 12)",
        "",
        f"{meta['date']} · {meta['machine']} · load {meta['load']} · {result['data']} seed {result['seed']}, "
        f"next models' recipe: {result['recipe']}, {result['model_seeds']} model seeds per arm; "
        f"seed {result['seed_rows']} ({result['per_intent']} per intent), "
        f"pool {result['pool']} (production hands off {result['pool_handed_off']:.3f}, top-1 wrong on "
        f"{result['pool_production_wrong']:.3f}), {result['log_samples']} log sample(s) of "
        f"{result['log_share']:.0%} of it, {result['eval_file']} {result['test']}; {result['seconds']:.0f} s",
        "",
        "| N | logs | arm | test top-1 (model seeds' range) | right answer | p better than seed only | "
        "p better than each random draw | "
        "intents labelled | handed off | production wrong | shared with queue |",
        "|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in result["rows"]:
        spread = row["top1_by_model_seed"]
        versus = " / ".join(_fmt(p) for p in row.get("p_better_than_random", [])) or "-"
        lines.append(
            f"| {row['n']} | {_fmt(row['sample'])} | {row['arm']} | "
            f"{row['top1']:.4f} ({min(spread):.3f}-{max(spread):.3f}) | "
            f"{row['right_answer']:.4f} | "
            f"{_fmt(row.get('p_better_than_seed'))} | {versus} | {row.get('intents', '-')} | "
            f"{_fmt(row.get('handed_off'))} | {_fmt(row.get('production_wrong'))} | "
            f"{row.get('shared_with_queue', '-')} |"
        )
    lines += [
        "",
        "Across the log samples: top-1 minus the mean of the same sample's random draws.",
        "",
        "| N | arm | samples | top-1 (mean) | random (mean) | difference (mean; each sample) | t-test p | "
        "question sign-test p | samples beating every draw |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in result["across_samples"]:
        each = " / ".join(f"{d:+.4f}" for d in row["differences"])
        lines.append(
            f"| {row['n']} | {row['arm']} | {row['samples']} | {row['top1']:.4f} | {row['random_top1']:.4f} | "
            f"{np.mean(row['differences']):+.4f} ({each}) | {_fmt(row['t_p'])} | {_fmt(row['question_p'])} | "
            f"{row['beat_every_draw']} |"
        )
    for n, met in verdicts(result).items():
        lines.append(f"\nN={n}: queue better than every random draw (p < 0.05) in every log sample: "
                     f"{'met' if met else '**missed**'}")  # fmt: skip
    if result["log_samples"] > 1:
        for n, met in sample_verdicts(result).items():
            lines.append(f"\nN={n}: queue's mean difference from random above 0 over the log samples (t-test "
                         f"p < 0.05): {'met' if met else '**missed**'}")  # fmt: skip
    return "\n".join(lines) + "\n"


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.3g}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data/banking77"))
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--eval-file", default="test.csv", help="the split measured (valid.csv to tune on)")
    parser.add_argument(
        "--holdout", type=float, default=0.0, help="measure on this share of the training split, kept out of the pool"
    )
    parser.add_argument("--per-intent", type=int, default=10)
    parser.add_argument("--log-samples", type=int, default=1, help="samples of the pool as the logs, each measured")
    parser.add_argument("--log-share", type=float, default=1.0, help="share of the pool in each log sample")
    parser.add_argument("--ns", default="100,300")
    parser.add_argument("--model-seeds", type=int, default=3, help="next models trained per arm (mean reported)")
    parser.add_argument("--random-seeds", type=int, default=3)
    parser.add_argument("--arms", default="seed,queue,margin,random", help=f"a subset of {', '.join(ARMS)}")
    parser.add_argument("--similarities", default="", help="extra queue arms: ReviewConfig.duplicate_similarity")
    parser.add_argument("--rated", type=float, default=0.0, help="extra queue arm with simulated unhelpful ratings")
    parser.add_argument("--diversities", default="", help="extra queue arms: ReviewConfig.diversity")
    parser.add_argument("--recipe", choices=("first", "nightly"), default="first", help="the next models' recipe")
    parser.add_argument("--base-model", default=None)
    parser.add_argument("--out", type=Path, default=Path("bench/results/review"))
    args = parser.parse_args()
    load = os.getloadavg()[0]
    args.ns = [int(n) for n in args.ns.split(",")]
    args.similarities = [float(v) for v in args.similarities.split(",") if v]
    args.diversities = [int(v) for v in args.diversities.split(",") if v]
    args.arms = [arm for arm in args.arms.split(",") if arm]
    if unknown := sorted(set(args.arms) - set(ARMS)):
        parser.error(f"unknown arms {unknown}; choose from {', '.join(ARMS)}")
    result = run(args, args.base_model or bundled_base_model())
    meta = run_meta(load)
    write_results(args.out, {"meta": meta, "result": result}, to_markdown(result, meta))


if __name__ == "__main__":
    main()
