"""Intent-classifier benchmark: fine-tuned MiniLM vs TF-IDF + LinearSVC vs frozen embeddings + logistic regression.

Usage (from the repository root):

    .venv/bin/python bench/bench_intent.py --data ../shared/data/banking77 --ood ../shared/data/hwu64 \
        --out bench/results/banking77

`--data` is a folder with `train.csv` and `test.csv` (and optionally `valid.csv`; otherwise a stratified
validation split is carved from train). Hyper-parameters are chosen on validation only; test is scored once.
`--ood` is a second data set whose test questions are out of domain: the model (trained without any
out-of-scope data) must tell them from in-domain test questions. Writes `intent.json` and `intent.md` under
`--out`.
"""

from __future__ import annotations

import os

# Idle OpenMP threads sleep instead of spinning: on a CPU shared with other jobs, spinning threads make
# 2-thread training up to 10x slower (measured). Must be set before torch is imported.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse
import json
import platform
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, f1_score
from sklearn.svm import LinearSVC

from bot.settings import bundled_base_model
from training.calibration import ood_auroc
from training.data import Example, load_examples, split
from training.encoder import Encoder
from training.evaluate import evaluate
from training.model import IntentModel
from training.train import TrainingConfig, train


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    defaults = TrainingConfig(base_model="-")
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, required=True, help="folder with train.csv, test.csv [, valid.csv]")
    parser.add_argument("--ood", "--hwu", type=Path, help="folder whose test.csv (and valid.csv) are out of domain")
    parser.add_argument("--out", type=Path, required=True, help="results folder (JSON + Markdown + plots)")
    parser.add_argument("--base-model", default=None, help="encoder path (default: bundled all-MiniLM-L6-v2)")
    parser.add_argument("--epochs", type=int, default=defaults.epochs)
    parser.add_argument("--batch-size", type=int, default=defaults.batch_size)
    parser.add_argument("--lr", type=float, default=defaults.lr)
    parser.add_argument("--head-lr", type=float, default=defaults.head_lr)
    parser.add_argument("--max-length", type=int, default=defaults.max_length)
    parser.add_argument("--warmup-ratio", type=float, default=defaults.warmup_ratio)
    parser.add_argument("--label-smoothing", type=float, default=defaults.label_smoothing)
    parser.add_argument("--scale", type=float, default=defaults.scale)
    parser.add_argument("--fixed-scale", action="store_true", help="do not learn the cosine head's scale")
    parser.add_argument("--patience", type=int, default=defaults.patience)
    parser.add_argument("--select-by", choices=("loss", "accuracy"), default=defaults.select_by)
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--val-ratio", type=float, default=0.1)
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    parser.add_argument("--skip-baselines", action="store_true")
    parser.add_argument("--skip-finetune", action="store_true")
    parser.add_argument("--save-model", type=Path, help="also save the fine-tuned model here")
    return parser.parse_args(argv)


def load_split(folder: Path, val_ratio: float, seed: int) -> tuple[list[Example], list[Example], list[Example], bool]:
    """(train, validation, test, validation_is_official)."""
    train_all = load_examples(folder / "train.csv")
    test = load_examples(folder / "test.csv")
    if (folder / "valid.csv").is_file():
        return train_all, load_examples(folder / "valid.csv"), test, True
    train_part, val = split(train_all, val_ratio, seed)
    return train_part, val, test, False


def tfidf_svc(train: list[Example], val: list[Example], test: list[Example]) -> dict[str, Any]:
    """TF-IDF (word 1-2 grams + char 2-5 grams) + LinearSVC; C chosen on validation."""
    from scipy.sparse import hstack

    started = time.perf_counter()
    word = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=1, lowercase=True)
    char = TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True, min_df=2, lowercase=True)
    texts = [ex.text for ex in train]

    def features(rows: list[Example], fit: bool = False) -> Any:
        batch = [ex.text for ex in rows]
        if fit:
            return hstack([word.fit_transform(batch), char.fit_transform(batch)]).tocsr()
        return hstack([word.transform(batch), char.transform(batch)]).tocsr()

    x_train = features(train, fit=True)
    y_train = [ex.label for ex in train]
    x_val, x_test = features(val), features(test)
    scores = {}
    for c in (0.3, 1.0, 3.0):
        model = LinearSVC(C=c).fit(x_train, y_train)
        scores[c] = accuracy_score([ex.label for ex in val], model.predict(x_val))
    best_c = max(scores, key=lambda c: (scores[c], -c))
    model = LinearSVC(C=best_c).fit(x_train, y_train)
    predicted = model.predict(x_test)
    del texts
    return {
        "name": "TF-IDF + LinearSVC",
        "C": best_c,
        "val_accuracy": scores[best_c],
        "test_accuracy": float(accuracy_score([ex.label for ex in test], predicted)),
        "test_macro_f1": float(f1_score([ex.label for ex in test], predicted, average="macro")),
        "seconds": round(time.perf_counter() - started, 1),
    }


def frozen_logreg(
    encoder: Encoder, train: list[Example], val: list[Example], test: list[Example], ood_test: list[Example]
) -> dict[str, Any]:
    """Frozen mean-pooled base embeddings + logistic regression; C chosen on validation."""
    started = time.perf_counter()
    x_train, x_val, x_test = (encoder.encode([ex.text for ex in rows], 128) for rows in (train, val, test))
    y_train = [ex.label for ex in train]
    scores, models = {}, {}
    for c in (3.0, 10.0, 30.0, 100.0):
        models[c] = LogisticRegression(C=c, max_iter=2000).fit(x_train, y_train)
        scores[c] = accuracy_score([ex.label for ex in val], models[c].predict(x_val))
    best_c = max(scores, key=lambda c: (scores[c], -c))
    predicted = models[best_c].predict(x_test)
    result: dict[str, Any] = {
        "name": "frozen mean-pooled embeddings + logistic regression",
        "C": best_c,
        "val_accuracy": scores[best_c],
        "test_accuracy": float(accuracy_score([ex.label for ex in test], predicted)),
        "test_macro_f1": float(f1_score([ex.label for ex in test], predicted, average="macro")),
    }
    if ood_test:
        in_scores = models[best_c].predict_proba(x_test).max(axis=1)
        out_scores = models[best_c].predict_proba(encoder.encode([ex.text for ex in ood_test], 128)).max(axis=1)
        is_in = np.r_[np.ones(len(in_scores), bool), np.zeros(len(out_scores), bool)]
        result["ood_auroc"] = ood_auroc(np.r_[in_scores, out_scores], is_in)
    result["seconds"] = round(time.perf_counter() - started, 1)
    return result


def out_of_domain(model: IntentModel, test: list[Example], ood_test: list[Example]) -> dict[str, Any]:
    """Out-of-domain questions at the model's own operating point (trained without out-of-scope data)."""
    rows = [*test, *(Example(ex.text, model.out_of_scope_label) for ex in ood_test)]
    report = evaluate(model, rows)
    return {
        "in_domain_test": len(test),
        "out_of_domain_test": len(ood_test),
        "score": report.score,
        "auroc": report.auroc,
        "auroc_by_score": report.auroc_by_score,
        "decision_accuracy": report.accuracy,
        "out_of_scope_recall": report.out_of_scope_recall,
        "hindsight_decision_accuracy": report.outcomes["hindsight"].decision_accuracy,
    }


def git_commit() -> str:
    try:
        return subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    base_model = args.base_model or bundled_base_model()
    args.out.mkdir(parents=True, exist_ok=True)
    train_rows, val_rows, test_rows, official_val = load_split(args.data, args.val_ratio, args.seed)
    ood_test: list[Example] = []
    if args.ood:
        ood_test = load_examples(args.ood / "test.csv")
    results: dict[str, Any] = {
        "benchmark": "intent",
        "dataset": args.data.name,
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "git_commit": git_commit(),
        "machine": {
            "cpu_count": os.cpu_count(),
            "torch_threads": torch.get_num_threads(),
            "platform": platform.platform(),
            "torch": torch.__version__,
            "cuda": torch.cuda.is_available(),
        },
        "sizes": {"train": len(train_rows), "validation": len(val_rows), "test": len(test_rows)},
        "validation_is_official": official_val,
    }
    print(f"{args.data.name}: train {len(train_rows)}, validation {len(val_rows)}, test {len(test_rows)}", flush=True)

    if not args.skip_baselines:
        results["tfidf_svc"] = tfidf_svc(train_rows, val_rows, test_rows)
        print("TF-IDF + LinearSVC:", results["tfidf_svc"], flush=True)
        encoder = Encoder.load(base_model, device="cpu")
        results["frozen_logreg"] = frozen_logreg(encoder, train_rows, val_rows, test_rows, ood_test)
        print("frozen + logreg:", results["frozen_logreg"], flush=True)
        del encoder

    if not args.skip_finetune:
        config = TrainingConfig(
            base_model=base_model,
            epochs=args.epochs,
            batch_size=args.batch_size,
            lr=args.lr,
            head_lr=args.head_lr,
            max_length=args.max_length,
            warmup_ratio=args.warmup_ratio,
            label_smoothing=args.label_smoothing,
            scale=args.scale,
            learn_scale=not args.fixed_scale,
            patience=args.patience,
            select_by=args.select_by,
            seed=args.seed,
            num_threads=args.threads,
            version=f"bench-{args.data.name}",
        )
        started = time.perf_counter()
        model = train(config, train_rows, val_rows, args.save_model, progress=True)
        train_seconds = time.perf_counter() - started
        report = evaluate(model, test_rows, args.out / "plots")
        results["finetuned"] = {
            "config": model.info["training"],
            "history": model.info["history"],
            "best_epoch": model.info["best_epoch"],
            "validation": model.info["validation"],
            "threshold": model.threshold,
            "decision": {k: v for k, v in model.info["decision"].items() if k not in ("curve", "candidates")},
            "train_seconds": round(train_seconds, 1),
            "test_accuracy": report.accuracy,
            "test_macro_f1": report.macro_f1,
            "test_coverage_at_threshold": report.coverage,
            "test_answered_precision_at_threshold": report.answered_precision,
            "worst_intents": {label: m.f1 for label, m in report.worst_intents(5)},
        }
        print(
            "fine-tuned:", {k: v for k, v in results["finetuned"].items() if k not in ("config", "history")}, flush=True
        )
        latency = measure_latency(model, [ex.text for ex in test_rows[:200]])
        results["finetuned"]["latency_ms_predict_one"] = latency
        if ood_test:
            results["out_of_domain"] = out_of_domain(model, test_rows, ood_test)
            results["out_of_domain"]["dataset"] = args.ood.name
            print("out of domain:", results["out_of_domain"], flush=True)

    (args.out / "intent.json").write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    (args.out / "intent.md").write_text(markdown(results), encoding="utf-8")
    print(f"wrote {args.out / 'intent.json'} and {args.out / 'intent.md'}")
    return 0


def measure_latency(model: IntentModel, texts: list[str]) -> dict[str, float]:
    for text in texts[:10]:
        model.predict_one(text)
    timings = []
    for text in texts:
        started = time.perf_counter()
        model.predict_one(text)
        timings.append((time.perf_counter() - started) * 1000)
    return {"p50": round(float(np.percentile(timings, 50)), 2), "p95": round(float(np.percentile(timings, 95)), 2)}


def pct(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.2f}%"


def markdown(results: dict[str, Any]) -> str:
    lines = [
        f"# Intent benchmark: {results['dataset']}",
        "",
        f"- date: {results['date']}, commit {results['git_commit']}",
        f"- command: `{results['command']}`",
        f"- machine: {results['machine']['cpu_count']} CPUs, torch {results['machine']['torch']} "
        f"({results['machine']['torch_threads']} threads), CUDA: {results['machine']['cuda']}",
        f"- sizes: train {results['sizes']['train']}, validation {results['sizes']['validation']} "
        f"({'official' if results['validation_is_official'] else 'stratified split of train'}), "
        f"test {results['sizes']['test']}",
        "",
        "| model | validation accuracy | test accuracy | test macro-F1 | time |",
        "|---|---|---|---|---|",
    ]
    for key in ("tfidf_svc", "frozen_logreg"):
        if key in results:
            r = results[key]
            lines.append(
                f"| {r['name']} (C={r['C']}) | {pct(r['val_accuracy'])} | {pct(r['test_accuracy'])} | "
                f"{pct(r['test_macro_f1'])} | {r['seconds']} s |"
            )
    if "finetuned" in results:
        r = results["finetuned"]
        lines.append(
            f"| fine-tuned MiniLM, mean pooling + cosine head (best epoch {r['best_epoch']}) | "
            f"{pct(r['validation'].get('accuracy'))} | **{pct(r['test_accuracy'])}** | {pct(r['test_macro_f1'])} | "
            f"{r['train_seconds'] / 60:.1f} min training |"
        )
        cfg = r["config"]
        lines += [
            "",
            f"Fine-tuning: epochs {cfg['epochs']}, batch {cfg['batch_size']}, lr {cfg['lr']}, "
            f"head lr {cfg['head_lr']}, "
            f"max_length {cfg['max_length']}, warmup {cfg['warmup_ratio']}, label smoothing {cfg['label_smoothing']}, "
            f"scale {cfg['scale']} ({'learned' if cfg['learn_scale'] else 'fixed'}), seed {cfg['seed']}, "
            f"best epoch by validation {cfg.get('select_by', 'accuracy')}, patience {cfg['patience']}.",
            "",
            f"Operating point: `{r['decision']['score']}` >= {r['threshold']:.4f}: test coverage "
            f"{pct(r['test_coverage_at_threshold'])}, answered precision "
            f"{pct(r['test_answered_precision_at_threshold'])}.",
            f"Latency of `predict_one` (fp32): p50 {r['latency_ms_predict_one']['p50']} ms, "
            f"p95 {r['latency_ms_predict_one']['p95']} ms.",
            "",
            "| epoch | train loss | validation accuracy | seconds |",
            "|---|---|---|---|",
        ]
        for h in r["history"]:
            loss = f"{h['train_loss']:.4f}" if "train_loss" in h else "-"
            lines.append(f"| {h['epoch']} | {loss} | {pct(h.get('val_accuracy'))} | {h.get('seconds', 0):.0f} |")
    if "out_of_domain" in results:
        o = results["out_of_domain"]
        lines += [
            "",
            f"## Out of domain: {results['dataset']} test vs {o['dataset']} test (no out-of-scope training data)",
            "",
            f"- AUROC (`{o['score']}`): {o['auroc']:.4f}; by score: "
            + ", ".join(f"{k} {v:.3f}" for k, v in o["auroc_by_score"].items() if v is not None),
            f"- at the model's own operating point: decision accuracy {pct(o['decision_accuracy'])}, out-of-scope "
            f"recall {pct(o['out_of_scope_recall'])} (best threshold in hindsight: "
            f"{pct(o['hindsight_decision_accuracy'])})",
        ]
        if "frozen_logreg" in results and results["frozen_logreg"].get("ood_auroc") is not None:
            lines.append(f"- frozen + logistic regression AUROC: {results['frozen_logreg']['ood_auroc']:.4f}")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
