"""Calibration data without out-of-scope examples: simulated unknowns, weighted to the expected traffic.

A team that brings its own intents rarely has out-of-scope examples, and a threshold chosen on in-scope
validation alone answers everything. So the calibration set is built from:

- `in_scope`: the validation questions of known intents, scored by the model as it is;
- `held_out_intent` (leave-intents-out): the intents are split into folds of `held_out_share`; for each
  fold, its validation questions are scored with that fold's intents hidden from the head, the kNN bank and
  the class means, so they become questions of intents the model does not know;
- `generic`: the off-topic messages that ship with the product (`training/offtopic.txt`: small talk, other
  domains, nonsense, requests for other services), written for supportbot;
- `validation_oos` / `log_oos`: real out-of-scope questions, from the validation data or labelled by agents
  in the logs.

Rows are weighted by `training.calibration.weights` so out-of-scope questions weigh the policy's share.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from pathlib import Path

import numpy as np

from training.calibration import CalibrationSet, weights
from training.openset import OpenSetScorer, QuestionScores

HELD_OUT_SHARE = 0.25
"""Share of the intents hidden in each leave-intents-out fold (so 4 folds: every intent is hidden once)."""
OFFTOPIC_FILE = Path(__file__).with_name("offtopic.txt")


@cache
def generic_offtopic() -> tuple[str, ...]:
    """The off-topic messages that ship with supportbot (one per line, `#` comments skipped)."""
    lines = OFFTOPIC_FILE.read_text(encoding="utf-8").splitlines()
    return tuple(line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#"))


def folds(classes: Sequence[int], held_out_share: float = HELD_OUT_SHARE, seed: int = 0) -> list[list[int]]:
    """Split in-scope class indices into leave-intents-out folds (each class in exactly one fold).

    Fewer than 3 classes give no folds: hiding one would leave a single known intent.
    """
    classes = list(classes)
    if len(classes) < 3:
        return []
    count = max(2, min(len(classes), round(1.0 / held_out_share)))
    order = np.random.default_rng(seed).permutation(classes)
    return [sorted(int(c) for c in order[i::count]) for i in range(count)]


def calibration_set(
    scorer: OpenSetScorer,
    *,
    val_embeddings: np.ndarray,
    val_truth: np.ndarray,
    oos_share: float,
    generic_embeddings: np.ndarray | None = None,
    log_oos_embeddings: np.ndarray | None = None,
    held_out: QuestionScores | None = None,
    simulate: bool = True,
    held_out_share: float = HELD_OUT_SHARE,
    seed: int = 0,
) -> CalibrationSet:
    """The weighted calibration rows of one model.

    Args:
        scorer: The model's fitted scorer.
        val_embeddings: Embeddings of the validation questions (fine-tuned encoder).
        val_truth: Their class index; -1 for an out-of-scope validation question.
        oos_share: Expected out-of-scope share of the traffic (the weights).
        generic_embeddings: Embeddings of `generic_offtopic()` (None: no generic rows).
        log_oos_embeddings: Embeddings of questions agents labelled out of scope in the logs.
        held_out: Scores of questions of intents unknown to a twin model (`training.train.twin_held_out`);
            they replace the leave-intents-out folds.
        simulate: Add leave-intents-out rows (from `held_out`, else by hiding intents from this model).
        held_out_share: Share of intents hidden per fold.
        seed: Seeds the folds.
    """
    val_truth = np.asarray(val_truth, dtype=np.int64)
    parts: list[QuestionScores] = []
    truth: list[np.ndarray] = []
    source: list[np.ndarray] = []

    def add(scores: QuestionScores, labels: np.ndarray, name: str | np.ndarray) -> None:
        parts.append(scores)
        truth.append(labels)
        source.append(np.full(len(labels), name, dtype=object) if isinstance(name, str) else name)

    if len(val_embeddings):
        add(
            scorer.scores(val_embeddings),
            val_truth,
            np.where(val_truth >= 0, "in_scope", "validation_oos").astype(object),
        )
    if simulate and held_out is not None and len(held_out):
        add(held_out, np.full(len(held_out), -1), "held_out_intent")
    elif simulate and len(val_embeddings):
        classes = [i for i in range(len(scorer.labels)) if i != scorer.out_of_scope]
        for fold in folds(classes, held_out_share, seed):
            rows = np.isin(val_truth, fold)
            if not rows.any():
                continue
            known = np.ones(len(scorer.labels), bool)
            known[fold] = False
            add(scorer.scores(val_embeddings[rows], known), np.full(int(rows.sum()), -1), "held_out_intent")
    for embeddings, name in ((generic_embeddings, "generic"), (log_oos_embeddings, "log_oos")):
        if embeddings is not None and len(embeddings):
            add(scorer.scores(embeddings), np.full(len(embeddings), -1), name)
    if not parts:
        empty = scorer.scores(np.zeros((0, scorer.weight.shape[1]), np.float32))
        return CalibrationSet(empty, np.zeros(0, np.int64), np.zeros(0), np.zeros(0, dtype=object))
    sources = np.concatenate(source)
    return CalibrationSet(QuestionScores.concat(parts), np.concatenate(truth), weights(sources, oos_share), sources)
