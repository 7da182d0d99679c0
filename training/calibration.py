"""Abstention: when the classifier is not sure enough, the bot hands off instead of answering.

The score of a question is its maximum in-scope softmax probability; a question whose top class is the
out-of-scope class is never answered. The threshold is chosen on validation data as the lowest one whose
answered set reaches the target precision (so coverage is as high as the target allows).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from sklearn.metrics import roc_auc_score

DEFAULT_THRESHOLD = 0.5
"""Used when there is no validation data to choose from."""

MIN_CALIBRATION_ROWS = 30
"""Below this many validation rows the estimate is too noisy: `DEFAULT_THRESHOLD` is used (and recorded)."""

CURVE_POINTS = 101


@dataclass(frozen=True, slots=True)
class CurvePoint:
    """Answering every question with score >= `threshold` covers `coverage` of them at `precision`."""

    threshold: float
    coverage: float
    precision: float


@dataclass(frozen=True)
class ThresholdChoice:
    """The chosen abstention threshold and how it was chosen (stored in the model's info)."""

    threshold: float
    method: str
    target_precision: float
    precision: float | None
    coverage: float | None
    n_validation: int
    note: str = ""
    curve: list[CurvePoint] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict."""
        data = asdict(self)
        data["curve"] = [asdict(point) for point in self.curve]
        return data


def answer_scores(probs: np.ndarray, labels: Sequence[str], out_of_scope_label: str) -> tuple[np.ndarray, np.ndarray]:
    """Top class per row and its answering score.

    Args:
        probs: Softmax probabilities, shape (n, len(labels)).
        labels: Class names in column order.
        out_of_scope_label: Name of the out-of-scope class (it may be absent from `labels`).

    Returns:
        (top class index per row, score per row): the score is the maximum in-scope probability, or -1 where
        the top class is out-of-scope (never answered).
    """
    top = probs.argmax(axis=1)
    scores = max_in_scope(probs, labels, out_of_scope_label)
    if out_of_scope_label in labels:
        scores = np.where(top == list(labels).index(out_of_scope_label), -1.0, scores)
    return top, scores


def max_in_scope(probs: np.ndarray, labels: Sequence[str], out_of_scope_label: str) -> np.ndarray:
    """Maximum probability over the in-scope classes of each row."""
    keep = [i for i, label in enumerate(labels) if label != out_of_scope_label]
    if not keep:
        return np.zeros(len(probs))
    return np.asarray(probs[:, keep].max(axis=1), dtype=np.float64)


def coverage_curve(scores: np.ndarray, correct: np.ndarray, points: int = CURVE_POINTS) -> list[CurvePoint]:
    """Coverage and precision of the answered set at `points` thresholds evenly spaced over [0, 1].

    Coverage never increases with the threshold. Precision is 1.0 where nothing is answered.
    """
    scores, correct = np.asarray(scores, dtype=np.float64), np.asarray(correct, dtype=bool)
    curve = []
    for threshold in np.linspace(0.0, 1.0, points):
        answered = scores >= threshold
        count = int(answered.sum())
        precision = float(correct[answered].mean()) if count else 1.0
        curve.append(CurvePoint(round(float(threshold), 4), count / max(len(scores), 1), precision))
    return curve


def choose_threshold(
    scores: np.ndarray,
    correct: np.ndarray,
    target_precision: float = 0.90,
    *,
    min_rows: int = MIN_CALIBRATION_ROWS,
    default: float = DEFAULT_THRESHOLD,
) -> ThresholdChoice:
    """The lowest threshold whose answered set has precision >= `target_precision`.

    Candidate thresholds are the observed validation scores, so when even answering everything meets the
    target, the threshold is the lowest score seen on validation (the model does not answer below what it
    was validated on).

    Args:
        scores: Answering score per validation row (see `answer_scores`; -1 = never answered).
        correct: Whether answering that row would be right (predicted intent == true intent; an
            out-of-scope row is never right to answer).
        target_precision: Wanted precision of the answered questions, in (0, 1].
        min_rows: With fewer validation rows, `default` is used (method "default-small-validation").
        default: Threshold used without validation data, and the floor for small validation sets.

    Returns:
        The choice, with achieved precision/coverage on validation and the coverage/precision curve.

    Example:
        >>> choose_threshold(np.array([0.9, 0.8, 0.4]), np.array([True, True, False]), 0.9).threshold
        0.8
    """
    if not 0.0 < target_precision <= 1.0:
        raise ValueError(f"target_precision must be in (0, 1], got {target_precision}")
    scores, correct = np.asarray(scores, dtype=np.float64), np.asarray(correct, dtype=bool)
    if scores.shape != correct.shape:
        raise ValueError("scores and correct must have the same length")
    n = len(scores)
    if n == 0:
        return ThresholdChoice(default, "default", target_precision, None, None, 0, "no validation data")
    curve = coverage_curve(scores, correct)
    order = np.argsort(-scores, kind="stable")
    sorted_scores, sorted_correct = scores[order], correct[order]
    cumulative_precision = np.cumsum(sorted_correct) / np.arange(1, n + 1)
    # A threshold equal to sorted_scores[i] answers every row with an equal or higher score: use the last
    # index of each run of ties.
    last_of_tie = np.r_[sorted_scores[1:] != sorted_scores[:-1], True]
    answerable = (sorted_scores >= 0.0) & last_of_tie
    meets = answerable & (cumulative_precision >= target_precision)
    if meets.any():
        index = int(np.flatnonzero(meets)[-1])
        threshold, method, note = float(sorted_scores[index]), "validation", ""
    elif answerable.any():
        candidates = np.flatnonzero(answerable)
        index = int(candidates[np.argmax(cumulative_precision[candidates])])
        threshold, method = float(sorted_scores[index]), "best-precision"
        note = f"target precision {target_precision} not reachable on validation; used the most precise threshold"
    else:
        return ThresholdChoice(default, "default", target_precision, None, None, n, "no answerable validation row")
    if n < min_rows:
        note = (note + "; " if note else "") + (
            f"only {n} validation rows (< {min_rows}): used the default {default} instead of {threshold:.4f}"
        )
        threshold, method = default, "default-small-validation"
    answered = scores >= threshold
    coverage = float(answered.mean())
    precision = float(correct[answered].mean()) if answered.any() else None
    return ThresholdChoice(threshold, method, target_precision, precision, coverage, n, note, curve)


def ood_auroc(in_scope_scores: np.ndarray, out_of_scope_scores: np.ndarray) -> float | None:
    """AUROC of telling in-scope (positive) from out-of-scope questions by score; None if a side is empty."""
    if len(in_scope_scores) == 0 or len(out_of_scope_scores) == 0:
        return None
    y_true = np.r_[np.ones(len(in_scope_scores)), np.zeros(len(out_of_scope_scores))]
    return float(roc_auc_score(y_true, np.r_[in_scope_scores, out_of_scope_scores]))


def recall_at_precision(
    in_scope_scores: np.ndarray, out_of_scope_scores: np.ndarray, in_scope_precision: float
) -> tuple[float, float | None]:
    """Out-of-scope recall at the lowest threshold keeping the answered set's in-scope share >= the target.

    "Precision" here is the share of answered questions that are in scope (not whether the intent is right).

    Returns:
        (threshold, out-of-scope recall = share of out-of-scope questions below the threshold); recall is
        None when no threshold reaches the target.
    """
    scores = np.r_[in_scope_scores, out_of_scope_scores]
    is_in = np.r_[np.ones(len(in_scope_scores), bool), np.zeros(len(out_of_scope_scores), bool)]
    choice = choose_threshold(scores, is_in, in_scope_precision, min_rows=0)
    if choice.method != "validation":
        return choice.threshold, None
    return choice.threshold, float((np.asarray(out_of_scope_scores) < choice.threshold).mean())
