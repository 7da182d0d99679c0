"""Gate benchmark (issue 11): the sabotaged candidates the promotion gate must reject, and those it must promote.

On a public intent data set (`--data`, e.g. ../shared/data/hwu64 and ../shared/data/banking77), seeded:

* 10 % of the intents are out of scope: never trained on; their test questions enter the frozen evaluation set
  labelled `out_of_scope` (what customers ask that the bot must hand off);
* 5 intents are **new**: production does not know them, the night-1 candidate learns them from their training
  questions (the agents' corrections);
* the rest is the seed production is trained on.

Every model is the first-run recipe (`training.config.FIRST_MODEL`: a head on the frozen base encoder, with the
calibration twin), so the whole matrix costs one embedding pass (shared by every model) and seconds per model;
the gate sees real models, real operating points and real per-question outcomes on the frozen set (the test
questions of the seed and new intents plus the out-of-scope ones). Candidates, each judged by
`training.gate.decide` against production:

| candidate | expected |
|---|---|
| night 1: seed + the new intents' questions | promote |
| seed noise: production's data, another seed | not a regression (either verdict) |
| labels shuffled | reject |
| 30 % label noise on 10 intents | reject |
| two intents merged | reject |
| abstention broken: production with its threshold at -inf (never hands off) | reject |
| half the seed | reject |

Usage:
    .venv/bin/python bench/bench_gate.py --data ../shared/data/hwu64 --data ../shared/data/banking77

Writes bench/results/gate.json and gate.md (git-ignored) and prints the table.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse
import copy
import dataclasses
import json
import platform
import random
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from bot.settings import bundled_base_model
from training.calibration import OperatingPoint
from training.config import FIRST_MODEL, TrainingConfig
from training.data import Example, load_examples
from training.evaluate import evaluate
from training.gate import Decision, GatePolicy, Scores, decide
from training.intents import OUT_OF_SCOPE
from training.model import IntentModel
from training.train import train

NEW_INTENTS = 5
OOS_SHARE = 0.1
NOISY_INTENTS = 10
NOISE = 0.3


@dataclasses.dataclass(frozen=True)
class Sets:
    """The seeded split of one data set."""

    seed_rows: list[Example]
    corrections: list[Example]
    frozen: list[Example]
    new_intents: list[str]
    oos_intents: list[str]


def make_sets(folder: Path, seed: int) -> Sets:
    rows = load_examples(folder / "train.csv")
    test = load_examples(folder / "test.csv")
    labels = sorted({ex.label for ex in rows})
    rng = random.Random(seed)
    oos = sorted(rng.sample(labels, max(2, round(OOS_SHARE * len(labels)))))
    new = sorted(rng.sample([label for label in labels if label not in oos], NEW_INTENTS))
    known = set(labels) - set(oos) - set(new)
    frozen = [ex for ex in test if ex.label in known or ex.label in new]
    frozen += [Example(ex.text, OUT_OF_SCOPE) for ex in test if ex.label in oos]
    return Sets(
        seed_rows=[ex for ex in rows if ex.label in known],
        corrections=[ex for ex in rows if ex.label in new],
        frozen=frozen,
        new_intents=new,
        oos_intents=oos,
    )


def shuffled(rows: list[Example], rng: random.Random) -> list[Example]:
    labels = [ex.label for ex in rows]
    rng.shuffle(labels)
    return [Example(ex.text, label) for ex, label in zip(rows, labels, strict=True)]


def noisy(rows: list[Example], rng: random.Random) -> list[Example]:
    labels = sorted({ex.label for ex in rows})
    hit = set(rng.sample(labels, NOISY_INTENTS))
    out = []
    for ex in rows:
        if ex.label in hit and rng.random() < NOISE:
            out.append(Example(ex.text, rng.choice([label for label in labels if label != ex.label])))
        else:
            out.append(ex)
    return out


def merged(rows: list[Example], rng: random.Random) -> tuple[list[Example], str]:
    counts: dict[str, int] = {}
    for ex in rows:
        counts[ex.label] = counts.get(ex.label, 0) + 1
    first, second = rng.sample(sorted(counts), 2)
    return [Example(ex.text, first if ex.label == second else ex.label) for ex in rows], f"{second} -> {first}"


def halved(rows: list[Example], rng: random.Random) -> list[Example]:
    by_label: dict[str, list[Example]] = {}
    for ex in rows:
        by_label.setdefault(ex.label, []).append(ex)
    out: list[Example] = []
    for label in sorted(by_label):
        group = by_label[label][:]
        rng.shuffle(group)
        out += group[: max(2, len(group) // 2)]
    return out


def never_hands_off(model: IntentModel) -> IntentModel:
    broken = copy.copy(model)
    broken.point = dataclasses.replace(model.point, threshold=float("-inf"), clarify_margin=float("-inf"))
    broken.info = {**model.info, "decision": OperatingPoint.to_dict(broken.point)}
    return broken


def recipe(base_model: str, seed: int) -> TrainingConfig:
    return TrainingConfig(base_model=base_model, seed=seed, **FIRST_MODEL)  # type: ignore[arg-type]


def judged(
    name: str, model: IntentModel, production: tuple[Scores, Any], frozen: list[Example], memo: dict[str, Any]
) -> dict[str, Any]:
    model.memo = memo  # the frozen encoder's embeddings, computed once for every model
    report = evaluate(model, frozen)
    model.memo = None
    scores = Scores.from_eval(report, model.labels)
    decision: Decision = decide(scores, production[0], GatePolicy())
    failed = decision.failed
    return {
        "candidate": name,
        "accuracy": report.accuracy,
        "good_share": _good_share(report),
        "verdict": "promote" if decision.promote else "reject",
        "deciding": (failed[0].detail if failed else decision.reasons[0]),
        "reasons": decision.reasons,
        "checks_failed": len(failed),
    }


def _good_share(report: Any) -> float | None:
    outcomes = getattr(report, "outcomes_by_question", None) or getattr(report, "question_outcomes", None)
    if not outcomes:
        return None
    return float(np.mean([o in ("right_answer", "right_handoff") for o in outcomes]))


def run_data_set(folder: Path, seed: int, base_model: str) -> dict[str, Any]:
    started = time.perf_counter()
    sets = make_sets(folder, seed)
    rng = random.Random(seed + 1)
    memo: dict[str, Any] = {}

    def fit(rows: list[Example], model_seed: int = 0) -> IntentModel:
        return train(recipe(base_model, model_seed), rows, progress=False, memo=memo)

    production = fit(sets.seed_rows)
    production.memo = memo
    prod_report = evaluate(production, sets.frozen)
    production.memo = None
    prod_scores = Scores.from_eval(prod_report, production.labels)
    merged_rows, merged_what = merged(sets.seed_rows, rng)
    builders: list[tuple[str, str, Callable[[], IntentModel]]] = [
        ("night 1 (seed + new intents)", "promote", lambda: fit(sets.seed_rows + sets.corrections)),
        ("seed noise (another seed)", "not a regression", lambda: fit(sets.seed_rows, model_seed=1)),
        ("labels shuffled", "reject", lambda: fit(shuffled(sets.seed_rows, rng))),
        (f"30% label noise on {NOISY_INTENTS} intents", "reject", lambda: fit(noisy(sets.seed_rows, rng))),
        (f"two intents merged ({merged_what})", "reject", lambda: fit(merged_rows)),
        ("abstention broken (never hands off)", "reject", lambda: never_hands_off(production)),
        ("half the seed", "reject", lambda: fit(halved(sets.seed_rows, rng))),
    ]
    rows = []
    for name, expected, build in builders:
        t0 = time.perf_counter()
        row = judged(name, build(), (prod_scores, prod_report), sets.frozen, memo)
        row["expected"] = expected
        row["seconds"] = round(time.perf_counter() - t0, 1)
        if expected == "not a regression":
            called = [r for r in row["reasons"] if r.startswith("regression overall") or "significantly worse" in r]
            row["met"] = not called
        else:
            row["met"] = row["verdict"] == expected
        rows.append(row)
        print(f"[{folder.name}] {name}: {row['verdict']} ({'met' if row['met'] else 'MISSED'}) - {row['deciding']}")
    return {
        "data": folder.name,
        "seed": seed,
        "seed_rows": len(sets.seed_rows),
        "corrections": len(sets.corrections),
        "frozen": len(sets.frozen),
        "frozen_oos": sum(ex.label == OUT_OF_SCOPE for ex in sets.frozen),
        "new_intents": sets.new_intents,
        "production_accuracy": prod_report.accuracy,
        "production_good_share": _good_share(prod_report),
        "candidates": rows,
        "seconds": round(time.perf_counter() - started, 1),
    }


def to_markdown(results: list[dict[str, Any]], meta: dict[str, Any]) -> str:
    lines = ["# Gate benchmark (issue 11)", "", f"{meta['date']} · {meta['machine']} · load {meta['load']}", ""]
    for result in results:
        lines += [
            f"## {result['data']} (seed {result['seed']}): production accuracy {result['production_accuracy']:.3f}, "
            f"good outcomes {_fmt(result['production_good_share'])}; frozen set {result['frozen']} questions "
            f"({result['frozen_oos']} out of scope); {result['seconds']:.0f} s",
            "",
            "| candidate | accuracy | good outcomes | verdict | expected | met | deciding check |",
            "|---|---:|---:|---|---|---|---|",
        ]
        for row in result["candidates"]:
            lines.append(
                f"| {row['candidate']} | {row['accuracy']:.3f} | {_fmt(row['good_share'])} | **{row['verdict']}** | "
                f"{row['expected']} | {'yes' if row['met'] else '**no**'} | {row['deciding']} |"
            )
        lines.append("")
    return "\n".join(lines)


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, action="append", required=True, help="a data set folder (repeatable)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--base-model", default=None, help="default: the bundled all-MiniLM-L6-v2")
    parser.add_argument("--out", type=Path, default=Path("bench/results/gate"))
    args = parser.parse_args()
    base = args.base_model or bundled_base_model()
    load_before = os.getloadavg()[0]
    results = [run_data_set(folder, args.seed, base) for folder in args.data]
    meta = run_meta(load_before)
    write_results(args.out, {"meta": meta, "results": results}, to_markdown(results, meta))


def run_meta(load_before: float) -> dict[str, str]:
    """When, where and under what load a benchmark ran (the load average at its start and end)."""
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{os.cpu_count()} CPUs, {platform.platform()}",
        "load": f"{load_before:.1f} -> {os.getloadavg()[0]:.1f}",
    }


def write_results(out: Path, record: dict[str, Any], markdown: str) -> None:
    """Write `out`.json (the record) and `out`.md (the table), and print the table."""
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(record, indent=2))
    out.with_suffix(".md").write_text(markdown)
    print(markdown)


if __name__ == "__main__":
    main()
