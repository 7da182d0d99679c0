"""Choosing the abstention threshold, the coverage curve and AUROC on synthetic scores."""

from __future__ import annotations

import numpy as np
import pytest

from training.calibration import (
    answer_scores,
    choose_threshold,
    coverage_curve,
    max_in_scope,
    ood_auroc,
    recall_at_precision,
)


def synthetic(n: int = 2000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Scores where a higher score means a higher chance of being right."""
    rng = np.random.default_rng(seed)
    scores = rng.uniform(0, 1, n)
    correct = rng.uniform(0, 1, n) < scores
    return scores, correct


@pytest.mark.parametrize("target", [0.7, 0.8, 0.9, 0.95])
def test_threshold_reaches_the_target_with_most_coverage(target: float) -> None:
    scores, correct = synthetic()
    choice = choose_threshold(scores, correct, target)
    answered = scores >= choice.threshold
    assert choice.method == "validation"
    assert correct[answered].mean() >= target
    assert choice.precision == pytest.approx(correct[answered].mean())
    assert choice.coverage == pytest.approx(answered.mean())
    # no lower observed score reaches the target: the threshold is the lowest one that does
    for lower in scores[scores < choice.threshold]:
        assert correct[scores >= lower].mean() < target


def test_hand_computed_threshold() -> None:
    scores = np.array([0.95, 0.9, 0.8, 0.7, 0.6, 0.5])
    correct = np.array([True, True, False, True, True, False])
    # precision answering the top k: 1, 1, 2/3, 3/4, 4/5, 4/6
    choice = choose_threshold(scores, correct, 0.75, min_rows=0)
    assert choice.threshold == 0.6
    assert choice.precision == pytest.approx(0.8)
    assert choice.coverage == pytest.approx(5 / 6)
    assert choose_threshold(scores, correct, 0.9, min_rows=0).threshold == 0.9


def test_ties_are_answered_together() -> None:
    scores = np.array([0.9, 0.8, 0.8, 0.8])
    correct = np.array([True, True, False, False])
    # answering 0.8 means answering all three 0.8 rows: precision 2/4 < 0.6
    assert choose_threshold(scores, correct, 0.6, min_rows=0).threshold == 0.9


def test_never_answered_rows_are_never_chosen() -> None:
    scores = np.array([0.9, -1.0, -1.0])
    correct = np.array([True, False, False])
    choice = choose_threshold(scores, correct, 0.9, min_rows=0)
    assert choice.threshold == 0.9
    assert choice.coverage == pytest.approx(1 / 3)


def test_unreachable_target_falls_back_to_the_most_precise_threshold() -> None:
    scores = np.array([0.9, 0.8, 0.7, 0.6])
    correct = np.array([False, True, True, False])
    choice = choose_threshold(scores, correct, 0.95, min_rows=0)
    assert choice.method == "best-precision"
    assert choice.threshold == 0.7  # top 3 -> 2/3, the best precision reachable
    assert "not reachable" in choice.note


def test_no_validation_uses_the_default() -> None:
    choice = choose_threshold(np.array([]), np.array([], dtype=bool), 0.9)
    assert (choice.threshold, choice.method, choice.n_validation) == (0.5, "default", 0)


def test_small_validation_uses_the_default_and_says_so() -> None:
    scores, correct = np.array([0.99, 0.98, 0.97]), np.array([True, True, True])
    choice = choose_threshold(scores, correct, 0.9, min_rows=30, default=0.4)
    assert (choice.threshold, choice.method) == (0.4, "default-small-validation")
    assert "only 3 validation rows" in choice.note and "0.97" in choice.note


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="target_precision"):
        choose_threshold(np.array([0.5]), np.array([True]), 0.0)
    with pytest.raises(ValueError, match="same length"):
        choose_threshold(np.array([0.5, 0.4]), np.array([True]), 0.9)


def test_coverage_curve_is_monotone() -> None:
    scores, correct = synthetic(500)
    curve = coverage_curve(scores, correct)
    assert len(curve) == 101 and curve[0].threshold == 0.0 and curve[-1].threshold == 1.0
    coverages = [point.coverage for point in curve]
    assert coverages == sorted(coverages, reverse=True)
    assert curve[0].coverage == 1.0
    # with informative scores, precision rises as the threshold rises (allowing sampling noise)
    assert curve[80].precision > curve[40].precision > curve[0].precision


def test_answer_scores_never_answer_out_of_scope_tops() -> None:
    labels = ["a", "out_of_scope", "b"]
    probs = np.array([[0.7, 0.2, 0.1], [0.3, 0.6, 0.1], [0.1, 0.1, 0.8]])
    top, scores = answer_scores(probs, labels, "out_of_scope")
    assert top.tolist() == [0, 1, 2]
    assert scores.tolist() == pytest.approx([0.7, -1.0, 0.8])
    assert max_in_scope(probs, labels, "out_of_scope").tolist() == pytest.approx([0.7, 0.3, 0.8])
    # without an out-of-scope class every top is answerable
    _, plain = answer_scores(probs[:, [0, 2]], ["a", "b"], "out_of_scope")
    assert (plain >= 0).all()


def test_auroc() -> None:
    assert ood_auroc(np.array([0.9, 0.8]), np.array([0.1, 0.2])) == 1.0
    assert ood_auroc(np.array([0.1, 0.2]), np.array([0.9, 0.8])) == 0.0
    assert ood_auroc(np.array([0.5, 0.5]), np.array([0.5])) == 0.5
    assert ood_auroc(np.array([0.5]), np.array([])) is None


def test_recall_at_precision() -> None:
    in_scope = np.array([0.9, 0.8, 0.7, 0.6])
    out_of_scope = np.array([0.65, 0.3, 0.2, 0.1])
    # threshold 0.7 answers 3 in-scope rows only (precision 1); 0.6 would admit the 0.65 row (4/5)
    threshold, recall = recall_at_precision(in_scope, out_of_scope, 0.95)
    assert threshold == 0.7 and recall == 1.0
    threshold, recall = recall_at_precision(in_scope, out_of_scope, 0.8)
    assert threshold == 0.6 and recall == 0.75
