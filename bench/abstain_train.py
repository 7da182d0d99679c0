"""Train (and cache) the open-intent benchmark's models: 25% of the intents held out, no out-of-scope data.

Usage (from the repository root):

    .venv/bin/python bench/abstain_train.py --banking77 ../shared/data/banking77 --hwu64 ../shared/data/hwu64 \
        --work bench/results/abstain/models --epochs 3

One model per (data set, draw); a model already in `--work` is kept. `bench/bench_abstain.py` evaluates them.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse
import json
import random
import sys
import time
from pathlib import Path

from bot.settings import bundled_base_model
from training.data import Example, load_examples, split

KNOWN_SHARE = 0.75


def held_out_intents(labels: list[str], draw: int, known_share: float = KNOWN_SHARE) -> list[str]:
    """The intents draw `draw` holds out (seeded, reproducible); draw -1 holds out none (the full data set)."""
    if draw < 0:
        return []
    ordered = sorted(labels)
    count = round(len(ordered) * (1 - known_share))
    return sorted(random.Random(1000 + draw).sample(ordered, count))


def draw_data(folder: Path, draw: int, val_ratio: float = 0.1) -> tuple[list[Example], list[Example], list[str]]:
    """(train rows, validation rows, held-out intents): known intents only, validation official or carved."""
    rows = load_examples(folder / "train.csv")
    held = set(held_out_intents(sorted({ex.label for ex in rows}), draw))
    known = [ex for ex in rows if ex.label not in held]
    if (folder / "valid.csv").is_file():
        val = [ex for ex in load_examples(folder / "valid.csv") if ex.label not in held]
        return known, val, sorted(held)
    train_rows, val = split(known, val_ratio, seed=draw)
    return train_rows, val, sorted(held)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--banking77", type=Path, required=True)
    parser.add_argument("--hwu64", type=Path, required=True)
    parser.add_argument("--work", type=Path, required=True)
    parser.add_argument("--draws", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--full", action="store_true", help="also train on all BANKING77 intents (clarification)")
    parser.add_argument("--only", choices=("banking77", "hwu64"), help="train for one data set only")
    args = parser.parse_args(argv)
    import numpy as np

    from training.train import TrainingConfig, train, twin_held_out

    jobs = [
        (name, folder, draw)
        for draw in range(args.draws)
        for name, folder in (("banking77", args.banking77), ("hwu64", args.hwu64))
        if args.only in (None, name)
    ]
    if args.full:
        jobs.append(("banking77", args.banking77, -1))
    for name, folder, draw in jobs:
        target = args.work / (f"{name}-draw{draw}" if draw >= 0 else f"{name}-full")
        train_rows, val_rows, held = draw_data(folder, draw)
        config = TrainingConfig(
            base_model=bundled_base_model(),
            epochs=args.epochs,
            num_threads=args.threads,
            seed=max(draw, 0),
            version=target.name,
            calibration_twin=False,
        )
        target.mkdir(parents=True, exist_ok=True)
        if not (target / "twin.npz").is_file():
            started = time.perf_counter()
            scores = twin_held_out(config, train_rows, val_rows, progress=False)
            assert scores is not None
            np.savez(
                target / "twin.npz", top=scores.top, second=scores.second, features=scores.features, **scores.values
            )
            print(f"{target}: twin in {time.perf_counter() - started:.0f} s", file=sys.stderr)
        if (target / "model" / "supportbot.json").is_file():
            print(f"{target}: cached", file=sys.stderr)
            continue
        started = time.perf_counter()
        print(f"{target}: training on {len(train_rows)} rows, {len(held)} intents held out", file=sys.stderr)
        train(config, train_rows, val_rows, target / "model", progress=False)
        (target / "draw.json").write_text(
            json.dumps(
                {
                    "held_out": held,
                    "seconds": round(time.perf_counter() - started, 1),
                    "train_rows": len(train_rows),
                    "val_rows": len(val_rows),
                    "epochs": args.epochs,
                }
            ),
            "utf-8",
        )
        print(f"{target}: done in {time.perf_counter() - started:.0f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
