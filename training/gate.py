"""The promotion gate: may a freshly trained candidate replace the production model?

Both models are evaluated on the same frozen evaluation set, each at its own operating point; the gate compares
the two results and returns a `Decision` with one human-readable reason per failed check (or one saying why it
passes). Two rules (`GatePolicy.rule`, setting `RETRAIN_GATE`):

**`paired`** (the default) decides on what customers get, question by question. Each evaluation question is a
right answer, a right hand-off, a needless hand-off or a wrong answer (`training.calibration.question_outcomes`);
a right answer or a right hand-off is *good*. The frozen set is the same list of questions for both models, so
question i of one is question i of the other, and the test is paired:

1. Overall: b = questions only the candidate gets good, c = questions only production gets good. Under "the
   candidate is no worse" a discordant question is as likely to fall either way, so the exact one-sided
   McNemar test gives p = P(X >= c), X ~ Binomial(b + c, 1/2) (`scipy.stats.binomtest`). p < `alpha`
   (default 0.05) and a drop that is material, i.e. Newcombe's square-and-add 95% interval of the difference in
   good-outcome share (Wilson intervals of both shares, combined with their correlation; Newcombe 1998, method
   10) lying wholly below -`regression_margin` (default 0.02, two points), is a **regression**. The margin is
   there because the questions are not the only noise: the same data trained again with another seed gives
   another validation split and operating point, and such a twin measured 1.5 points worse with p = 0.03 on
   HWU64's 1,076 frozen questions and 1.9 points (interval -2.7 to -1.0) on BANKING77's 3,080 (bench_gate); it
   is not better, so it is not promoted, but it is no regression. The candidate must also be better or equal,
   b >= c; b < c otherwise is "not better, kept production".
2. Per intent: the same exact one-sided test on each intent's questions, for every intent production knows,
   and on the out-of-scope questions (a candidate whose abstention broke answers them: caught here). The
   p-values are corrected for testing many intents with Holm-Bonferroni (family-wise error at `alpha`,
   valid whatever the dependence between intents). Only intents where at least one question changed enter
   the family: an intent where both models got exactly the same questions good has p = 1 whatever happens,
   can never be significant, and would only dilute the others. An intent is **significantly worse** (and blocks)
   when its Holm-adjusted p < `alpha` and its drop is material: the 95% interval of its paired difference lies
   wholly below -`intent_margin` (default 0.10). A significant drop inside the margin is reported, not blocking:
   a candidate that learns five new intents answers a few more out-of-scope questions (on BANKING77 the
   out-of-scope questions' right hand-offs went 239 -> 209 of 320, p = 0.0004 after Holm, while 5 points more
   customers overall got a good outcome); a candidate whose abstention broke turns them all into wrong answers.
   With a dozen questions per intent one or two flipped questions are never significant (p >= 0.25 before any
   correction); an intent broken on purpose is. Intents production does not know (new intents
   introduced by agents) are skipped: production gets none of their questions right, so they can only add to
   b overall.

Promote when every check passes. An evaluation without per-question outcomes (for example scores from a report
written before they were kept) falls back to `margins`, and the reasons say so.

**`margins`** (today's fixed margins, kept as an option):

1. Overall: the candidate's accuracy and macro-F1 may each be at most `tolerance` below production's
   (default 0.005, half a point).
2. Per intent: every intent that production knows and that has at least `min_intent_support` evaluation
   examples may lose at most `max_intent_drop` F1, or one evaluation example's worth (1 / support) when that
   is larger. Intents production does not know never count against the candidate; intents with too little
   support are reported, not checked.

Without a production model the candidate is promoted (there is nothing to compare with), under either rule.

Everything here is plain data, no model: `training.pipeline` turns evaluation reports into `Scores`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

import numpy as np

from training.calibration import GOOD_OUTCOMES
from training.intents import OUT_OF_SCOPE
from training.stats import holm, one_sided_p, paired_difference_interval

if TYPE_CHECKING:
    from training.evaluate import EvalReport

Rule = Literal["paired", "margins"]
RULES: tuple[Rule, ...] = ("paired", "margins")
DEFAULT_ALPHA = 0.05
"""Significance level of the paired rule's tests (overall, and per intent after the Holm correction)."""
DEFAULT_REGRESSION_MARGIN = 0.02
"""How far below production's good-outcome share the whole 95% interval must lie for a drop to be a regression."""
DEFAULT_INTENT_MARGIN = 0.10
"""The same for one intent (or the out-of-scope questions): how far below its share a significant drop must lie."""
DEFAULT_TOLERANCE = 0.005
"""Margins rule: how far overall accuracy / macro-F1 may fall below production's and still count as "not worse"."""


@dataclass(frozen=True)
class Scores:
    """One model's results on the frozen evaluation set.

    Args:
        accuracy: share of evaluation examples labelled correctly.
        macro_f1: unweighted mean of the per-label F1.
        per_intent_f1: F1 of each label present in the evaluation set.
        support: number of evaluation examples of each label.
        labels: the labels the model can predict (its label set); decides which intents are "new".
        outcomes: what each evaluation question got at the model's operating point (`EvalReport.outcomes_by_question`);
            empty when unknown (the paired rule then falls back to the margins).
        truth: the true label of each evaluation question, in the same order.
        out_of_scope_label: the label of out-of-scope questions.
    """

    accuracy: float
    macro_f1: float
    per_intent_f1: Mapping[str, float]
    support: Mapping[str, int]
    labels: Collection[str] = ()
    outcomes: Sequence[str] = ()
    truth: Sequence[str] = ()
    out_of_scope_label: str = OUT_OF_SCOPE

    @property
    def good(self) -> np.ndarray:
        """Per question: the outcome is a right answer or a right hand-off."""
        return np.isin(np.asarray(self.outcomes, dtype=object), list(GOOD_OUTCOMES))

    @classmethod
    def from_eval(cls, report: EvalReport, labels: Collection[str]) -> Scores:
        """The scores of a `training.evaluate.EvalReport`; `labels` is the evaluated model's label set."""
        return cls(
            accuracy=report.accuracy,
            macro_f1=report.macro_f1,
            per_intent_f1={name: metrics.f1 for name, metrics in report.per_intent.items()},
            support={name: metrics.support for name, metrics in report.per_intent.items() if metrics.support > 0},
            labels=tuple(labels),
            outcomes=tuple(report.outcomes_by_question),
            truth=tuple(report.truth),
            out_of_scope_label=report.out_of_scope_label,
        )


@dataclass(frozen=True)
class GatePolicy:
    """Which rule decides, and its thresholds (see the module docstring).

    Args:
        rule: `paired` (per-question outcomes, exact tests; the default) or `margins` (fixed F1/accuracy margins).
        alpha: significance level of the paired rule (overall test, and per intent after the Holm correction).
        regression_margin: paired rule: a significant overall drop is a regression only when its 95% interval
            lies wholly below minus this share (a smaller one is "not better").
        intent_margin: paired rule: the same for one intent's (or the out-of-scope) questions: a significant
            drop blocks only when its interval lies wholly below minus this share.
        tolerance: margins rule: largest allowed drop of overall accuracy and of macro-F1.
        max_intent_drop: margins rule: largest allowed F1 drop of one sufficiently supported intent.
        min_intent_support: margins rule: evaluation examples an intent needs before its F1 drop is checked.
    """

    rule: Rule = "paired"
    alpha: float = DEFAULT_ALPHA
    regression_margin: float = DEFAULT_REGRESSION_MARGIN
    intent_margin: float = DEFAULT_INTENT_MARGIN
    tolerance: float = DEFAULT_TOLERANCE
    max_intent_drop: float = 0.05
    min_intent_support: int = 5

    def __post_init__(self) -> None:
        if self.rule not in RULES:
            raise ValueError(f"unknown gate rule {self.rule!r}; use one of {', '.join(RULES)}")
        if not 0.0 < self.alpha < 1.0:
            raise ValueError(f"alpha must be in (0, 1), got {self.alpha}")
        if not 0.0 <= self.regression_margin < 1.0:
            raise ValueError(f"regression_margin must be in [0, 1), got {self.regression_margin}")
        if not 0.0 <= self.intent_margin < 1.0:
            raise ValueError(f"intent_margin must be in [0, 1), got {self.intent_margin}")
        if not 0.0 <= self.tolerance <= 1.0:
            raise ValueError(f"tolerance must be in [0, 1], got {self.tolerance}")
        if not 0.0 <= self.max_intent_drop <= 1.0:
            raise ValueError(f"max_intent_drop must be in [0, 1], got {self.max_intent_drop}")
        if self.min_intent_support < 1:
            raise ValueError(f"min_intent_support must be at least 1, got {self.min_intent_support}")


@dataclass(frozen=True)
class Check:
    """One rule of the gate applied to one quantity.

    Attributes:
        name: `overall` or `intent:<label>` (paired rule); `accuracy`, `macro-F1` or `f1:<label>` (margins).
        passed: the check lets the candidate through.
        candidate: the candidate's figure (paired: share of good outcomes; margins: accuracy or F1).
        production: production's figure.
        detail: the numbers and the verdict in words.
        p_value: paired rule: the test's p-value (per intent: Holm-adjusted).
        raw_p_value: paired rule, per intent: the p-value before the Holm correction.
        interval: paired rule, overall: the 95% interval of the difference in good-outcome share.
        better: paired rule: questions only the candidate gets good (b).
        worse: paired rule: questions only production gets good (c).
        questions: paired rule: questions compared.
        verdict: the verdict in a few words (the report's column); `detail` says it in a sentence.
    """

    name: str
    passed: bool
    candidate: float | None
    production: float | None
    detail: str
    p_value: float | None = None
    raw_p_value: float | None = None
    interval: tuple[float, float] | None = None
    better: int | None = None
    worse: int | None = None
    questions: int | None = None
    verdict: str = ""


@dataclass(frozen=True)
class Decision:
    """The gate's verdict.

    Attributes:
        promote: True when the candidate may replace production.
        reasons: one line per failed check (or one line saying why it passes), for logs, reports and Slack.
        checks: every check made, passed or not.
        skipped: intents not checked, with why (new intent, too little support).
        rule: the rule that decided (`paired` or `margins`; empty without production).
        alpha: the paired rule's significance level.
    """

    promote: bool
    reasons: list[str]
    checks: list[Check] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)
    rule: str = ""
    alpha: float = DEFAULT_ALPHA

    @property
    def failed(self) -> list[Check]:
        """The checks that failed."""
        return [check for check in self.checks if not check.passed]


def decide(candidate: Scores, production: Scores | None, policy: GatePolicy | None = None) -> Decision:
    """Decide whether `candidate` may replace `production`.

    Args:
        candidate: the candidate's scores on the frozen evaluation set.
        production: production's scores on the same set, or None when there is no production model yet.
        policy: the rule and its thresholds; the defaults (paired rule) when None.

    Returns:
        The decision with its reasons.

    Example:
        >>> truth = ("a",) * 10 + ("b",) * 10
        >>> old = Scores(0.9, 0.9, {}, {"a": 10, "b": 10}, ("a", "b"), ("right_answer",) * 20, truth)
        >>> one_worse = ("wrong_answer",) + ("right_answer",) * 19
        >>> decide(dataclasses.replace(old, outcomes=one_worse), old).reasons[0][:42]
        'not better (within noise), kept production'
    """
    policy = policy or GatePolicy()
    if production is None:
        return Decision(promote=True, reasons=["no production model yet: the first trained model is promoted"])
    if policy.rule == "margins":
        return _margins(candidate, production, policy)
    unpaired = _unpaired(candidate, production)
    if unpaired:
        decision = _margins(candidate, production, policy)
        note = f"{unpaired}: the fixed margins decided instead of the paired test"
        return dataclasses.replace(decision, reasons=[note, *decision.reasons])
    return _paired(candidate, production, policy)


def _unpaired(candidate: Scores, production: Scores) -> str | None:
    """Why the two evaluations cannot be compared question by question (None when they can)."""
    for name, scores in (("production", production), ("the candidate", candidate)):
        if not scores.outcomes or len(scores.outcomes) != len(scores.truth):
            return f"{name}'s evaluation has no per-question outcomes"
    if tuple(candidate.truth) != tuple(production.truth):
        return "the two evaluations are not on the same questions"
    return None


# --- the paired rule ---------------------------------------------------------------------------------------


def _paired(candidate: Scores, production: Scores, policy: GatePolicy) -> Decision:
    alpha = policy.alpha
    new, old = candidate.good, production.good
    truth = np.asarray(candidate.truth, dtype=object)
    overall = _overall_paired(new, old, alpha, policy.regression_margin)

    oos = candidate.out_of_scope_label
    known = set(production.labels) or set(production.per_intent_f1)
    skipped: dict[str, str] = {}
    groups: list[tuple[str, int, int, int, int, int]] = []  # intent, questions, good before/after, b, c
    for intent in sorted(set(truth)):
        if intent != oos and intent not in known:
            skipped[intent] = "new intent (production does not know it)"
            continue
        rows = truth == intent
        b, c = int((new[rows] & ~old[rows]).sum()), int((~new[rows] & old[rows]).sum())
        groups.append((intent, int(rows.sum()), int(old[rows].sum()), int(new[rows].sum()), b, c))

    raw = {intent: one_sided_p(c, b + c) for intent, _, _, _, b, c in groups}
    adjusted = holm({intent: raw[intent] for intent, _, _, _, b, c in groups if b + c})
    family = len(adjusted)
    checks = [overall]
    margin = policy.intent_margin
    for intent, questions, before, after, b, c in groups:
        p, adj = raw[intent], adjusted.get(intent, 1.0)
        what = f"out-of-scope questions ({intent!r})" if intent == oos else f"intent {intent!r}"
        detail = f"{what}: good outcomes {before}/{questions} -> {after}/{questions}"
        low, high = paired_difference_interval(before - c, b, c, questions - before - b)
        blocks = adj < alpha and high < -margin
        if b + c == 0:
            verdict = "no question changed"
        else:
            detail += (
                f" ({b} better, {c} worse; difference {(b - c) / questions:+.3f}, 95% CI {low:+.3f} to {high:+.3f}; "
                f"one-sided exact McNemar p = {_p(p)}, Holm-adjusted over {family} intents p = {_p(adj)})"
            )
            if blocks:
                verdict = f"significantly worse (adjusted p < {alpha:g}, the whole interval below -{margin:g})"
            elif adj < alpha:
                verdict = f"worse, significant but by less than the {margin:g} margin (not blocking)"
            elif c > b:
                verdict = "worse within noise, not significant"
            else:
                verdict = "better" if b > c else "even"
        detail += f": {verdict}"
        checks.append(
            Check(
                f"intent:{intent}",
                not blocks,
                after / questions,
                before / questions,
                detail,
                p_value=adj,
                raw_p_value=p,
                interval=(low, high),
                better=b,
                worse=c,
                questions=questions,
                verdict=verdict,
            )
        )

    failed = [check for check in checks if not check.passed]
    if failed:
        reasons = [check.detail for check in failed]
    else:
        reasons = [
            f"{overall.detail}; no intent significantly worse (Holm-adjusted p >= {alpha:g}, or a drop within "
            f"the {policy.intent_margin:g} margin, on every one of the {family} intents where a question changed)"
        ]
    return Decision(promote=not failed, reasons=reasons, checks=checks, skipped=skipped, rule="paired", alpha=alpha)


def _overall_paired(new: np.ndarray, old: np.ndarray, alpha: float, margin: float) -> Check:
    n = len(new)
    both, b, c = int((new & old).sum()), int((new & ~old).sum()), int((~new & old).sum())
    neither = n - both - b - c
    p = one_sided_p(c, b + c)
    low, high = paired_difference_interval(both, b, c, neither)
    before, after = both + c, both + b
    numbers = (
        f"good outcomes {before / n:.3f} -> {after / n:.3f} ({before}/{n} -> {after}/{n} questions; {b} better, "
        f"{c} worse), difference {(b - c) / n:+.3f} (95% CI {low:+.3f} to {high:+.3f}), one-sided exact McNemar "
        f"p = {_p(p)}"
    )
    if b >= c:
        verdict, detail = "better or equal", f"better or equal overall: {numbers}"
    elif p < alpha and high < -margin:
        verdict = "regression"
        detail = f"regression overall: {numbers} < {alpha:g}, the whole interval below -{margin:g}"
    elif p < alpha:
        verdict = "not better (worse by less than the regression margin), kept production"
        detail = f"{verdict}: {numbers} < {alpha:g} but the interval reaches above -{margin:g}, not a regression"
    else:
        verdict = "not better (within noise), kept production"
        detail = f"{verdict}: {numbers} >= {alpha:g}, not a regression"
    return Check(
        "overall",
        b >= c,
        after / n,
        before / n,
        detail,
        p_value=p,
        interval=(low, high),
        better=b,
        worse=c,
        questions=n,
        verdict=verdict,
    )


def _p(value: float) -> str:
    return f"{value:.2g}" if value < 0.001 else f"{value:.3f}"


# --- the margins rule --------------------------------------------------------------------------------------


def _margins(candidate: Scores, production: Scores, policy: GatePolicy) -> Decision:
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
        verdict = "within the margin" if passed else f"drops by {drop:.3f} > {allowed:.3f}"
        if not passed:
            detail += f": {verdict}"
        checks.append(Check(f"f1:{intent}", passed, new, old, detail, verdict=verdict))

    failed = [check for check in checks if not check.passed]
    if failed:
        reasons = [check.detail for check in failed]
    else:
        reasons = [
            f"not worse: accuracy {production.accuracy:.3f} -> {candidate.accuracy:.3f}, macro-F1 "
            f"{production.macro_f1:.3f} -> {candidate.macro_f1:.3f}; no supported intent dropped by more than "
            f"{policy.max_intent_drop:.3f} F1"
        ]
    return Decision(promote=not failed, reasons=reasons, checks=checks, skipped=skipped, rule="margins")


def _overall(name: str, new: float, old: float, tolerance: float) -> Check:
    drop = old - new
    passed = drop <= tolerance + 1e-12
    detail = f"{name} {old:.3f} -> {new:.3f}"
    verdict = "within the tolerance" if passed else f"drops by {drop:.3f} > tolerance {tolerance:.3f}"
    if not passed:
        detail += f": {verdict}"
    return Check(name, passed, new, old, detail, verdict=verdict)
