"""The promotion gate: may a freshly trained candidate replace the production model?

Both models are evaluated on the same frozen evaluation set; the gate compares the two results and returns a
`Decision` with one human-readable reason per check. The rules:

1. Overall: the candidate's accuracy and macro-F1 may each be at most `tolerance` below production's
   (default 0.005, half a point: on a few hundred evaluation questions that is about one question, so
   evaluation noise does not block an equivalent model, while a real regression does).
2. Per intent: every intent that production knows and that has at least `min_intent_support` evaluation
   examples may lose at most `max_intent_drop` F1, or one evaluation example's worth (1 / support) when that
   is larger: with a handful of examples per intent, one flipped question moves F1 by more than any useful
   margin, and a gate that blocks on that blocks every clearly better model (seen in bench_retrain: 77 intents
   with ~5 examples each, a candidate +11 points overall rejected for one question). Intents production does
   not know (new intents introduced by agents) never count against the candidate; intents with too little
   support are reported, not checked.
3. Without a production model the candidate is promoted (there is nothing to compare with).

Everything here is plain data, no model: `training.pipeline` turns evaluation reports into `Scores`.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from training.evaluate import EvalReport

DEFAULT_TOLERANCE = 0.005
"""How far overall accuracy / macro-F1 may fall below production's and still count as "not worse"."""


@dataclass(frozen=True)
class Scores:
    """One model's results on the frozen evaluation set.

    Args:
        accuracy: share of evaluation examples labelled correctly.
        macro_f1: unweighted mean of the per-label F1.
        per_intent_f1: F1 of each label present in the evaluation set.
        support: number of evaluation examples of each label.
        labels: the labels the model can predict (its label set); decides which intents are "new".
    """

    accuracy: float
    macro_f1: float
    per_intent_f1: Mapping[str, float]
    support: Mapping[str, int]
    labels: Collection[str] = ()

    @classmethod
    def from_eval(cls, report: EvalReport, labels: Collection[str]) -> Scores:
        """The scores of a `training.evaluate.EvalReport`; `labels` is the evaluated model's label set."""
        return cls(
            accuracy=report.accuracy,
            macro_f1=report.macro_f1,
            per_intent_f1={name: metrics.f1 for name, metrics in report.per_intent.items()},
            support={name: metrics.support for name, metrics in report.per_intent.items() if metrics.support > 0},
            labels=tuple(labels),
        )


@dataclass(frozen=True)
class GatePolicy:
    """The thresholds of the gate (see the module docstring).

    Args:
        tolerance: largest allowed drop of overall accuracy and of macro-F1.
        max_intent_drop: largest allowed F1 drop of one sufficiently supported intent.
        min_intent_support: evaluation examples an intent needs before its F1 drop is checked.
    """

    tolerance: float = DEFAULT_TOLERANCE
    max_intent_drop: float = 0.05
    min_intent_support: int = 5

    def __post_init__(self) -> None:
        if not 0.0 <= self.tolerance <= 1.0:
            raise ValueError(f"tolerance must be in [0, 1], got {self.tolerance}")
        if not 0.0 <= self.max_intent_drop <= 1.0:
            raise ValueError(f"max_intent_drop must be in [0, 1], got {self.max_intent_drop}")
        if self.min_intent_support < 1:
            raise ValueError(f"min_intent_support must be at least 1, got {self.min_intent_support}")


@dataclass(frozen=True)
class Check:
    """One rule of the gate applied to one quantity."""

    name: str
    passed: bool
    candidate: float | None
    production: float | None
    detail: str


@dataclass(frozen=True)
class Decision:
    """The gate's verdict.

    Attributes:
        promote: True when the candidate may replace production.
        reasons: one line per failed check (or one line saying why it passes), for logs, reports and Slack.
        checks: every check made, passed or not.
        skipped: intents not checked, with why (new intent, too little support).
    """

    promote: bool
    reasons: list[str]
    checks: list[Check] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)

    @property
    def failed(self) -> list[Check]:
        """The checks that failed."""
        return [check for check in self.checks if not check.passed]


def decide(candidate: Scores, production: Scores | None, policy: GatePolicy | None = None) -> Decision:
    """Decide whether `candidate` may replace `production`.

    Args:
        candidate: the candidate's scores on the frozen evaluation set.
        production: production's scores on the same set, or None when there is no production model yet.
        policy: thresholds; the defaults when None.

    Returns:
        The decision with its reasons.

    Example:
        >>> old = Scores(0.90, 0.88, {"a": 0.9, "b": 0.86}, {"a": 10, "b": 10}, labels=("a", "b"))
        >>> new = Scores(0.92, 0.91, {"a": 0.95, "b": 0.80}, {"a": 10, "b": 10}, labels=("a", "b"))
        >>> decide(new, old).promote
        False
    """
    policy = policy or GatePolicy()
    if production is None:
        return Decision(promote=True, reasons=["no production model yet: the first trained model is promoted"])

    checks = [
        _overall("accuracy", candidate.accuracy, production.accuracy, policy.tolerance),
        _overall("macro-F1", candidate.macro_f1, production.macro_f1, policy.tolerance),
    ]
    skipped: dict[str, str] = {}
    known = set(production.labels) or set(production.per_intent_f1)
    for intent in sorted(set(candidate.support) | set(production.support)):
        support = candidate.support.get(intent, production.support.get(intent, 0))
        if intent not in known:
            skipped[intent] = "new intent (production does not know it)"
            continue
        if support < policy.min_intent_support:
            skipped[intent] = f"only {support} evaluation examples (< {policy.min_intent_support})"
            continue
        new = candidate.per_intent_f1.get(intent, 0.0)
        old = production.per_intent_f1.get(intent, 0.0)
        drop = old - new
        allowed = max(policy.max_intent_drop, 1.0 / support)
        passed = drop <= allowed + 1e-12
        detail = f"intent {intent!r} F1 {old:.3f} -> {new:.3f} (support {support})"
        if not passed:
            detail += f": drops by {drop:.3f} > {allowed:.3f}"
        checks.append(Check(f"f1:{intent}", passed, new, old, detail))

    failed = [check for check in checks if not check.passed]
    if failed:
        reasons = [check.detail for check in failed]
    else:
        reasons = [
            f"not worse: accuracy {production.accuracy:.3f} -> {candidate.accuracy:.3f}, macro-F1 "
            f"{production.macro_f1:.3f} -> {candidate.macro_f1:.3f}; no supported intent dropped by more than "
            f"{policy.max_intent_drop:.3f} F1"
        ]
    return Decision(promote=not failed, reasons=reasons, checks=checks, skipped=skipped)


def _overall(name: str, new: float, old: float, tolerance: float) -> Check:
    drop = old - new
    passed = drop <= tolerance + 1e-12
    detail = f"{name} {old:.3f} -> {new:.3f}"
    if not passed:
        detail += f": drops by {drop:.3f} > tolerance {tolerance:.3f}"
    return Check(name, passed, new, old, detail)
