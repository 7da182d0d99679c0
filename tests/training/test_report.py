"""The retraining report: Markdown content and its PNG plots, from plain numbers."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from training.gate import GatePolicy, Scores, decide
from training.report import (
    CONFUSION_PLOT,
    F1_PLOT,
    HISTORY_PLOT,
    HistoryPoint,
    confusion_changes,
    write_report,
)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"

PRODUCTION = Scores(0.80, 0.78, {"billing": 0.9, "login": 0.7}, {"billing": 20, "login": 6}, ("billing", "login"))
CANDIDATE = Scores(
    0.85, 0.80, {"billing": 0.8, "login": 0.9, "student": 1.0}, {"billing": 20, "login": 6, "student": 2}
)
OLD_CONFUSION = {("billing", "billing"): 6, ("login", "login"): 4, ("login", "billing"): 2}
NEW_CONFUSION = {("billing", "billing"): 5, ("billing", "login"): 1, ("login", "login"): 6, ("student", "student"): 2}


def test_confusion_changes_rank_by_absolute_change_and_ignore_the_diagonal() -> None:
    changes = confusion_changes(OLD_CONFUSION, NEW_CONFUSION)
    assert [(c.true, c.predicted, c.before, c.after) for c in changes] == [
        ("login", "billing", 2, 0),
        ("billing", "login", 0, 1),
    ]
    assert confusion_changes(None, NEW_CONFUSION, top=1)[0].delta == 1
    assert confusion_changes(OLD_CONFUSION, OLD_CONFUSION) == []


def test_report_with_production(tmp_path: Path) -> None:
    decision = decide(CANDIDATE, PRODUCTION, GatePolicy(min_intent_support=5, max_intent_drop=0.05))
    assert not decision.promote  # billing drops 0.1 > max(0.05, 1/20)
    history = [
        HistoryPoint("v1", datetime(2025, 1, 1, tzinfo=UTC), 0.7, 0.65, "retired"),
        HistoryPoint("v2", datetime(2025, 1, 2, tzinfo=UTC), 0.8, 0.78, "production"),
    ]
    path = write_report(
        tmp_path / "report",
        candidate_version="v3",
        candidate=CANDIDATE,
        candidate_confusion=NEW_CONFUSION,
        decision=decision,
        production_version="v2",
        production=PRODUCTION,
        production_confusion=OLD_CONFUSION,
        provenance={"train_seed": 10, "train_agent_correction": 3},
        new_intents=["student"],
        history=history,
        notes=["trained in 12.0 s"],
    )
    text = path.read_text()
    assert "**Decision: REJECTED**" in text
    assert "intent 'billing' F1 0.900 -> 0.800" in text
    assert "| `billing` | 20 | 0.900 | 0.800 | -0.100 | **FAIL** |" in text
    assert "| `student` | 2 | - | 1.000 |  | new intent" in text
    assert "| `login` | `billing` | 2 | 0 | -2 |" in text
    assert "| train agent correction | 3 |" in text
    assert "`student`" in text and "trained in 12.0 s" in text
    for name in (F1_PLOT, CONFUSION_PLOT, HISTORY_PLOT):
        assert f"]({name})" in text
        assert (path.parent / name).read_bytes().startswith(PNG_MAGIC)


def test_first_report_without_production(tmp_path: Path) -> None:
    decision = decide(CANDIDATE, None)
    path = write_report(
        tmp_path, candidate_version="v1", candidate=CANDIDATE, candidate_confusion=NEW_CONFUSION, decision=decision
    )
    text = path.read_text()
    assert "**Decision: PROMOTED**" in text
    assert "| version | (none) | v1 |" in text
    assert "| accuracy | - | 0.850 |" in text
    assert (tmp_path / HISTORY_PLOT).stat().st_size > 1000
