"""Nightly-retraining benchmark: wall time of `supportbot retrain` at BANKING77 size, and learning from corrections.

Usage (from the repository root):

    .venv/bin/python bench/bench_retrain.py --data ../shared/data/banking77                # full: ~10k + 2k
    .venv/bin/python bench/bench_retrain.py --data ../shared/data/banking77 \\
        --limit 1000 --corrections 300 --eval-limit 300 --epochs 1 --max-length 32        # smoke

What it does, in a fresh data dir (`--work`, SQLite store):

1. Holds out `--novel` BANKING77 intents entirely (the "kind of question" the first model never saw). The seed
   (`INTENTS_FILE`) is up to `--limit` training examples of the other intents; the frozen seed test split
   (`EVAL_FILE`) is up to `--eval-limit` test questions of the other intents.
2. Night 0: `retrain` with no production model: trains v0 and promotes it (timed).
3. Day 1: v0 answers `--corrections` logged questions (all training examples of the novel intents, then
   test-style questions of the others), logged through the Repository like Slack traffic; an agent corrects
   every wrong answer (a new intent, for the novel ones) and confirms every right one; 5 % of the corrections
   come with an agent-written answer (knowledge-base documents).
4. Night 1: `retrain` (timed, per phase): dataset, warm-started training, evaluation of both models on the
   frozen set, gate, report, promotion.
5. Learning from corrections: accuracy of v0 and of the new model on the novel intents' TEST questions (never
   logged, never trained on) and on the seed test split.

Writes `retrain.json` and `retrain.md` under `--out` (default bench/results).
"""

from __future__ import annotations

import os

# Idle OpenMP threads sleep instead of spinning (matters on a CPU shared with other jobs). Before torch loads.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse
import csv
import json
import platform
import random
import shutil
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bot.retrain import RetrainResult, retrain  # noqa: E402
from bot.settings import Settings, load_settings  # noqa: E402
from bot.versions import load_version  # noqa: E402
from storage.repository import Repository  # noqa: E402
from training.data import Example, load_examples  # noqa: E402
from training.evaluate import evaluate  # noqa: E402
from training.model import IntentModel  # noqa: E402

STARTED = time.perf_counter()


def log(message: str) -> None:
    print(f"[{time.perf_counter() - STARTED:7.1f}s] {message}", flush=True)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared/data/banking77", help="train.csv+test.csv")
    parser.add_argument("--limit", type=int, default=10_000, help="seed examples (at most all known-intent rows)")
    parser.add_argument("--corrections", type=int, default=2_000, help="logged questions rated by an agent")
    parser.add_argument("--eval-limit", type=int, default=1_000, help="seed test split size (known intents)")
    parser.add_argument("--novel", type=int, default=5, help="intents the first model never sees")
    parser.add_argument("--epochs", type=int, default=4, help="epochs of each nightly training (RETRAIN_EPOCHS)")
    parser.add_argument("--max-length", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads (TORCH_THREADS)")
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--min-intent-support", type=int, help="RETRAIN_MIN_INTENT_SUPPORT (default: the setting's)")
    parser.add_argument("--max-intent-drop", type=float, help="RETRAIN_MAX_INTENT_DROP (default: the setting's)")
    parser.add_argument("--work", type=Path, default=ROOT / "bench" / "results" / "retrain-work", help="data dir")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    return parser.parse_args(argv)


# --- the data -------------------------------------------------------------------------------------------------


def partition(args: argparse.Namespace) -> dict[str, list[Example]]:
    """seed / eval (known intents), logged questions (novel first), novel test questions."""
    train = load_examples(args.data / "train.csv")
    test = load_examples(args.data / "test.csv")
    rng = random.Random(args.seed)
    labels = sorted({example.label for example in train})
    novel = set(rng.sample(labels, args.novel))
    known_train = [e for e in train if e.label not in novel]
    rng.shuffle(known_train)
    known_test = [e for e in test if e.label not in novel]
    rng.shuffle(known_test)
    novel_train = [e for e in train if e.label in novel]
    rng.shuffle(novel_train)
    novel_logged = novel_train[: min(len(novel_train), max(args.corrections // 3, 2 * args.novel))]
    other_logged = known_test[: max(args.corrections - len(novel_logged), 0)]
    rest = known_test[len(other_logged) :]
    return {
        "seed": known_train[: args.limit],
        "eval": rest[: args.eval_limit],
        "logged": novel_logged + other_logged,
        "novel_test": [e for e in test if e.label in novel],
        "novel_labels": [Example(label, label) for label in sorted(novel)],
    }


def write_csv(path: Path, examples: Sequence[Example]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text", "label"])
        writer.writerows([example.text, example.label] for example in examples)
    return path


# --- the store ------------------------------------------------------------------------------------------------


def log_day(settings: Settings, model: IntentModel, logged: Sequence[Example]) -> dict[str, int]:
    """v0 answers the logged questions; an agent corrects the wrong answers and confirms the right ones."""
    predictions = model.predict([example.text for example in logged])
    counts = {"questions": 0, "corrections": 0, "confirmations": 0, "written_answers": 0}
    with Repository(settings.db_url, mask_pii=settings.pii_masking) as repo:
        for number, (example, prediction) in enumerate(zip(logged, predictions, strict=True)):
            conversation = repo.get_or_create_conversation(
                team_id="TBENCH", channel_id="CSUPPORT", thread_ts=f"1700000000.{number:06d}", started_by="UCUST"
            )
            assert conversation.id is not None
            message = repo.add_message(conversation.id, role="user", text=example.text, user_id="UCUST")
            assert message.id is not None
            answer = repo.record_answer(
                conversation_id=conversation.id,
                question_id=message.id,
                text=f"(answer for {prediction.label})",
                source="intent" if prediction.action == "answer" else "handoff",
                intent=prediction.label,
                confidence=prediction.confidence,
                model_version=model.version,
            )
            assert answer.id is not None
            counts["questions"] += 1
            if prediction.label == example.label:
                repo.add_rating(answer.id, rater_id="UAGENT", rater_role="agent", helpful=True)
                counts["confirmations"] += 1
                continue
            written = None
            if number % 20 == 0:
                written = f"Agent answer about {example.label.replace('_', ' ')}: see the help centre."
                counts["written_answers"] += 1
            repo.add_rating(
                answer.id,
                rater_id="UAGENT",
                rater_role="agent",
                helpful=False,
                corrected_intent=example.label,
                corrected_answer=written,
                source="modal",
            )
            counts["corrections"] += 1
    return counts


# --- the run --------------------------------------------------------------------------------------------------


def night(settings: Settings, args: argparse.Namespace, name: str) -> tuple[RetrainResult, float]:
    log(f"{name}: supportbot retrain")
    started = time.perf_counter()
    result = retrain(
        settings,
        training={"max_length": args.max_length, "batch_size": args.batch_size, "device": args.device},
        progress=False,
        echo=lambda line: log(f"  {line}"),
    )
    return result, time.perf_counter() - started


def accuracy(model: IntentModel, examples: Sequence[Example]) -> float:
    return evaluate(model, examples).accuracy


def machine() -> dict[str, Any]:
    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cpu": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "load_average": os.getloadavg(),
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    parts = partition(args)
    novel = [example.label for example in parts["novel_labels"]]
    log(
        f"seed {len(parts['seed'])}, seed test split {len(parts['eval'])}, logged {len(parts['logged'])}, "
        f"novel intents {novel} ({len(parts['novel_test'])} test questions)"
    )
    shutil.rmtree(args.work, ignore_errors=True)
    world = args.work / "world"
    gate: dict[str, Any] = {}
    if args.min_intent_support is not None:
        gate["retrain_min_intent_support"] = args.min_intent_support
    if args.max_intent_drop is not None:
        gate["retrain_max_intent_drop"] = args.max_intent_drop
    settings = load_settings(
        **gate,
        supportbot_data_dir=args.work / "data",
        intents_file=write_csv(world / "seed.csv", parts["seed"]),
        eval_file=write_csv(world / "eval.csv", parts["eval"]),
        torch_threads=args.threads,
        retrain_epochs=args.epochs,
        _env_file=None,
    )

    first, night0_s = night(settings, args, "night 0 (no production model)")
    assert first.version is not None
    v0 = load_version(settings.models_dir / first.version, device=None).model

    log(f"day 1: v0 answers {len(parts['logged'])} questions; an agent reviews each")
    started = time.perf_counter()
    day = log_day(settings, v0, parts["logged"])
    day_s = time.perf_counter() - started
    log(f"  logged {day} in {day_s:.1f}s")
    before = {"novel": accuracy(v0, parts["novel_test"]), "seed_test": accuracy(v0, parts["eval"])}
    del v0

    second, night1_s = night(settings, args, "night 1 (with production)")
    assert second.version is not None  # the candidate: promoted, or rejected and kept on disk
    v1 = load_version(settings.models_dir / second.version, device=None).model
    after = {"novel": accuracy(v1, parts["novel_test"]), "seed_test": accuracy(v1, parts["eval"])}

    result: dict[str, Any] = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": " ".join(["bench/bench_retrain.py", *(argv if argv is not None else sys.argv[1:])]),
        "machine": machine(),
        "config": {key: str(value) if isinstance(value, Path) else value for key, value in vars(args).items()},
        "sizes": {
            "seed": len(parts["seed"]),
            "seed_test_split": len(parts["eval"]),
            "logged": len(parts["logged"]),
            "novel_test": len(parts["novel_test"]),
        },
        "novel_intents": novel,
        "day1": day | {"seconds": round(day_s, 1)},
        "night0": {"status": first.status, "seconds": round(night0_s, 1), "timings": first.metrics.get("timings")},
        "night1": {
            "status": second.status,
            "message": second.message,
            "seconds": round(night1_s, 1),
            "timings": second.metrics.get("timings"),
            "candidate": second.metrics.get("candidate"),
            "production": second.metrics.get("production"),
            "provenance": second.metrics.get("provenance"),
            "report": str(second.report_path) if second.report_path else None,
        },
        "learning": {"before": before, "after": after, "candidate": second.version, "promoted": second.status},
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "retrain.json").write_text(json.dumps(result, indent=2, default=str) + "\n", encoding="utf-8")
    (args.out / "retrain.md").write_text(markdown(result), encoding="utf-8")
    log(f"wrote {args.out / 'retrain.json'} and retrain.md")
    print(markdown(result))
    return result


def markdown(result: dict[str, Any]) -> str:
    n0, n1, learning = result["night0"], result["night1"], result["learning"]
    sizes, day = result["sizes"], result["day1"]
    timings = n1.get("timings") or {}
    lines = [
        f"# Nightly retraining benchmark ({result['date']})",
        "",
        f"`{result['command']}`",
        "",
        f"Machine: {result['machine']['cpu_count']} CPUs, torch {result['machine']['torch']}, "
        f"CUDA {result['machine']['cuda'] or 'none'}, load average at the end {result['machine']['load_average']}.",
        "",
        f"Store: seed {sizes['seed']} examples, seed test split {sizes['seed_test_split']}, {day['questions']} logged "
        f"questions ({day['corrections']} agent corrections, {day['confirmations']} confirmations, "
        f"{day['written_answers']} agent-written answers).",
        "",
        "| run | status | wall time | dataset | training | evaluation |",
        "|---|---|---|---|---|---|",
    ]
    for name, run in (("night 0 (first model)", n0), ("night 1 (with corrections)", n1)):
        t = run.get("timings") or {}
        lines.append(
            f"| {name} | {run['status']} | {run['seconds'] / 60:.1f} min | {t.get('dataset_s', '-')} s | "
            f"{t.get('train_s', '-')} s | {t.get('eval_s', '-')} s |"
        )
    lines += [
        "",
        f"Night 1 decision: {n1['message']}",
        "",
        "## Learning from corrections",
        "",
        "Novel intents (absent from the seed, learnt only from agent corrections): "
        + ", ".join(result["novel_intents"])
        + ".",
        "",
        f"| accuracy | before (v0) | after (night-1 candidate, {learning['promoted']}) |",
        "|---|---|---|",
        f"| novel intents' test questions ({sizes['novel_test']}, never logged) | "
        f"{learning['before']['novel']:.3f} | {learning['after']['novel']:.3f} |",
        f"| seed test split ({sizes['seed_test_split']}) | {learning['before']['seed_test']:.3f} | "
        f"{learning['after']['seed_test']:.3f} |",
        "",
        f"Night 1 total {timings.get('total_s', '-')} s (target: one night, <= 60 min).",
    ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
