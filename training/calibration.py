"""The operating point: when the bot answers, asks a clarifying question, or hands off.

The policy is explicit and in the product's own units. A wrong answer costs `wrong_answer_cost` hand-offs; an
in-scope question handed off costs one hand-off (an agent answers what the bot could have); an out-of-scope
question handed off costs nothing (that is the right thing to do); a clarifying question costs
`clarify_cost` hand-offs (one more click for the customer) plus a hand-off when neither offered intent is
right. Calibration rows are weighted so that out-of-scope questions make up `oos_share` of the traffic,
whatever their share of the calibration data, and the operating point is the one with the lowest expected
cost per question. With `wrong_answer_cost` 1 and no clarification this is the point of highest decision
accuracy (right answers plus right hand-offs).

The decision rule (`OperatingPoint.actions`), used by serving and by evaluation alike:

- answer from the top intent when `score >= threshold` and the top two intents are at least
  `clarify_margin` apart;
- else ask "did you mean A or B?" when `score >= clarify_threshold` and a second in-scope intent exists;
- else hand off (the engine may still offer a knowledge-base passage).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np

from training.openset import DEFAULT_SCORE, SCORES, QuestionScores

Action = Literal["answer", "clarify", "handoff"]
ANSWER, CLARIFY, HANDOFF = 0, 1, 2
ACTIONS: tuple[Action, ...] = ("answer", "clarify", "handoff")

RIGHT_ANSWER, RIGHT_HANDOFF, NEEDLESS_HANDOFF, WRONG_ANSWER = (
    "right_answer",
    "right_handoff",
    "needless_handoff",
    "wrong_answer",
)
QUESTION_OUTCOMES = (RIGHT_ANSWER, RIGHT_HANDOFF, NEEDLESS_HANDOFF, WRONG_ANSWER)
"""What one customer got (`question_outcomes`), in the order the report lists them."""
GOOD_OUTCOMES = frozenset({RIGHT_ANSWER, RIGHT_HANDOFF})
"""The outcomes that cost nothing but (for a clarifying question) a click: what the gate counts as good."""

DEFAULT_THRESHOLD = 0.5
"""The `msp` threshold of a model with nothing to calibrate on (or of a model saved before calibration)."""
THRESHOLD_CANDIDATES = 400
CURVE_POINTS = 21
NEVER = 1e8
"""A threshold at or above this is never reached (infinite thresholds are stored as +-1e9 in JSON)."""
MARGINS = (0.0, 0.02, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5)


@dataclass(frozen=True)
class DecisionPolicy:
    """What the operating point optimises (settings `WRONG_ANSWER_COST`, `OOS_SHARE`, `CLARIFY_*`, `OOS_SCORE`).

    Args:
        wrong_answer_cost: A wrong answer costs this many unneeded hand-offs (1 = maximise decision accuracy).
        oos_share: Expected share of out-of-scope questions in the traffic (replaced by the share measured
            from agent-labelled logs when there are enough).
        clarify: Ask clarifying questions at all.
        clarify_cost: What one clarifying question costs, in hand-offs.
        max_clarify_share: At most this share of questions get a clarifying question.
        score: The out-of-scope score (one of `training.openset.SCORES`).
    """

    wrong_answer_cost: float = 1.0
    oos_share: float = 0.3
    clarify: bool = True
    clarify_cost: float = 0.3
    max_clarify_share: float = 0.1
    score: str = DEFAULT_SCORE

    def __post_init__(self) -> None:
        if not self.wrong_answer_cost > 0:
            raise ValueError(f"wrong_answer_cost must be > 0 (got {self.wrong_answer_cost})")
        if not 0.0 <= self.oos_share < 1.0:
            raise ValueError(f"oos_share must be in [0, 1) (got {self.oos_share})")
        if not 0.0 <= self.clarify_cost < 1.0:
            raise ValueError(f"clarify_cost must be in [0, 1) (got {self.clarify_cost})")
        if not 0.0 <= self.max_clarify_share <= 1.0:
            raise ValueError(f"max_clarify_share must be in [0, 1] (got {self.max_clarify_share})")
        if self.score not in SCORES:
            raise ValueError(f"unknown out-of-scope score {self.score!r}; use one of {', '.join(SCORES)}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class OperatingPoint:
    """Thresholds on one score (stored in the model's `supportbot.json` under `decision`)."""

    score: str = "msp"
    threshold: float = DEFAULT_THRESHOLD
    clarify_threshold: float = float("inf")
    clarify_margin: float = 0.0

    def actions(self, scores: QuestionScores) -> np.ndarray:
        """`ANSWER`, `CLARIFY` or `HANDOFF` per row."""
        value = scores.values[self.score]
        margin = scores.values["margin"]
        answer = (value >= self.threshold) & (margin >= self.clarify_margin)
        clarify = ~answer & (value >= self.clarify_threshold) & (scores.second >= 0)
        return np.where(answer, ANSWER, np.where(clarify, CLARIFY, HANDOFF))

    @property
    def clarifies(self) -> bool:
        """Whether this point ever asks a clarifying question."""
        return self.clarify_threshold < NEVER

    def to_dict(self) -> dict[str, Any]:
        return {k: json_safe(v) for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> OperatingPoint:
        def number(key: str, default: float) -> float:
            value = data.get(key, default)
            return float("inf") if value is None else float(value)

        score = str(data.get("score", "msp"))
        if score not in SCORES:
            raise ValueError(f"unknown out-of-scope score {score!r}")
        return cls(
            score,
            number("threshold", DEFAULT_THRESHOLD),
            number("clarify_threshold", float("inf")),
            number("clarify_margin", 0.0),
        )


@dataclass
class CalibrationSet:
    """Labelled, weighted rows to choose an operating point on.

    Attributes:
        scores: The scores of every row (held-out-intent rows scored with their intents hidden).
        truth: The true class index, -1 for an out-of-scope row.
        weight: Row weight (out-of-scope rows sum to the policy's share).
        source: Where each row came from (`in_scope`, `held_out_intent`, `generic`, `validation_oos`, `log_oos`).
    """

    scores: QuestionScores
    truth: np.ndarray
    weight: np.ndarray
    source: np.ndarray

    @property
    def in_scope(self) -> np.ndarray:
        return self.truth >= 0

    @property
    def correct(self) -> np.ndarray:
        """Answering from the top intent would be right."""
        return (self.scores.top == self.truth) & self.in_scope

    @property
    def in_top_two(self) -> np.ndarray:
        """The right intent is one of the two a clarifying question offers."""
        return ((self.scores.top == self.truth) | (self.scores.second == self.truth)) & self.in_scope

    def counts(self) -> dict[str, int]:
        names, counts = np.unique(self.source, return_counts=True)
        return {str(n): int(c) for n, c in zip(names, counts, strict=True)}


@dataclass(frozen=True)
class Outcome:
    """What an operating point gives on (weighted) labelled rows; shares of all questions unless named."""

    threshold: float
    cost: float
    decision_accuracy: float
    answered: float
    clarified: float
    wrong_answers: float
    needless_handoffs: float
    in_scope_accuracy: float | None
    """Share of in-scope questions answered right directly."""
    in_scope_resolved: float | None
    """Share of in-scope questions answered right directly or after one click."""
    oos_recall: float | None
    oos_precision: float | None

    def to_dict(self) -> dict[str, Any]:
        return {k: json_safe(v) for k, v in asdict(self).items()}


@dataclass
class Calibration:
    """The chosen operating point and how it was chosen (stored in the model's info)."""

    point: OperatingPoint
    policy: DecisionPolicy
    outcome: Outcome | None
    rows: dict[str, int] = field(default_factory=dict)
    curve: list[Outcome] = field(default_factory=list)
    candidates: dict[str, Outcome] = field(default_factory=dict)
    auroc: dict[str, float | None] = field(default_factory=dict)
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.point.to_dict(),
            "policy": self.policy.to_dict(),
            "outcome": self.outcome.to_dict() if self.outcome else None,
            "rows": self.rows,
            "curve": [point.to_dict() for point in self.curve],
            "candidates": {name: o.to_dict() for name, o in self.candidates.items()},
            "auroc": {name: json_safe(value) for name, value in self.auroc.items()},
            "note": self.note,
        }


def outcome(point: OperatingPoint, data: CalibrationSet, policy: DecisionPolicy) -> Outcome:
    """The expected cost, decision accuracy and rates of `point` on `data` (weighted)."""
    return _outcome(point.actions(data.scores), point.threshold, data, policy)


def _outcome(actions: np.ndarray, threshold: float, data: CalibrationSet, policy: DecisionPolicy) -> Outcome:
    weight = data.weight / data.weight.sum()
    inside, correct, top_two = data.in_scope, data.correct, data.in_top_two
    answer, clarify, handoff = actions == ANSWER, actions == CLARIFY, actions == HANDOFF
    cost = _costs(actions, inside, correct, top_two, policy)
    in_weight = weight[inside].sum()
    out_weight = weight[~inside].sum()
    handed = handoff | (clarify & ~top_two)
    return Outcome(
        threshold=threshold,
        cost=float((weight * cost).sum()),
        decision_accuracy=float(weight[(answer & correct) | (handoff & ~inside)].sum()),
        answered=float(weight[answer].sum()),
        clarified=float(weight[clarify].sum()),
        wrong_answers=float(weight[answer & ~correct].sum()),
        needless_handoffs=float(weight[handoff & inside].sum()),
        in_scope_accuracy=float(weight[answer & correct].sum() / in_weight) if in_weight else None,
        in_scope_resolved=float(weight[(answer & correct) | (clarify & top_two)].sum() / in_weight)
        if in_weight
        else None,
        oos_recall=float(weight[~inside & ~answer].sum() / out_weight) if out_weight else None,
        oos_precision=float(weight[~inside & handed].sum() / weight[handed].sum()) if weight[handed].sum() else None,
    )


def _costs(
    actions: np.ndarray, inside: np.ndarray, correct: np.ndarray, top_two: np.ndarray, policy: DecisionPolicy
) -> np.ndarray:
    answer_cost = np.where(correct, 0.0, policy.wrong_answer_cost)
    handoff_cost = inside.astype(float)
    clarify_cost = policy.clarify_cost + np.where(top_two | ~inside, 0.0, 1.0)
    return np.where(actions == ANSWER, answer_cost, np.where(actions == CLARIFY, clarify_cost, handoff_cost))


def question_outcomes(
    actions: np.ndarray, scores: QuestionScores, truth: np.ndarray, in_scope: np.ndarray
) -> np.ndarray:
    """What each customer got from `actions`: one of `QUESTION_OUTCOMES` per row (the words of `_costs`).

    - `right_answer`: answered from the right intent, or asked a clarifying question whose two offered
      intents include the right one (one click, then the right answer);
    - `right_handoff`: an out-of-scope question handed off, or asked a clarifying question (the customer
      picks *Something else* and is handed off);
    - `needless_handoff`: an in-scope question handed off, or asked a clarifying question without the right
      intent among the options;
    - `wrong_answer`: answered from the wrong intent, and any answer to an out-of-scope question.

    Args:
        actions: `ANSWER` / `CLARIFY` / `HANDOFF` per row (`OperatingPoint.actions`).
        scores: the rows' scores (top and second intent).
        truth: the true class index, -1 for out of scope or a label the model does not know.
        in_scope: the question is in scope for the product: its label is not the out-of-scope label (a label
            the model does not know, a new intent, is in scope: the model can only get it wrong).
    """
    known = truth >= 0
    correct = (scores.top == truth) & known
    top_two = (correct | (scores.second == truth)) & known
    answer, clarify = actions == ANSWER, actions == CLARIFY
    return np.select(
        [~in_scope & answer, ~in_scope, answer & correct, answer, clarify & top_two],
        [WRONG_ANSWER, RIGHT_HANDOFF, RIGHT_ANSWER, WRONG_ANSWER, RIGHT_ANSWER],
        default=NEEDLESS_HANDOFF,
    )


def _candidates(values: np.ndarray) -> np.ndarray:
    finite = np.unique(values[np.isfinite(values)])
    if len(finite) > THRESHOLD_CANDIDATES:
        finite = np.unique(np.quantile(finite, np.linspace(0, 1, THRESHOLD_CANDIDATES)))
    # Between observed values (a threshold on a value answers it), plus "answer all" and "hand off all".
    return np.r_[-np.inf, finite, np.inf]


def best_threshold(data: CalibrationSet, policy: DecisionPolicy, score: str) -> tuple[float, np.ndarray]:
    """The threshold on `score` (no clarification) with the lowest expected cost, and every candidate's cost."""
    values = data.scores.values[score]
    candidates = _candidates(values)
    weight = data.weight / data.weight.sum()
    every = np.ones(len(values), int)
    answer_cost = _costs(every * ANSWER, data.in_scope, data.correct, data.in_top_two, policy)
    handoff_cost = _costs(every * HANDOFF, data.in_scope, data.correct, data.in_top_two, policy)
    # cost(t) = sum of handoff costs of rows below t + answer costs of rows at or above t
    order = np.argsort(values, kind="stable")
    sorted_values = values[order]
    below = np.searchsorted(sorted_values, candidates, side="left")
    cum_handoff = np.r_[0.0, np.cumsum((weight * handoff_cost)[order])]
    cum_answer = np.r_[0.0, np.cumsum((weight * answer_cost)[order])]
    costs = cum_handoff[below] + (cum_answer[-1] - cum_answer[below])
    best = np.flatnonzero(costs <= costs.min() + 1e-12)
    # Among equally good thresholds take the middle one: the least sensitive to a shift between data sets.
    return float(candidates[best[len(best) // 2]]), costs


def choose(data: CalibrationSet, policy: DecisionPolicy, note: str = "") -> Calibration:
    """The operating point with the lowest expected cost on `data` under `policy`, with the curve around it."""
    score = policy.score
    threshold, _ = best_threshold(data, policy, score)
    point = OperatingPoint(score, threshold)
    if policy.clarify:
        point = _with_clarification(point, data, policy)
    candidates = {
        name: outcome(OperatingPoint(name, best_threshold(data, policy, name)[0]), data, policy) for name in SCORES
    }
    return Calibration(
        point=point,
        policy=policy,
        outcome=outcome(point, data, policy),
        rows=data.counts(),
        curve=curve(data, policy, score),
        candidates=candidates,
        auroc=aurocs(data),
        note=note,
    )


def _with_clarification(point: OperatingPoint, data: CalibrationSet, policy: DecisionPolicy) -> OperatingPoint:
    """Add the clarifying region that lowers the cost most while clarifying at most `max_clarify_share`."""
    values = data.scores.values[point.score]
    weight = data.weight / data.weight.sum()
    best_point, best_cost = point, outcome(point, data, policy).cost
    below = _candidates(values[values < point.threshold])[1:-1]  # finite values only
    lows = np.unique(np.r_[below[:: max(1, len(below) // 60)], point.threshold])
    for margin in MARGINS:
        for low in lows:
            candidate = OperatingPoint(point.score, point.threshold, float(low), margin)
            actions = candidate.actions(data.scores)
            if weight[actions == CLARIFY].sum() > policy.max_clarify_share:
                continue
            cost = float((weight * _costs(actions, data.in_scope, data.correct, data.in_top_two, policy)).sum())
            if cost < best_cost - 1e-9:
                best_point, best_cost = candidate, cost
    return best_point


def curve(data: CalibrationSet, policy: DecisionPolicy, score: str, points: int = CURVE_POINTS) -> list[Outcome]:
    """Outcomes of `points` thresholds on `score` (quantiles of its values), without clarification."""
    values = data.scores.values[score]
    finite = values[np.isfinite(values)]
    if not len(finite):
        return []
    thresholds = np.unique(np.quantile(finite, np.linspace(0, 1, points)))
    return [outcome(OperatingPoint(score, float(t)), data, policy) for t in thresholds]


def aurocs(data: CalibrationSet) -> dict[str, float | None]:
    """In-scope vs out-of-scope AUROC of every score on `data` (weighted)."""
    return {name: ood_auroc(data.scores.values[name], data.in_scope, data.weight) for name in SCORES}


def ood_auroc(values: np.ndarray, in_scope: np.ndarray, weight: np.ndarray | None = None) -> float | None:
    """AUROC of telling in-scope (positive) from out-of-scope rows by `values`; None if a side is empty."""
    from sklearn.metrics import roc_auc_score

    in_scope = np.asarray(in_scope, bool)
    if in_scope.all() or not in_scope.any():
        return None
    clean = np.nan_to_num(np.asarray(values, dtype=np.float64), neginf=-1e12, posinf=1e12)
    return float(roc_auc_score(in_scope, clean, sample_weight=weight))


def weights(source: Sequence[str] | np.ndarray, oos_share: float, *, real_enough: int = 100) -> np.ndarray:
    """Row weights: in-scope rows share `1 - oos_share`, out-of-scope rows `oos_share`.

    Within the out-of-scope share, real rows (`validation_oos`, `log_oos`) get `min(1, n_real / real_enough)`;
    the rest goes to simulated rows, `held_out_intent` 0.7 and `generic` 0.3 (all to one when the other is
    missing). Rows of each kind weigh the same.
    """
    source = np.asarray(source)
    real = np.isin(source, ("validation_oos", "log_oos"))
    real_share = min(1.0, real.sum() / real_enough) if real.any() else 0.0
    simulated = {"held_out_intent": 0.7, "generic": 0.3}
    present = {name: share for name, share in simulated.items() if (source == name).any()}
    if not present:
        real_share = 1.0 if real.any() else 0.0
    total_simulated = sum(present.values())
    out = np.zeros(len(source))
    if real.any():
        out[real] = oos_share * real_share / real.sum()
    for name, share in present.items():
        rows = source == name
        out[rows] = oos_share * (1.0 - real_share) * share / total_simulated / rows.sum()
    rows = source == "in_scope"
    if rows.any():
        out[rows] = (1.0 - oos_share) / rows.sum()
    return out


def truth_indices(names: Sequence[str], labels: Sequence[str], out_of_scope_label: str) -> np.ndarray:
    """The class index of each true label, -1 for out of scope (or a label the model does not know)."""
    index = {label: i for i, label in enumerate(labels) if label != out_of_scope_label}
    return np.array([index.get(name, -1) for name in names], dtype=np.int64)


def json_safe(value: Any) -> Any:
    """JSON-safe: NaN -> None, +-inf -> +-1e9 (never reached by a score), in nested dicts and lists too."""
    if isinstance(value, dict):
        return {key: json_safe(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(item) for item in value]
    if isinstance(value, float) and not np.isfinite(value):
        return None if np.isnan(value) else (1e9 if value > 0 else -1e9)
    return value


def describe(decision: dict[str, Any]) -> list[str]:
    """Markdown lines for a stored calibration (`model.info["decision"]`): the chosen point, the policy, the
    rows it was chosen on, the other scores' best points and the curve. Shared by `train`, `eval` and the
    retrain report."""
    if not decision.get("policy"):
        return [
            f"Operating point: `{decision.get('score', 'msp')}` >= {decision.get('threshold', 0):.3f} "
            "(not calibrated: " + (decision.get("note") or "saved before calibration") + ")"
        ]
    policy, point = decision["policy"], OperatingPoint.from_dict(decision)
    lines = [
        f"Operating point: answer when `{point.score}` >= {point.threshold:.3f}"
        + (
            f"; ask a clarifying question when it is >= {point.clarify_threshold:.3f} and below that, or the "
            f"top two intents are less than {point.clarify_margin:.2f} apart"
            if point.clarifies
            else "; no clarifying questions"
        )
        + "; else hand off.",
        f"Policy: a wrong answer costs {policy['wrong_answer_cost']:g} hand-offs, a clarifying question "
        f"{policy['clarify_cost']:g}; out-of-scope share {policy['oos_share']:.0%}.",
        "Chosen on: "
        + ", ".join(f"{count} {name.replace('_', ' ')}" for name, count in decision["rows"].items())
        + " (out-of-scope rows re-weighted to the share).",
    ]
    header = "| | cost | decision accuracy | answered | clarified | wrong answers | needless hand-offs | oos recall |"
    lines += ["", header, "|---|---|---|---|---|---|---|---|"]

    def row(name: str, o: dict[str, Any]) -> str:
        return (
            f"| {name} | {o['cost']:.3f} | {_pct(o['decision_accuracy'])} | {_pct(o['answered'])} | "
            f"{_pct(o['clarified'])} | {_pct(o['wrong_answers'])} | {_pct(o['needless_handoffs'])} | "
            f"{_pct(o['oos_recall'])} |"
        )

    if decision.get("outcome"):
        lines.append(row("**chosen**", decision["outcome"]))
    aurocs = decision.get("auroc") or {}
    for name, o in (decision.get("candidates") or {}).items():
        auroc = aurocs.get(name)
        lines.append(row(f"`{name}` >= {o['threshold']:.3f} (AUROC {'-' if auroc is None else f'{auroc:.3f}'})", o))
    if decision.get("curve"):
        lines += ["", f"Curve (`{point.score}`, no clarification):", "", header, "|---|---|---|---|---|---|---|---|"]
        lines += [row(f">= {o['threshold']:.3f}", o) for o in decision["curve"]]
    return lines


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"
