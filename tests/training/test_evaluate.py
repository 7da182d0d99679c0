"""Evaluation metrics on a hand-computable case, plus plots and JSON from the real tiny model."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from training.calibration import OperatingPoint
from training.data import Example
from training.errors import DataError
from training.evaluate import evaluate
from training.model import IntentModel
from training.openset import QuestionScores, scores_from_probs

from .conftest import tiny_examples


class FixedModel:
    """Stands in for IntentModel: returns fixed probabilities per text, decides by max softmax."""

    labels = ["a", "b"]
    out_of_scope_label = "out_of_scope"
    version = "vfixed"

    def __init__(self, table: dict[str, list[float]], threshold: float) -> None:
        self.table = table
        self.point = OperatingPoint("msp", threshold)
        self.threshold = threshold
        self.info: dict[str, object] = {}

    def probabilities(self, texts: Sequence[str], batch_size: int = 64) -> tuple[np.ndarray, np.ndarray]:
        probs = np.array([self.table[t] for t in texts], dtype=np.float32)
        return probs, np.zeros((len(texts), 4), dtype=np.float32)

    def decision_scores(self, probs: np.ndarray, embeddings: np.ndarray, *, every: bool = False) -> QuestionScores:
        return scores_from_probs(probs, self.labels, self.out_of_scope_label)


TABLE = {
    "a1": [0.9, 0.1],  # a, right, answered
    "a2": [0.6, 0.4],  # a, right, below threshold
    "a3": [0.2, 0.8],  # a predicted b, answered (wrong)
    "b1": [0.1, 0.9],  # b, right, answered
    "o1": [0.55, 0.45],  # out of scope, abstained
    "o2": [0.95, 0.05],  # out of scope, answered as a (wrong)
}


def test_closed_set_metrics_by_hand() -> None:
    model = FixedModel(TABLE, threshold=0.7)
    rows = [Example("a1", "a"), Example("a2", "a"), Example("a3", "a"), Example("b1", "b")]
    report = evaluate(model, rows)  # type: ignore[arg-type]
    assert not report.open_set
    assert report.accuracy == pytest.approx(3 / 4)
    # a: precision 2/2, recall 2/3; b: precision 1/2, recall 1/1
    assert report.per_intent["a"].precision == pytest.approx(1.0)
    assert report.per_intent["a"].recall == pytest.approx(2 / 3)
    assert report.per_intent["b"].precision == pytest.approx(0.5)
    assert report.per_intent["b"].support == 1
    f1_a, f1_b = 2 * (2 / 3) / (1 + 2 / 3), 2 * 0.5 / 1.5
    assert report.macro_f1 == pytest.approx((f1_a + f1_b) / 2)
    assert report.confusion_labels == ["a", "b"]
    assert report.confusion == [[2, 1], [0, 1]]
    assert report.coverage == pytest.approx(3 / 4)  # a2 is below the threshold
    assert report.answered_precision == pytest.approx(2 / 3)
    assert report.in_scope_accuracy == pytest.approx(3 / 4)
    assert report.out_of_scope_recall is None and report.auroc is None
    assert report.worst_intents(1)[0][0] == "b"


def test_open_set_metrics_by_hand() -> None:
    model = FixedModel(TABLE, threshold=0.7)
    rows = [Example(t, t[0] if t[0] != "o" else "out_of_scope") for t in TABLE]
    report = evaluate(model, rows)  # type: ignore[arg-type]
    assert report.open_set
    # decisions: a1 a, a2 oos, a3 b, b1 b, o1 oos, o2 a -> right: a1, b1, o1
    assert report.accuracy == pytest.approx(3 / 6)
    assert report.in_scope_accuracy == pytest.approx(3 / 4)
    assert report.out_of_scope_recall == pytest.approx(1 / 2)  # o1 abstained, o2 answered
    assert report.out_of_scope_precision == pytest.approx(1 / 2)  # abstained: a2, o1
    assert report.coverage == pytest.approx(4 / 6)
    assert report.answered_precision == pytest.approx(2 / 4)
    # in-scope max probabilities 0.9 0.6 0.8 0.9 vs out of scope 0.55 0.95: 4 of 8 pairs ranked right
    assert report.auroc == pytest.approx(4 / 8)
    assert report.per_intent["out_of_scope"].support == 2
    own, best = report.outcomes["own"], report.outcomes["hindsight"]
    assert own.decision_accuracy == pytest.approx(report.accuracy)  # the same decision, counted the same way
    assert best.decision_accuracy >= own.decision_accuracy
    assert report.policy_curve and report.clarified == 0.0


def test_what_each_customer_got_is_kept_per_question() -> None:
    model = FixedModel(TABLE, threshold=0.7)
    rows = [Example(t, t[0] if t[0] != "o" else "out_of_scope") for t in TABLE] + [Example("a1", "new_intent")]
    report = evaluate(model, rows)  # type: ignore[arg-type]
    assert report.truth == [row.label for row in rows]
    assert report.outcomes_by_question == [
        "right_answer",  # a1 answered a
        "needless_handoff",  # a2 below the threshold
        "wrong_answer",  # a3 answered b
        "right_answer",  # b1
        "right_handoff",  # o1 out of scope, handed off
        "wrong_answer",  # o2 out of scope, answered
        "wrong_answer",  # a label the model does not know, answered
    ]
    assert report.out_of_scope_label == "out_of_scope"
    assert json.loads(report.to_json())["outcomes_by_question"] == report.outcomes_by_question

    model.point = OperatingPoint("msp", 0.7, clarify_threshold=0.5)  # a2 (0.6) and o1 (0.55) get a question
    report = evaluate(model, rows)  # type: ignore[arg-type]
    assert report.outcomes_by_question[1] == "right_answer"  # a is one of the two offered intents
    assert report.outcomes_by_question[4] == "right_handoff"  # "Something else", then a hand-off


def test_no_examples() -> None:
    with pytest.raises(DataError, match="no examples"):
        evaluate(FixedModel(TABLE, 0.5), [])  # type: ignore[arg-type]


@pytest.mark.slow
def test_real_model_report_plots_and_json(trained_model: IntentModel, tmp_path: Path) -> None:
    rows = [*tiny_examples(), Example("what's the weather like tomorrow", "out_of_scope"), Example("x", "unknown")]
    report = evaluate(trained_model, rows, tmp_path / "plots")
    assert report.examples == len(rows) and report.model_version == "vtest"
    assert report.unknown_labels == ["unknown"]
    assert report.in_scope_accuracy is not None and report.in_scope_accuracy >= 0.8
    for path in report.plots.values():
        assert Path(path).read_bytes().startswith(b"\x89PNG")
    data = json.loads(report.to_json())
    assert data["per_intent"]["refund"]["support"] == 6
    assert len(data["curve"]) == 101
