"""The operating point: cost policy, re-weighting, clarification region, curve and description."""

from __future__ import annotations

import numpy as np
import pytest

from training.calibration import (
    ANSWER,
    CLARIFY,
    HANDOFF,
    CalibrationSet,
    DecisionPolicy,
    OperatingPoint,
    best_threshold,
    choose,
    describe,
    ood_auroc,
    outcome,
    weights,
)
from training.openset import SCORES, QuestionScores


def question_scores(
    msp: np.ndarray, top: np.ndarray, second: np.ndarray | None = None, margin: np.ndarray | None = None
) -> QuestionScores:
    """Scores where every score name holds `msp` (and `margin` its own values)."""
    values = {name: np.asarray(msp, dtype=float) for name in SCORES}
    values["margin"] = np.asarray(margin if margin is not None else msp, dtype=float)
    second = second if second is not None else (np.asarray(top) + 1) % 3
    return QuestionScores(np.asarray(top), np.asarray(second), values, np.zeros((len(top), 6)))


def synthetic(n_in: int = 600, n_out: int = 600, seed: int = 0) -> CalibrationSet:
    """In-scope rows score high (and are right more often the higher), out-of-scope rows score lower."""
    rng = np.random.default_rng(seed)
    in_scores = rng.beta(5, 2, n_in)
    out_scores = rng.beta(2, 4, n_out)
    truth = np.r_[np.zeros(n_in, int), np.full(n_out, -1)]
    right = rng.uniform(0, 1, n_in) < 0.5 + 0.5 * in_scores
    top = np.r_[np.where(right, 0, 1), np.zeros(n_out, int)]
    scores = question_scores(np.r_[in_scores, out_scores], top)
    source = np.array(["in_scope"] * n_in + ["held_out_intent"] * n_out, dtype=object)
    return CalibrationSet(scores, truth, np.ones(n_in + n_out), source)


def reweighted(data: CalibrationSet, oos_share: float) -> CalibrationSet:
    return CalibrationSet(data.scores, data.truth, weights(data.source, oos_share), data.source)


def test_hand_computed_threshold_minimises_the_cost() -> None:
    # rows: (score, truth, top): right answers at 0.9, 0.7; a wrong answer at 0.8; out of scope at 0.6, 0.3
    scores = question_scores(np.array([0.9, 0.8, 0.7, 0.6, 0.3]), np.array([0, 1, 0, 0, 0]))
    data = CalibrationSet(scores, np.array([0, 0, 0, -1, -1]), np.ones(5), np.array(["in_scope"] * 5, dtype=object))
    policy = DecisionPolicy(clarify=False, score="msp")
    threshold, costs = best_threshold(data, policy, "msp")
    # answering >= 0.7: one wrong answer (0.8) -> cost 1/5; every other threshold costs more
    assert threshold == pytest.approx(0.7)
    assert costs.min() == pytest.approx(1 / 5)
    result = outcome(OperatingPoint("msp", threshold), data, policy)
    assert result.decision_accuracy == pytest.approx(4 / 5)
    assert result.wrong_answers == pytest.approx(1 / 5) and result.needless_handoffs == 0
    # a wrong answer costing 3 hand-offs makes handing off the 0.8 row cheaper: answer only >= 0.9
    expensive = DecisionPolicy(wrong_answer_cost=3.0, clarify=False, score="msp")
    assert best_threshold(data, expensive, "msp")[0] == pytest.approx(0.9)


@pytest.mark.parametrize("score", ["msp", "combined"])
def test_costlier_wrong_answers_and_more_out_of_scope_traffic_raise_the_threshold(score: str) -> None:
    data = synthetic()

    def threshold(cost: float, share: float) -> float:
        policy = DecisionPolicy(wrong_answer_cost=cost, oos_share=share, clarify=False, score=score)
        return choose(reweighted(data, share), policy).point.threshold

    assert threshold(1.0, 0.3) < threshold(3.0, 0.3) < threshold(10.0, 0.3)
    assert threshold(1.0, 0.1) < threshold(1.0, 0.3) < threshold(1.0, 0.6)


def test_weights_give_out_of_scope_rows_the_configured_share() -> None:
    source = np.array(["in_scope"] * 50 + ["held_out_intent"] * 30 + ["generic"] * 400, dtype=object)
    w = weights(source, 0.3)
    assert w.sum() == pytest.approx(1.0)
    assert w[source != "in_scope"].sum() == pytest.approx(0.3)
    assert w[source == "held_out_intent"].sum() == pytest.approx(0.3 * 0.7)  # in-domain unknowns weigh most
    with_real = np.r_[source, np.array(["validation_oos"] * 50, dtype=object)]
    w = weights(with_real, 0.3)
    assert w[with_real == "validation_oos"].sum() == pytest.approx(0.3 * 0.5)  # 50 of the 100 that suffice
    only_real = np.array(["in_scope"] * 10 + ["log_oos"] * 5, dtype=object)
    assert weights(only_real, 0.4)[10:].sum() == pytest.approx(0.4)


def test_actions_answer_clarify_and_hand_off() -> None:
    scores = question_scores(
        np.array([0.9, 0.9, 0.5, 0.2]),
        np.array([0, 0, 0, 0]),
        np.array([1, 1, 1, -1]),
        margin=np.array([0.8, 0.05, 0.4, 0.2]),
    )
    point = OperatingPoint("msp", threshold=0.7, clarify_threshold=0.4, clarify_margin=0.1)
    assert point.actions(scores).tolist() == [ANSWER, CLARIFY, CLARIFY, HANDOFF]
    assert OperatingPoint("msp", 0.7).actions(scores).tolist() == [ANSWER, ANSWER, HANDOFF, HANDOFF]
    assert not OperatingPoint("msp", 0.7).clarifies and point.clarifies


def test_clarification_is_added_when_it_lowers_the_cost_within_the_share() -> None:
    rng = np.random.default_rng(1)
    n = 400
    msp = rng.uniform(0.3, 1.0, n)
    # below 0.6 the top intent is wrong but the second is right: a clarifying question rescues those
    truth = np.zeros(n, int)
    top = np.where(msp < 0.6, 1, 0)
    second = np.where(msp < 0.6, 0, 2)
    scores = question_scores(msp, top, second, margin=msp - 0.3)
    data = CalibrationSet(scores, truth, np.ones(n), np.array(["in_scope"] * n, dtype=object))
    calibration = choose(data, DecisionPolicy(score="msp", max_clarify_share=1.0))
    assert calibration.point.clarifies
    assert calibration.outcome is not None and calibration.outcome.in_scope_resolved == pytest.approx(1.0)
    limited = choose(data, DecisionPolicy(score="msp", max_clarify_share=0.05))
    assert limited.outcome is not None and limited.outcome.clarified <= 0.05 + 1e-9
    never = choose(data, DecisionPolicy(score="msp", clarify=False))
    assert not never.point.clarifies


def test_operating_point_round_trips_through_json() -> None:
    point = OperatingPoint("knn", 0.42)
    stored = point.to_dict()
    assert stored["clarify_threshold"] == 1e9  # JSON has no infinity
    assert OperatingPoint.from_dict(stored) == OperatingPoint("knn", 0.42, 1e9, 0.0)
    assert not OperatingPoint.from_dict(stored).clarifies
    assert OperatingPoint.from_dict({"threshold": 0.3}) == OperatingPoint("msp", 0.3)
    with pytest.raises(ValueError, match="unknown out-of-scope score"):
        OperatingPoint.from_dict({"score": "vibes"})


def test_policy_is_checked() -> None:
    with pytest.raises(ValueError, match="wrong_answer_cost"):
        DecisionPolicy(wrong_answer_cost=0)
    with pytest.raises(ValueError, match="oos_share"):
        DecisionPolicy(oos_share=1.0)
    with pytest.raises(ValueError, match="unknown out-of-scope score"):
        DecisionPolicy(score="vibes")


def test_description_names_the_point_the_policy_the_rows_and_the_curve() -> None:
    data = reweighted(synthetic(), 0.3)
    calibration = choose(data, DecisionPolicy())
    text = "\n".join(describe(calibration.to_dict()))
    assert f">= {calibration.point.threshold:.3f}" in text
    assert "a wrong answer costs 1 hand-offs" in text and "out-of-scope share 30%" in text
    assert "600 in scope" in text and "600 held out intent" in text
    assert "**chosen**" in text and "`knn`" in text and "Curve" in text
    assert "not calibrated" in describe({"score": "msp", "threshold": 0.5})[0]


def test_auroc() -> None:
    in_scope = np.array([True, True, False, False])
    assert ood_auroc(np.array([0.9, 0.8, 0.1, 0.2]), in_scope) == 1.0
    assert ood_auroc(np.array([0.1, 0.2, 0.9, 0.8]), in_scope) == 0.0
    assert ood_auroc(np.array([0.9, 0.8, -np.inf, 0.2]), in_scope) == 1.0  # never-answered rows rank lowest
    assert ood_auroc(np.array([0.5]), np.array([True])) is None
