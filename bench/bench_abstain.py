"""Open-intent benchmark: does the bot know when not to answer, at its OWN operating point?

Protocol (issue 8): on BANKING77 and HWU64, 25% of the intents are held out (3 seeded draws); the model is
trained and calibrated on the rest with no out-of-scope data; the full official test set is scored, the
held-out intents' questions being out of scope. Also: the cross-data-set case (the BANKING77 draw models,
HWU64 test questions as out of scope) and the demo (its own test set with out-of-scope questions).

For each run, at the operating point the bot chose itself (`training.train.calibrate`, default settings),
next to (a) today's rule (max softmax, the lowest threshold whose answered validation questions reach 90%
precision) and (b) the best threshold in hindsight on the test set (the ceiling): decision accuracy, in-scope
accuracy, out-of-scope recall/precision, macro-F1 over the known intents + "unknown", AUROC of every score,
expected cost, and with clarifying questions on, the share of in-scope questions answered right directly or
after one click and the share of questions clarified.

Usage (from the repository root; train the models first with bench/abstain_train.py):

    .venv/bin/python bench/bench_abstain.py --banking77 ../shared/data/banking77 --hwu64 ../shared/data/hwu64 \
        --work bench/results/abstain/models --out bench/results/abstain [--demo-model DIR]
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse
import json
import platform
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.metrics import f1_score

sys.path.insert(0, str(Path(__file__).resolve().parent))

from abstain_train import draw_data  # noqa: E402

from training.calibration import (  # noqa: E402
    ANSWER,
    CLARIFY,
    CalibrationSet,
    DecisionPolicy,
    OperatingPoint,
    best_threshold,
    outcome,
    truth_indices,
)
from training.data import Example, load_examples  # noqa: E402
from training.model import IntentModel  # noqa: E402
from training.openset import SCORES, QuestionScores  # noqa: E402
from training.train import calibrate  # noqa: E402

UNKNOWN = "<unknown>"


def legacy_threshold(model: IntentModel, val: list[Example], target: float = 0.90) -> float:
    """Today's rule (before issue 8): the lowest max-softmax threshold whose answered validation rows reach
    `target` precision (out-of-scope rows never right)."""
    probs, embeddings = model.probabilities([ex.text for ex in val], 128)
    scores = model.decision_scores(probs, embeddings).values["msp"]
    truth = np.array([ex.label for ex in val], dtype=object)
    correct = np.array([model.labels[i] for i in probs.argmax(axis=1)], dtype=object) == truth
    order = np.argsort(-scores, kind="stable")
    precision = np.cumsum(correct[order]) / np.arange(1, len(order) + 1)
    meets = np.flatnonzero(precision >= target)
    return float(scores[order][meets[-1]]) if len(meets) else float(scores.max())


def test_set(model: IntentModel, rows: list[Example], policy: DecisionPolicy) -> CalibrationSet:
    """The test rows as a calibration set: truth -1 for out-of-scope, weight 1 each (the real mix)."""
    probs, embeddings = model.probabilities([ex.text for ex in rows], 128)
    scores = model.decision_scores(probs, embeddings, every=True)
    truth = truth_indices([ex.label for ex in rows], model.labels, model.out_of_scope_label)
    source = np.where(truth >= 0, "in_scope", "test_oos").astype(object)
    return CalibrationSet(scores, truth, np.ones(len(rows)), source)


def report_point(point: OperatingPoint, data: CalibrationSet, policy: DecisionPolicy, labels: list[str]) -> dict:
    """Metrics of one operating point on the (unweighted) test set."""
    result = outcome(point, data, policy).to_dict()
    actions = point.actions(data.scores)
    decided = np.where(actions == ANSWER, data.scores.top, -1)
    truth_names = [labels[t] if t >= 0 else UNKNOWN for t in data.truth]
    decided_names = [labels[d] if d >= 0 else UNKNOWN for d in decided]
    known = sorted(set(truth_names))
    result["macro_f1"] = float(f1_score(truth_names, decided_names, labels=known, average="macro", zero_division=0))
    result["clarify_threshold"] = point.clarify_threshold if point.clarifies else None
    result["clarify_margin"] = point.clarify_margin
    result["score"] = point.score
    result["clarified_rows"] = int((actions == CLARIFY).sum())
    return result


def hindsight(data: CalibrationSet, policy: DecisionPolicy, score: str) -> OperatingPoint:
    return OperatingPoint(score, best_threshold(data, policy, score)[0])


def load_twin(path: Path) -> QuestionScores | None:
    """The cached twin scores written by abstain_train.py (None when missing)."""
    if not path.is_file():
        return None
    with np.load(path) as data:
        return QuestionScores(data["top"], data["second"], {name: data[name] for name in SCORES}, data["features"])


def run_one(
    model: IntentModel,
    train_rows: list[Example],
    val: list[Example],
    test: list[Example],
    policy: DecisionPolicy,
    twin: QuestionScores | None,
) -> dict[str, Any]:
    started = time.perf_counter()
    calibrate(model, train_rows, val, policy, held_out=twin)
    calibration_seconds = time.perf_counter() - started
    data = test_set(model, test, policy)
    labels = model.labels
    no_clarify = DecisionPolicy(**{**policy.to_dict(), "clarify": False})
    own = model.point
    own_direct = OperatingPoint(own.score, own.threshold)
    legacy = OperatingPoint("msp", legacy_threshold(model, val))
    result: dict[str, Any] = {
        "test_rows": len(test),
        "test_oos_share": float((data.truth < 0).mean()),
        "calibration": "twin" if twin is not None else "folds",
        "calibration_rows": model.info["decision"]["rows"],
        "calibration_seconds": round(calibration_seconds, 1),
        "score": own.score,
        "own": report_point(own_direct, data, no_clarify, labels),
        "own_with_clarify": report_point(own, data, policy, labels),
        "legacy_msp_rule": report_point(legacy, data, no_clarify, labels),
        "hindsight": report_point(hindsight(data, no_clarify, own.score), data, no_clarify, labels),
        "auroc": {name: _auroc(data, name) for name in SCORES},
        "per_score": {},
    }
    for name in SCORES:
        calibrated = report_point(
            OperatingPoint(name, model.info["decision"]["candidates"][name]["threshold"]), data, no_clarify, labels
        )
        best = report_point(hindsight(data, no_clarify, name), data, no_clarify, labels)
        result["per_score"][name] = {
            "own": calibrated["decision_accuracy"],
            "hindsight": best["decision_accuracy"],
            "own_cost": calibrated["cost"],
            "hindsight_cost": best["cost"],
        }
    return result


def _auroc(data: CalibrationSet, name: str) -> float | None:
    from training.calibration import ood_auroc

    return ood_auroc(data.scores.values[name], data.in_scope)


def demo_run(version: Path, work: Path) -> tuple[str, Path, list[Example], list[Example], list[Example]]:
    """The demo version (as `supportbot ask` trained it): its carved split, the demo's test set; the twin is
    trained once and cached in `work/demo-twin.npz`."""
    import numpy as np

    from bot.settings import DEMO_DIR, bundled_base_model
    from training.config import TrainingConfig
    from training.data import split
    from training.train import twin_held_out

    rows = load_examples(DEMO_DIR / "intents.yaml")
    config = TrainingConfig(base_model=bundled_base_model())
    train_rows, val = split(rows, config.val_ratio, config.seed)  # as `train` carves it
    cache = work / "demo-twin.npz"
    if not cache.is_file():
        scores = twin_held_out(config, train_rows, val, progress=False)
        assert scores is not None
        np.savez(cache, top=scores.top, second=scores.second, features=scores.features, **scores.values)
    return "demo", version / "model", train_rows, val, load_examples(DEMO_DIR / "test.csv")


def runs(args: argparse.Namespace) -> list[tuple[str, Path, list[Example], list[Example], list[Example]]]:
    """(name, model directory, train, validation, test) of every cached model, plus the cross-data-set runs."""
    found = [demo_run(args.demo_version, args.work)] if args.demo_version else []
    for folder in sorted(args.work.iterdir()):
        name, _, draw = folder.name.partition("-draw")
        if not (folder / "model").is_dir() or not (draw or folder.name.endswith("-full")):
            continue
        name = name.removesuffix("-full")
        data = args.banking77 if name == "banking77" else args.hwu64
        train_rows, val, held = draw_data(data, int(draw) if draw else -1)
        test = [
            Example(ex.text, ex.label if ex.label not in held else "out_of_scope")
            for ex in load_examples(data / "test.csv")
        ]
        found.append((folder.name, folder / "model", train_rows, val, test))
        if name == "banking77" and draw:
            cross = [ex for ex in test if ex.label != "out_of_scope"]
            cross += [Example(ex.text, "out_of_scope") for ex in load_examples(args.hwu64 / "test.csv")]
            found.append((f"{folder.name}+hwu64-oos", folder / "model", train_rows, val, cross))
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--banking77", type=Path, required=True)
    parser.add_argument("--hwu64", type=Path, required=True)
    parser.add_argument("--work", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--cost", type=float, nargs="+", default=[1.0, 3.0], help="WRONG_ANSWER_COST values")
    parser.add_argument("--oos-share", type=float, default=DecisionPolicy().oos_share)
    parser.add_argument("--score", default=DecisionPolicy().score, choices=SCORES)
    parser.add_argument("--only", default="", help="substring: run only matching runs")
    parser.add_argument("--demo-version", type=Path, help="a demo version directory (from `supportbot ask`)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--calibration",
        choices=("twin", "folds"),
        default="twin",
        help="held-out intents from the cached twin (default) or hidden from the model itself",
    )
    args = parser.parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    results: dict[str, Any] = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.node()} {platform.machine()} {os.cpu_count()} cpus",
        "load_average_start": os.getloadavg(),
        "runs": {},
    }
    for name, model_dir, train_rows, val, test in runs(args):
        if args.only and args.only not in name:
            continue
        for cost in args.cost:
            policy = DecisionPolicy(wrong_answer_cost=cost, oos_share=args.oos_share, score=args.score)
            model = IntentModel.load(model_dir, device="cpu")
            key = f"{name} cost={cost:g}"
            twin_file = args.work / "demo-twin.npz" if name == "demo" else model_dir.parent / "twin.npz"
            twin = load_twin(twin_file) if args.calibration == "twin" else None
            results["runs"][key] = run_one(model, train_rows, val, test, policy, twin)
            print(key, summary(results["runs"][key]), file=sys.stderr, flush=True)
    results["load_average_end"] = os.getloadavg()
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"abstain-{args.calibration}.json").write_text(json.dumps(results, indent=2), "utf-8")
    (args.out / f"abstain-{args.calibration}.md").write_text(markdown(results), "utf-8")
    return 0


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}"


def markdown(results: dict[str, Any]) -> str:
    """The tables for BENCHMARKS.md: decision accuracy at the own point vs hindsight vs today's rule, etc."""
    lines = [
        "| run (cost) | OOS share | own DA | hindsight DA | gap | today's rule DA | in-scope acc | OOS recall | "
        "OOS precision | macro-F1 | AUROC | cost own / best | resolved / clarified |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for key, run in results["runs"].items():
        own, best, legacy, clar = run["own"], run["hindsight"], run["legacy_msp_rule"], run["own_with_clarify"]
        gap = 100 * (best["decision_accuracy"] - own["decision_accuracy"])
        auroc = run["auroc"][run["score"]]
        lines.append(
            f"| {key} | {_pct(run['test_oos_share'])} | **{_pct(own['decision_accuracy'])}** | "
            f"{_pct(best['decision_accuracy'])} | {gap:.1f} | {_pct(legacy['decision_accuracy'])} | "
            f"{_pct(own['in_scope_accuracy'])} | {_pct(own['oos_recall'])} | {_pct(own['oos_precision'])} | "
            f"{_pct(own['macro_f1'])} | {'-' if auroc is None else f'{auroc:.3f}'} | "
            f"{own['cost']:.3f} / {best['cost']:.3f} | {_pct(clar['in_scope_resolved'])} / {_pct(clar['clarified'])} |"
        )
    lines += ["", "Per score, decision accuracy at its own calibrated threshold / best threshold in hindsight:", ""]
    names = list(next(iter(results["runs"].values()))["per_score"])
    lines += ["| run (cost) | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    for key, run in results["runs"].items():
        cells = [f"{_pct(v['own'])} / {_pct(v['hindsight'])}" for v in run["per_score"].values()]
        lines.append(f"| {key} | " + " | ".join(cells) + " |")
    lines += ["", "AUROC per score:", "", "| run | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    for key, run in results["runs"].items():
        if key.endswith("cost=1"):
            cells = ["-" if run["auroc"][n] is None else f"{run['auroc'][n]:.3f}" for n in names]
            lines.append(f"| {key.removesuffix(' cost=1')} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _f(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def summary(run: dict[str, Any]) -> str:
    own, best, legacy, clar = run["own"], run["hindsight"], run["legacy_msp_rule"], run["own_with_clarify"]
    return (
        f"oos {run['test_oos_share']:.2f} | own DA {own['decision_accuracy']:.3f} (thr {own['threshold']:.3f}) "
        f"hindsight {best['decision_accuracy']:.3f} legacy {legacy['decision_accuracy']:.3f} | "
        f"cost own {own['cost']:.3f} best {best['cost']:.3f} | auroc {_f(run['auroc'][run['score']])} | "
        f"clarify: resolved {_f(clar['in_scope_resolved'])} clarified {clar['clarified']:.3f} | per-score "
        + " ".join(f"{k}={v['own']:.3f}/{v['hindsight']:.3f}" for k, v in run["per_score"].items())
    )


if __name__ == "__main__":
    raise SystemExit(main())
