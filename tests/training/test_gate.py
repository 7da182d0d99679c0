"""The promotion gate's decision table, on plain numbers (no model)."""

from __future__ import annotations

import pytest

from training.gate import GatePolicy, Scores, decide

SUPPORT = {"billing": 40, "login": 40, "rare": 2}
LABELS = ("billing", "login", "rare")


def scores(accuracy: float, macro_f1: float, **f1: float) -> Scores:
    per_intent = {"billing": 0.9, "login": 0.9, "rare": 0.5} | f1
    return Scores(accuracy, macro_f1, per_intent, dict(SUPPORT), labels=LABELS)


PRODUCTION = scores(0.90, 0.85)
POLICY = GatePolicy(tolerance=0.005, max_intent_drop=0.05, min_intent_support=5)


def test_first_model_is_promoted_without_comparison() -> None:
    decision = decide(scores(0.1, 0.1), None, POLICY)
    assert decision.promote
    assert "no production" in decision.reasons[0]


@pytest.mark.parametrize(
    ("candidate", "promote", "failing"),
    [
        (scores(0.90, 0.85), True, []),  # identical
        (scores(0.95, 0.90, billing=0.95), True, []),  # better everywhere
        (scores(0.896, 0.846), True, []),  # within the tolerance
        (scores(0.89, 0.85), False, ["accuracy"]),  # accuracy drops by 0.01 > 0.005
        (scores(0.90, 0.84), False, ["macro-F1"]),
        (scores(0.92, 0.88, login=0.84), False, ["f1:login"]),  # better overall, one intent drops 0.06
        (scores(0.92, 0.88, login=0.851), True, []),  # drop of 0.049 is allowed
        (scores(0.92, 0.88, rare=0.0), True, []),  # 'rare' has support 2 < 5: not checked
        (scores(0.80, 0.70, billing=0.5, login=0.5), False, ["accuracy", "macro-F1", "f1:billing", "f1:login"]),
    ],
)
def test_decision_table(candidate: Scores, promote: bool, failing: list[str]) -> None:
    decision = decide(candidate, PRODUCTION, POLICY)
    assert decision.promote is promote
    assert [check.name for check in decision.failed] == failing
    assert len(decision.reasons) == max(1, len(failing))


def test_one_flipped_example_of_a_small_intent_is_noise_not_a_regression() -> None:
    support = SUPPORT | {"login": 7}
    production = Scores(0.75, 0.70, {"billing": 0.9, "login": 1.0, "rare": 0.5}, support, LABELS)
    one_flip = Scores(0.86, 0.83, {"billing": 0.95, "login": 0.933, "rare": 0.5}, support, LABELS)
    assert decide(one_flip, production, POLICY).promote  # 0.067 < 1/7: one question's worth
    two_flips = Scores(0.86, 0.83, {"billing": 0.95, "login": 0.83, "rare": 0.5}, support, LABELS)
    decision = decide(two_flips, production, POLICY)
    assert not decision.promote
    assert [check.name for check in decision.failed] == ["f1:login"]


def test_new_intents_do_not_count_against_the_candidate() -> None:
    support = SUPPORT | {"new_intent": 8}
    candidate = Scores(0.9, 0.85, {"billing": 0.9, "login": 0.9, "rare": 0.5, "new_intent": 0.1}, support)
    production = Scores(0.9, 0.85, {"billing": 0.9, "login": 0.9, "rare": 0.5, "new_intent": 0.9}, support, LABELS)
    decision = decide(candidate, production, POLICY)
    assert decision.promote
    assert "new intent" in decision.skipped["new_intent"]
    assert "support" in decision.skipped["rare"] or "examples" in decision.skipped["rare"]


def test_known_intent_missing_from_candidate_scores_counts_as_zero() -> None:
    candidate = Scores(0.9, 0.85, {"billing": 0.9, "rare": 0.5}, dict(SUPPORT), LABELS)
    decision = decide(candidate, PRODUCTION, POLICY)
    assert not decision.promote
    assert [check.name for check in decision.failed] == ["f1:login"]
    assert "0.900 -> 0.000" in decision.reasons[0]


def test_reasons_name_the_numbers() -> None:
    decision = decide(scores(0.80, 0.85), PRODUCTION, POLICY)
    assert decision.reasons == ["accuracy 0.900 -> 0.800: drops by 0.100 > tolerance 0.005"]


@pytest.mark.parametrize("kwargs", [{"tolerance": -0.1}, {"max_intent_drop": 1.5}, {"min_intent_support": 0}])
def test_policy_rejects_nonsense(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        GatePolicy(**kwargs)  # type: ignore[arg-type]
