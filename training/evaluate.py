"""Evaluation of an intent model on labelled examples: metrics, abstention quality, plots, JSON."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, precision_recall_fscore_support

from training.calibration import (
    ANSWER,
    CLARIFY,
    CalibrationSet,
    DecisionPolicy,
    OperatingPoint,
    Outcome,
    best_threshold,
    json_safe,
    ood_auroc,
    outcome,
    question_outcomes,
    truth_indices,
)
from training.calibration import curve as outcome_curve
from training.data import Example
from training.errors import DataError
from training.model import IntentModel


@dataclass(frozen=True, slots=True)
class IntentMetrics:
    """Per-intent precision, recall, F1 and number of true examples."""

    precision: float
    recall: float
    f1: float
    support: int


@dataclass(frozen=True, slots=True)
class CurvePoint:
    """Answering every question with score >= `threshold` covers `coverage` of them at `precision`."""

    threshold: float
    coverage: float
    precision: float


@dataclass
class EvalReport:
    """Everything `evaluate` measured.

    With no out-of-scope rows ("closed set"), `accuracy`/`macro_f1`/`per_intent` score the top label (the
    classic intent-accuracy). With out-of-scope rows ("open set") they score the bot's decision at the model's
    own operating point: a hand-off counts as predicting the out-of-scope label, and so does a clarifying
    question (counted separately in `clarified` and `resolved`).

    Attributes:
        model_version: Version of the evaluated model.
        examples: Number of evaluated rows.
        open_set: Whether out-of-scope rows were present.
        accuracy: Accuracy of the decision (see above).
        macro_f1: Macro-averaged F1 over the labels present in the data or predicted.
        per_intent: Label -> precision/recall/F1/support.
        threshold: The model's answer threshold (on the score `score`).
        score: The out-of-scope score of the model's operating point.
        coverage: Share of rows the bot answers directly.
        clarified: Share of rows that get a clarifying question.
        resolved: Share of in-scope rows answered right directly or after one click (the right intent is
            one of the two offered).
        answered_precision: Share of answered rows whose intent is right (None when nothing is answered).
        in_scope_accuracy: Top-label accuracy on in-scope rows, ignoring abstention.
        out_of_scope_precision: Among abstained rows, the share that were out of scope (open set only).
        out_of_scope_recall: Share of out-of-scope rows abstained (open set only).
        auroc: In-scope vs out-of-scope separation by the operating point's score (open set only).
        auroc_by_score: The same for every score (open set only).
        outcomes: Open set: what this data gives at the model's own point (`own`, with clarification as
            configured; `own_direct` without), and at the best threshold in hindsight (`hindsight`), in the
            model's policy's units (cost per question, decision accuracy, rates).
        policy_curve: Open set: the outcome at thresholds spread over the score's range.
        outcomes_by_question: What each customer got at the model's own operating point, one of
            `training.calibration.QUESTION_OUTCOMES` per evaluated row, in the rows' order: `right_answer`
            (answered right, or a clarifying question whose two offered intents include the right one),
            `right_handoff` (an out-of-scope question handed off or clarified), `needless_handoff` (an in-scope
            question handed off, or clarified without the right intent among the options), `wrong_answer`
            (answered wrongly, any answer to an out-of-scope question included). On the frozen evaluation set
            row i is the same question for every model: the gate pairs them (`training.gate`).
        truth: The true label of each row, in the same order.
        out_of_scope_label: The model's out-of-scope label (rows with it are out of scope).
        unknown_labels: Labels in the data that the model does not know (always wrong).
        confusion_labels: Row/column order of `confusion`.
        confusion: Confusion matrix (rows = truth, columns = decision).
        curve: Coverage and precision of the answered set as the threshold varies.
        plots: Paths of the written PNG files.
    """

    model_version: str
    examples: int
    open_set: bool
    accuracy: float
    macro_f1: float
    per_intent: dict[str, IntentMetrics]
    threshold: float
    coverage: float
    answered_precision: float | None
    in_scope_accuracy: float | None
    score: str = "msp"
    clarified: float = 0.0
    resolved: float | None = None
    out_of_scope_precision: float | None = None
    out_of_scope_recall: float | None = None
    auroc: float | None = None
    auroc_by_score: dict[str, float | None] = field(default_factory=dict)
    outcomes: dict[str, Outcome] = field(default_factory=dict)
    policy_curve: list[Outcome] = field(default_factory=list)
    outcomes_by_question: list[str] = field(default_factory=list)
    truth: list[str] = field(default_factory=list)
    out_of_scope_label: str = "out_of_scope"
    unknown_labels: list[str] = field(default_factory=list)
    confusion_labels: list[str] = field(default_factory=list)
    confusion: list[list[int]] = field(default_factory=list)
    curve: list[CurvePoint] = field(default_factory=list)
    plots: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict (no NaN or infinity)."""
        return json_safe(asdict(self))

    def to_json(self, indent: int | None = 2) -> str:
        """The report as JSON text."""
        return json.dumps(self.to_dict(), indent=indent)

    def worst_intents(self, count: int = 5) -> list[tuple[str, IntentMetrics]]:
        """The `count` intents with the lowest F1 (ties broken by support, larger first)."""
        ranked = sorted(self.per_intent.items(), key=lambda item: (item[1].f1, -item[1].support, item[0]))
        return ranked[:count]


def evaluate(
    model: IntentModel, examples: Sequence[Example], out_dir: str | Path | None = None, *, batch_size: int = 64
) -> EvalReport:
    """Score `model` on labelled examples; with `out_dir`, also write the confusion and coverage plots.

    Args:
        model: The model to evaluate.
        examples: Labelled rows; rows labelled with the model's out-of-scope label are out of scope.
        out_dir: Folder for `confusion.png` and `coverage.png` (created); None writes no plots.
        batch_size: Inference batch size.

    Raises:
        DataError: No examples.
    """
    if not examples:
        raise DataError("no examples to evaluate; give a non-empty data file")
    oos = model.out_of_scope_label
    labels = model.labels
    probs, embeddings = model.probabilities([ex.text for ex in examples], batch_size)
    scores = model.decision_scores(probs, embeddings, every=True)
    point = model.point
    actions = point.actions(scores)
    values = scores.values[point.score]
    truth = np.array([ex.label for ex in examples], dtype=object)
    top_label = np.array([labels[i] for i in probs.argmax(axis=1)], dtype=object)
    answered = actions == ANSWER
    is_oos = truth == oos
    open_set = bool(is_oos.any())
    decision = np.where(answered, top_label, oos) if open_set else top_label

    present = sorted(set(truth) | set(decision))
    precision, recall, f1, support = precision_recall_fscore_support(truth, decision, labels=present, zero_division=0)
    per_intent = {
        label: IntentMetrics(float(p), float(r), float(f), int(s))
        for label, p, r, f, s in zip(present, precision, recall, f1, support, strict=True)
        if s > 0 or label in labels
    }
    correct_answer = (top_label == truth) & ~is_oos
    in_scope = ~is_oos
    truth_index = truth_indices(list(truth), labels, oos)
    data = CalibrationSet(
        scores,
        truth_index,
        np.ones(len(examples)),
        np.where(in_scope, "in_scope", "eval_oos").astype(object),
    )
    policy = _policy(model)
    own = outcome(point, data, policy)
    report = EvalReport(
        model_version=model.version,
        examples=len(examples),
        open_set=open_set,
        accuracy=float(accuracy_score(truth, decision)),
        macro_f1=float(f1_score(truth, decision, labels=present, average="macro", zero_division=0)),
        per_intent=per_intent,
        threshold=point.threshold,
        coverage=float(answered.mean()),
        answered_precision=float(correct_answer[answered].mean()) if answered.any() else None,
        in_scope_accuracy=float((top_label[in_scope] == truth[in_scope]).mean()) if in_scope.any() else None,
        score=point.score,
        clarified=float((actions == CLARIFY).mean()),
        resolved=own.in_scope_resolved,
        outcomes_by_question=[str(o) for o in question_outcomes(actions, scores, truth_index, in_scope)],
        truth=[str(label) for label in truth],
        out_of_scope_label=oos,
        unknown_labels=sorted(set(truth) - set(labels) - {oos}),
        confusion_labels=present,
        confusion=confusion_matrix(truth, decision, labels=present).tolist(),
        curve=coverage_curve(values, correct_answer),
    )
    if open_set:
        abstained = ~answered
        report.out_of_scope_precision = float(is_oos[abstained].mean()) if abstained.any() else None
        report.out_of_scope_recall = float(abstained[is_oos].mean())
        report.auroc_by_score = {name: ood_auroc(v, in_scope) for name, v in scores.values.items()}
        report.auroc = report.auroc_by_score.get(point.score)
        direct = DecisionPolicy(**{**policy.to_dict(), "clarify": False})
        hindsight = OperatingPoint(point.score, best_threshold(data, direct, point.score)[0])
        report.outcomes = {
            "own": own,
            "own_direct": outcome(OperatingPoint(point.score, point.threshold), data, direct),
            "hindsight": outcome(hindsight, data, direct),
        }
        report.policy_curve = outcome_curve(data, direct, point.score)
    if out_dir is not None:
        report.plots = write_plots(report, Path(out_dir))
    return report


def _policy(model: IntentModel) -> DecisionPolicy:
    """The policy the model was calibrated with (the defaults for a model saved before policies)."""
    stored = (model.info.get("decision") or {}).get("policy")
    try:
        return DecisionPolicy(**stored) if isinstance(stored, dict) else DecisionPolicy(score=model.point.score)
    except (TypeError, ValueError):
        return DecisionPolicy(score=model.point.score)


def coverage_curve(scores: np.ndarray, correct: np.ndarray, points: int = 101) -> list[CurvePoint]:
    """Coverage and precision of the answered set at `points` thresholds spread over the scores' range.

    Coverage never increases with the threshold. Precision is 1.0 where nothing is answered.
    """
    scores, correct = np.asarray(scores, dtype=np.float64), np.asarray(correct, dtype=bool)
    finite = scores[np.isfinite(scores)]
    if not len(finite):
        return []
    curve = []
    for threshold in np.linspace(finite.min(), finite.max(), points):
        answered = scores >= threshold
        count = int(answered.sum())
        precision = float(correct[answered].mean()) if count else 1.0
        curve.append(CurvePoint(round(float(threshold), 4), count / max(len(scores), 1), precision))
    return curve


def write_plots(report: EvalReport, out_dir: Path) -> dict[str, str]:
    """Write `confusion.png` and `coverage.png` (matplotlib, no display needed); return their paths."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {"confusion": str(out_dir / "confusion.png"), "coverage": str(out_dir / "coverage.png")}

    count = len(report.confusion_labels)
    size = min(4 + 0.18 * count, 24)
    figure = Figure(figsize=(size, size))
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    matrix = np.asarray(report.confusion, dtype=float)
    normalised = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)
    image = axes.imshow(normalised, cmap="Blues", vmin=0, vmax=1)
    figure.colorbar(image, ax=axes, fraction=0.046, pad=0.04, label="share of the true label")
    font = max(4, min(9, int(300 / max(count, 1))))
    axes.set_xticks(range(count), report.confusion_labels, rotation=90, fontsize=font)
    axes.set_yticks(range(count), report.confusion_labels, fontsize=font)
    axes.set_xlabel("predicted (decision)")
    axes.set_ylabel("true label")
    axes.set_title(f"Confusion matrix: {report.model_version} (accuracy {report.accuracy:.3f})")
    figure.tight_layout()
    figure.savefig(paths["confusion"], dpi=120)

    figure = Figure(figsize=(6, 4.5))
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    coverage = [point.coverage for point in report.curve]
    precision = [point.precision for point in report.curve]
    axes.plot(coverage, precision, marker=".", markersize=3)
    axes.scatter(
        [report.coverage],
        [report.answered_precision if report.answered_precision is not None else 1.0],
        color="red",
        zorder=3,
        label=f"threshold {report.threshold:.3f}",
    )
    axes.set_xlabel("coverage (share answered)")
    axes.set_ylabel("accuracy of answered questions")
    axes.set_xlim(0, 1.02)
    axes.set_title("Coverage vs accuracy")
    axes.grid(alpha=0.3)
    axes.legend(loc="lower left")
    figure.tight_layout()
    figure.savefig(paths["coverage"], dpi=120)
    return paths
