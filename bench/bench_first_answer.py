"""A new user's first answer: fresh install -> first `supportbot ask` (it builds the first version), timed.

Usage (from the repository root):

    .venv/bin/python bench/bench_first_answer.py --out bench/results/first_answer \
        [--follow] [--baseline] [--data ../shared/data/banking77]

Each step runs the real CLI in a subprocess on a fresh data dir (SQLite, the demo, the bundled base model):

* `first`: the first `supportbot ask` with the default first recipe (a head on the frozen base encoder), then a
  second ask on the same data dir (the version exists: load only);
* `--follow`: then `supportbot retrain` on that data dir: the full fine-tune follows through the same pipeline
  and is gated against the first version on the demo's frozen evaluation set;
* `--baseline`: the first ask on another fresh data dir with FIRST_MODEL_FINE_TUNE=true (the behaviour before:
  fine-tune the demo first);
* `--data`: the first recipe trained on a labelled data set's train.csv (validation carved from it) and scored
  on its test.csv (top-1 accuracy, as `bench_intent.py` scores the fine-tune).

The load average is recorded before and after every step (the machine is shared). Writes first_answer.json and
first_answer.md under `--out`.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse
import json
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

QUESTION = "how do I reset my password?"
ROOT = Path(__file__).resolve().parents[1]


def _cli() -> list[str]:
    script = Path(sys.executable).with_name("supportbot")
    return [str(script)] if script.exists() else [sys.executable, "-c", "from bot.cli import main; main()"]


def _run(args: list[str], data_dir: Path, **env: str) -> tuple[float, subprocess.CompletedProcess[str], dict[str, Any]]:
    environment = {**os.environ, "SUPPORTBOT_DATA_DIR": str(data_dir), **env}
    before = os.getloadavg()[0]
    started = time.perf_counter()
    done = subprocess.run([*_cli(), *args], env=environment, capture_output=True, text=True, check=False, cwd=ROOT)
    seconds = time.perf_counter() - started
    load = {"load_before": round(before, 2), "load_after": round(os.getloadavg()[0], 2)}
    if done.returncode != 0:
        raise SystemExit(f"{args} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    return seconds, done, load


def _registry(data_dir: Path) -> list[dict[str, Any]]:
    from storage.repository import Repository

    with Repository(f"sqlite:///{data_dir / 'supportbot.db'}") as repo:
        return [
            {
                "trigger": run.trigger,
                "status": run.status,
                "version": run.candidate_version,
                "candidate_accuracy": (run.metrics.get("candidate") or {}).get("accuracy"),
                "production_accuracy": (run.metrics.get("production") or {}).get("accuracy"),
                "timings": run.metrics.get("timings"),
                "reasons": run.metrics.get("reasons"),
            }
            for run in reversed(repo.training_runs())
        ]


def first_ask(root: Path, name: str, **env: str) -> tuple[dict[str, Any], Path]:
    data_dir = root / name
    seconds, done, load = _run(["ask", "--json", "--no-log", QUESTION], data_dir, **env)
    answer = json.loads(done.stdout)
    again, _, load_again = _run(["ask", "--json", "--no-log", QUESTION], data_dir, **env)
    runs = _registry(data_dir)
    return {
        "first_ask_s": round(seconds, 1),
        "second_ask_s": round(again, 1),
        "intent": answer["intent"],
        "model_version": answer["model_version"],
        "frozen_eval_accuracy": runs[0]["candidate_accuracy"],
        "run_timings": runs[0]["timings"],
        **load,
        "second_load": load_again,
    }, data_dir


def follow(data_dir: Path) -> dict[str, Any]:
    seconds, done, load = _run(["retrain", "--quiet"], data_dir)
    run = _registry(data_dir)[-1]
    return {"retrain_s": round(seconds, 1), **run, **load, "message": done.stdout.strip()}


def data_set(folder: Path) -> dict[str, Any]:
    import dataclasses

    from bot.settings import bundled_base_model
    from training.config import FIRST_MODEL, TrainingConfig
    from training.data import load_examples, split
    from training.train import train

    rows = load_examples(folder / "train.csv")
    test = load_examples(folder / "test.csv")
    train_rows, val_rows = split(rows, 0.1, 0)
    config = dataclasses.replace(
        TrainingConfig(base_model=bundled_base_model(), calibration_twin=False, num_threads=2), **FIRST_MODEL
    )
    before = os.getloadavg()[0]
    started = time.perf_counter()
    model = train(config, train_rows, val_rows, progress=False)
    seconds = time.perf_counter() - started
    predictions = model.predict([ex.text for ex in test])
    correct = sum(p.label == ex.label for p, ex in zip(predictions, test, strict=True))
    return {
        "data": folder.name,
        "train_rows": len(train_rows),
        "test_rows": len(test),
        "train_s": round(seconds, 1),
        "test_accuracy": correct / len(test),
        "best_epoch": model.info["best_epoch"],
        "load_before": round(before, 2),
        "load_after": round(os.getloadavg()[0], 2),
    }


def markdown(results: dict[str, Any]) -> str:
    lines = [
        f"# First answer on a fresh install ({results['date']}, {results['machine']})",
        "",
        "| step | seconds | detail | load (1 min) before / after |",
        "|---|---:|---|---|",
    ]
    first = results["first"]
    lines.append(
        f"| first `ask` (head on frozen encoder) | {first['first_ask_s']} | {first['intent']}, frozen-set accuracy "
        f"{first['frozen_eval_accuracy']:.1%} | {first['load_before']} / {first['load_after']} |"
    )
    lines.append(f"| second `ask` (load only) | {first['second_ask_s']} | | |")
    if "follow" in results:
        f = results["follow"]
        lines.append(
            f"| `retrain` (fine-tune follows) | {f['retrain_s']} | {f['status']}: {f['candidate_accuracy']:.1%} vs "
            f"{f['production_accuracy']:.1%} | {f['load_before']} / {f['load_after']} |"
        )
    if "baseline" in results:
        b = results["baseline"]
        lines.append(
            f"| baseline: first `ask` fine-tuning first | {b['first_ask_s']} | frozen-set accuracy "
            f"{b['frozen_eval_accuracy']:.1%} | {b['load_before']} / {b['load_after']} |"
        )
    if "data" in results:
        d = results["data"]
        lines.append(
            f"| first recipe on {d['data']} ({d['train_rows']} rows) | {d['train_s']} | test top-1 "
            f"{d['test_accuracy']:.2%} ({d['test_rows']}) | {d['load_before']} / {d['load_after']} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--follow", action="store_true", help="then run `supportbot retrain` (fine-tune, gated)")
    parser.add_argument("--baseline", action="store_true", help="also time the first ask with a full fine-tune")
    parser.add_argument("--data", type=Path, help="a data set folder (train.csv, test.csv) for the recipe's accuracy")
    args = parser.parse_args(argv)
    results: dict[str, Any] = {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": f"{platform.node()} {os.cpu_count()} CPUs",
    }
    root = Path(tempfile.mkdtemp(prefix="first-answer-"))
    try:
        results["first"], data_dir = first_ask(root, "first")
        print(json.dumps(results["first"]), file=sys.stderr)
        if args.follow:
            results["follow"] = follow(data_dir)
            print(json.dumps(results["follow"]), file=sys.stderr)
        if args.baseline:
            results["baseline"], _ = first_ask(root, "baseline", FIRST_MODEL_FINE_TUNE="true")
            print(json.dumps(results["baseline"]), file=sys.stderr)
        if args.data:
            results["data"] = data_set(args.data)
            print(json.dumps(results["data"]), file=sys.stderr)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "first_answer.json").write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    (args.out / "first_answer.md").write_text(markdown(results), encoding="utf-8")
    print(markdown(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
