"""The nightly run's report: a Markdown page with PNG plots, written into the candidate's version directory.

Contents: the gate's decision and reasons, each of the gate's checks with its numbers, p-value or interval and
verdict in words (with the paired rule: what customers got from each model, question by question), overall
metrics of production and candidate on the frozen evaluation set, where the training data came from,
per-intent F1 old vs new (table + plot), the confusion cells that changed most (table + plot) and accuracy
across the versions in the registry (plot).

Plain values in, files out: `training.pipeline` gathers the numbers.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from matplotlib.axes import Axes
from matplotlib.figure import Figure

from training.calibration import QUESTION_OUTCOMES, describe
from training.gate import Check, Decision, Scores
from training.locations import HTML_FILE, REPORT_FILE

if TYPE_CHECKING:
    from training.evaluate import EvalReport

Confusion = Mapping[tuple[str, str], int]
"""(true label, predicted label) -> number of evaluation examples."""

F1_PLOT = "f1_per_intent.png"
CONFUSION_PLOT = "confusion_changes.png"
HISTORY_PLOT = "accuracy_history.png"


@dataclass(frozen=True)
class HistoryPoint:
    """One registry version's evaluation figures (measured when it was trained)."""

    version: str
    created_at: datetime | None
    accuracy: float | None
    macro_f1: float | None
    status: str


@dataclass(frozen=True)
class ConfusionChange:
    """A (true, predicted) cell whose count differs between production and the candidate."""

    true: str
    predicted: str
    before: int
    after: int

    @property
    def delta(self) -> int:
        return self.after - self.before


def confusion_from_eval(report: EvalReport) -> dict[tuple[str, str], int]:
    """The non-zero cells of an `EvalReport`'s confusion matrix as {(true, predicted): count}."""
    names = report.confusion_labels
    return {
        (names[row], names[column]): count
        for row, counts in enumerate(report.confusion)
        for column, count in enumerate(counts)
        if count
    }


def confusion_changes(before: Confusion | None, after: Confusion, *, top: int = 10) -> list[ConfusionChange]:
    """The `top` off-diagonal cells whose counts changed most (by absolute change, then by name).

    Example:
        >>> old = {("a", "b"): 3, ("a", "a"): 5}
        >>> new = {("a", "b"): 1, ("b", "a"): 1, ("a", "a"): 7}
        >>> [(c.true, c.predicted, c.delta) for c in confusion_changes(old, new)]
        [('a', 'b', -2), ('b', 'a', 1)]
    """
    before = before or {}
    cells = {cell for cell in (*before, *after) if cell[0] != cell[1]}
    changes = [
        ConfusionChange(true, predicted, before.get((true, predicted), 0), after.get((true, predicted), 0))
        for true, predicted in cells
    ]
    changes = [change for change in changes if change.delta != 0]
    changes.sort(key=lambda change: (-abs(change.delta), change.true, change.predicted))
    return changes[:top]


def write_report(
    out_dir: str | Path,
    *,
    candidate_version: str,
    candidate: Scores,
    candidate_confusion: Confusion,
    decision: Decision,
    production_version: str | None = None,
    production: Scores | None = None,
    production_confusion: Confusion | None = None,
    provenance: Mapping[str, int] | None = None,
    new_intents: Sequence[str] = (),
    history: Sequence[HistoryPoint] = (),
    operating_point: Mapping[str, object] | None = None,
    notes: Sequence[str] = (),
) -> Path:
    """Write `report.md` and its PNG plots into `out_dir` (created if needed).

    Args:
        out_dir: where to write (the candidate's version directory, or a folder in it).
        candidate_version: the candidate's registry version.
        candidate: the candidate's scores on the frozen evaluation set.
        candidate_confusion: its confusion counts.
        decision: the gate's decision.
        production_version: production's version, None when there is none.
        production: production's scores on the same set.
        production_confusion: production's confusion counts.
        provenance: where the training examples came from (`FeedbackDataset.provenance`).
        new_intents: intents introduced by agents in this run.
        history: registry versions, oldest first (the candidate is appended if missing).
        operating_point: the candidate's calibration (`model.info["decision"]`).
        notes: extra lines (timings, index rebuild, warnings).

    Returns:
        The path of `report.md`.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    changes = confusion_changes(production_confusion, candidate_confusion)
    points = list(history)
    if not any(point.version == candidate_version for point in points):
        points.append(HistoryPoint(candidate_version, None, candidate.accuracy, candidate.macro_f1, "candidate"))

    _plot_f1(out / F1_PLOT, candidate, production)
    _plot_confusion(out / CONFUSION_PLOT, changes)
    _plot_history(out / HISTORY_PLOT, points)

    verdict = "PROMOTED" if decision.promote else "REJECTED"
    lines = [f"# Retraining report: {candidate_version}", "", f"**Decision: {verdict}**", ""]
    lines += [f"- {reason}" for reason in decision.reasons]
    lines += _gate_section(decision, candidate, production)
    lines += ["", "## Overall (frozen evaluation set)", ""]
    lines += ["| | production | candidate |", "|---|---|---|"]
    lines.append(f"| version | {production_version or '(none)'} | {candidate_version} |")
    for name, new, old in [
        ("accuracy", candidate.accuracy, production.accuracy if production else None),
        ("macro-F1", candidate.macro_f1, production.macro_f1 if production else None),
    ]:
        lines.append(f"| {name} | {_fmt(old)} | {_fmt(new)} |")
    before = sum(production.support.values()) if production else "-"
    lines.append(f"| evaluation examples | {before} | {sum(candidate.support.values())} |")
    if operating_point:
        lines += ["", "## Operating point (candidate, chosen on its calibration data)", ""]
        lines += describe(dict(operating_point))
    if provenance:
        lines += ["", "## Training data", "", "| | count |", "|---|---|"]
        lines += [f"| {key.replace('_', ' ')} | {value} |" for key, value in provenance.items()]
    if new_intents:
        lines += ["", "New intents introduced by agents: " + ", ".join(f"`{name}`" for name in new_intents)]
    lines += ["", "## Per-intent F1", "", f"![per-intent F1]({F1_PLOT})", ""]
    lines += ["| intent | support | production | candidate | change | gate |", "|---|---|---|---|---|---|"]
    results = {
        check.name.split(":", 1)[1]: check for check in decision.checks if check.name.startswith(("f1:", "intent:"))
    }
    for intent in _intents(candidate, production):
        new_f1 = candidate.per_intent_f1.get(intent)
        old_f1 = production.per_intent_f1.get(intent) if production else None
        change = "" if new_f1 is None or old_f1 is None else f"{new_f1 - old_f1:+.3f}"
        if intent in results:
            gate = "ok" if results[intent].passed else "**FAIL**"
        else:
            gate = decision.skipped.get(intent, "")
        support = candidate.support.get(intent, 0)
        lines.append(f"| `{intent}` | {support} | {_fmt(old_f1)} | {_fmt(new_f1)} | {change} | {gate} |")
    lines += ["", "## Biggest confusion changes", "", f"![confusion changes]({CONFUSION_PLOT})", ""]
    if changes:
        lines += ["| true | predicted as | production | candidate | change |", "|---|---|---|---|---|"]
        lines += [f"| `{c.true}` | `{c.predicted}` | {c.before} | {c.after} | {c.delta:+d} |" for c in changes]
    else:
        lines.append("No off-diagonal cell changed.")
    lines += ["", "## Accuracy across versions", "", f"![accuracy across versions]({HISTORY_PLOT})", ""]
    lines.append("Each version's figures were measured on the evaluation set as it was when that version was trained.")
    if notes:
        lines += ["", "## Notes", ""] + [f"- {note}" for note in notes]
    path = out / REPORT_FILE
    markdown = "\n".join(lines) + "\n"
    path.write_text(markdown, encoding="utf-8")
    write_html(markdown, out, title=f"Retraining report: {candidate_version}")
    return path


_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>
body {{ font: 15px/1.5 system-ui, sans-serif; color: #1d2733; max-width: 1100px; margin: 2em auto; padding: 0 1em; }}
h1, h2 {{ color: #1d3b5a; }} h2 {{ border-bottom: 1px solid #d8dee6; padding-bottom: .2em; margin-top: 1.6em; }}
table {{ border-collapse: collapse; margin: .8em 0; }}
th, td {{ border: 1px solid #d8dee6; padding: .3em .7em; text-align: left; vertical-align: top; }}
th {{ background: #eef2f6; }} tr:nth-child(even) td {{ background: #f8fafc; }}
img {{ max-width: 100%; border: 1px solid #d8dee6; }} code {{ background: #eef2f6; padding: 0 .2em; }}
</style></head><body>
{body}</body></html>
"""


def write_html(markdown: str, out: Path, *, title: str) -> Path:
    """`out/report.html`: `markdown` rendered (tables included) into one page whose PNG plots (files in `out`) are
    inlined as data URIs, so the page can be mailed, attached or served on its own."""
    import base64
    import html
    import re

    from markdown_it import MarkdownIt

    body = MarkdownIt("commonmark", {"html": False}).enable("table").render(markdown)

    def inline(match: re.Match[str]) -> str:
        image = out / match.group(1)
        if not image.is_file():
            return match.group(0)
        return 'src="data:image/png;base64,' + base64.b64encode(image.read_bytes()).decode("ascii") + '"'

    body = re.sub(r'src="([\w.-]+\.png)"', inline, body)
    path = out / HTML_FILE
    path.write_text(_PAGE.format(title=html.escape(title), body=body), encoding="utf-8")
    return path


OUTCOME_NAMES = {
    "right_answer": "right answers",
    "right_handoff": "right hand-offs",
    "needless_handoff": "needless hand-offs",
    "wrong_answer": "wrong answers",
}


def _gate_section(decision: Decision, candidate: Scores, production: Scores | None) -> list[str]:
    """The gate's rule and every check it made: numbers, p-value or interval, verdict in words."""
    if not decision.checks:
        return []
    lines = ["", "## The gate", ""]
    if decision.rule == "paired":
        lines.append(
            "Rule: paired, on what each customer got from each model on the same questions. Overall: exact "
            "one-sided McNemar test on the questions only one model gets good (a right answer or a right "
            f"hand-off), regression when p < {decision.alpha:g}; the difference in good-outcome share with "
            "Newcombe's 95% interval for paired proportions. Per intent: the same test on its questions, "
            "Holm-Bonferroni corrected across the intents where a question changed."
        )
        lines += ["", "| outcome | production | candidate |", "|---|---|---|"]
        for name in QUESTION_OUTCOMES:
            old = production.outcomes.count(name) if production else 0
            lines.append(f"| {OUTCOME_NAMES[name]} | {old} | {candidate.outcomes.count(name)} |")
        lines += [
            "",
            "| check | production | candidate | better / worse | p-value | 95% interval | verdict |",
            "|---|---|---|---|---|---|---|",
        ]
        changed = [c for c in decision.checks if c.name == "overall" or c.better or c.worse]
        unchanged = len(decision.checks) - len(changed)
        intents = sorted(changed[1:], key=lambda c: (c.p_value if c.p_value is not None else 1.0, c.name))
        lines += [_paired_row(check) for check in changed[:1] + intents]
        if unchanged:
            lines += [
                "",
                f"{unchanged} more {'intent' if unchanged == 1 else 'intents'} (out-of-scope questions included) "
                "where no question changed: p = 1, not in the Holm family.",
            ]
    else:
        lines.append(
            "Rule: fixed margins (accuracy and macro-F1 within the tolerance, per-intent F1 within the margin; "
            "per-intent results in the F1 table below)."
        )
        lines += ["", "| check | production | candidate | verdict |", "|---|---|---|---|"]
        for check in decision.checks:
            if not check.name.startswith("f1:"):
                lines.append(
                    f"| {check.name} | {_fmt(check.production)} | {_fmt(check.candidate)} | "
                    f"{'ok' if check.passed else '**FAIL**'}: {check.verdict} |"
                )
    return lines


def _paired_row(check: Check) -> str:
    name = "overall" if check.name == "overall" else f"`{check.name.removeprefix('intent:')}`"
    p = "-" if check.p_value is None else f"{check.p_value:.3g}"
    if check.raw_p_value is not None and check.name != "overall":
        p += f" (raw {check.raw_p_value:.3g})"
    interval = "" if check.interval is None else f"{check.interval[0]:+.3f} to {check.interval[1]:+.3f}"
    verdict = ("ok" if check.passed else "**FAIL**") + f": {check.verdict}"
    return (
        f"| {name} | {_fmt(check.production)} | {_fmt(check.candidate)} | {check.better} / {check.worse} | {p} | "
        f"{interval} | {verdict} |"
    )


def _fmt(value: float | None) -> str:
    return "-" if value is None or math.isnan(value) else f"{value:.3f}"


def _intents(candidate: Scores, production: Scores | None) -> list[str]:
    names = set(candidate.support) | set(candidate.per_intent_f1)
    if production is not None:
        names |= set(production.per_intent_f1)
    return sorted(names)


def _figure(height: float) -> tuple[Figure, Axes]:
    figure = Figure(figsize=(8, height))  # no pyplot: no global state, safe in any thread
    return figure, figure.subplots()


def _save(figure: Figure, path: Path) -> None:
    figure.tight_layout()
    figure.savefig(path, dpi=100)


def _plot_f1(path: Path, candidate: Scores, production: Scores | None) -> None:
    intents = _intents(candidate, production)
    figure, axes = _figure(max(2.5, 0.28 * len(intents) + 1.2))
    ys = list(range(len(intents)))
    new = [candidate.per_intent_f1.get(name, 0.0) for name in intents]
    if production is not None:
        old = [production.per_intent_f1.get(name, 0.0) for name in intents]
        axes.barh([y + 0.2 for y in ys], old, height=0.4, label="production", color="#9aa5b1")
        axes.barh([y - 0.2 for y in ys], new, height=0.4, label="candidate", color="#2f6fdf")
    else:
        axes.barh(ys, new, height=0.6, label="candidate", color="#2f6fdf")
    axes.set_yticks(ys, intents, fontsize=7)
    axes.invert_yaxis()
    axes.set_xlim(0, 1)
    axes.set_xlabel("F1 on the frozen evaluation set")
    axes.legend(loc="best", fontsize=8)
    _save(figure, path)


def _plot_confusion(path: Path, changes: Sequence[ConfusionChange]) -> None:
    figure, axes = _figure(max(2.5, 0.35 * len(changes) + 1.2))
    if changes:
        names = [f"{c.true} → {c.predicted}" for c in changes]
        colors = ["#2e9d5b" if c.delta < 0 else "#d64545" for c in changes]
        axes.barh(range(len(changes)), [c.delta for c in changes], color=colors)
        axes.set_yticks(range(len(changes)), names, fontsize=7)
        axes.invert_yaxis()
        axes.axvline(0, color="black", linewidth=0.8)
        axes.set_xlabel("change in errors (candidate - production); green = fewer")
    else:
        axes.text(0.5, 0.5, "no confusion cell changed", ha="center", va="center")
        axes.set_axis_off()
    _save(figure, path)


def _plot_history(path: Path, points: Sequence[HistoryPoint]) -> None:
    figure, axes = _figure(3.2)
    xs = list(range(len(points)))
    for name, values, style in [
        ("accuracy", [p.accuracy for p in points], "o-"),
        ("macro-F1", [p.macro_f1 for p in points], "s--"),
    ]:
        axes.plot(xs, [math.nan if v is None else v for v in values], style, label=name)
    for x, point in zip(xs, points, strict=True):
        if point.status == "production":
            axes.axvline(x, color="#2e9d5b", alpha=0.3, linewidth=6)
    axes.set_xticks(xs, [p.version for p in points], rotation=30, ha="right", fontsize=7)
    axes.set_ylim(0, 1.02)
    axes.set_ylabel("on its evaluation set")
    axes.legend(loc="lower right", fontsize=8)
    _save(figure, path)
