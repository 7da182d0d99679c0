"""The retraining report: Markdown content and its PNG plots, from plain numbers."""

from __future__ import annotations

import re
import shutil
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import matplotlib.image
import pytest

from training.gate import GatePolicy, Scores, decide
from training.report import (
    CONFUSION_PLOT,
    F1_PLOT,
    HISTORY_PLOT,
    HTML_FILE,
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
    assert "| evaluation examples | - | 28 |" in text
    assert (tmp_path / HISTORY_PLOT).stat().st_size > 1000


def test_report_states_each_paired_check_with_its_numbers_p_value_interval_and_verdict(tmp_path: Path) -> None:
    truth = ("billing",) * 20 + ("login",) * 6 + ("out_of_scope",) * 4
    old = ("wrong_answer",) * 2 + ("right_answer",) * 24 + ("right_handoff",) * 4
    new = ("right_answer",) * 20 + ("needless_handoff",) * 6 + ("right_handoff",) * 4  # login broken
    labels = ("billing", "login")
    production = Scores(0.93, 0.9, {"billing": 0.95, "login": 1.0}, {"billing": 20, "login": 6}, labels, old, truth)
    candidate = Scores(0.8, 0.6, {"billing": 1.0, "login": 0.0}, {"billing": 20, "login": 6}, labels, new, truth)
    decision = decide(candidate, production)
    assert not decision.promote and [c.name for c in decision.failed] == ["overall", "intent:login"]
    path = write_report(
        tmp_path,
        candidate_version="v2",
        candidate=candidate,
        candidate_confusion=NEW_CONFUSION,
        decision=decision,
        production_version="v1",
        production=production,
        production_confusion=OLD_CONFUSION,
    )
    text = path.read_text()
    assert "**Decision: REJECTED**" in text
    assert "- not better (within noise), kept production: good outcomes 0.933 -> 0.800" in text
    assert "- intent 'login': good outcomes 6/6 -> 0/6 (0 better, 6 worse" in text
    assert "## The gate" in text and "Holm-Bonferroni" in text
    assert "| right answers | 24 | 20 |" in text and "| needless hand-offs | 0 | 6 |" in text
    assert "| overall | 0.933 | 0.800 | 2 / 6 | 0.145 | -0.319 to +0.058 | **FAIL**: not better (within noise)" in text
    assert (
        "| `login` | 1.000 | 0.000 | 0 / 6 | 0.0312 (raw 0.0156) | -1.000 to -0.448 | **FAIL**: significantly worse"
        in text
    )
    assert "| `billing` | 0.900 | 1.000 | 2 / 0 | 1 (raw 1) | -0.077 to +0.301 | ok: better |" in text
    assert "1 more intent (out-of-scope questions included) where no question changed" in text  # both hand off
    assert "| `login` | 6 | 1.000 | 0.000 | -1.000 | **FAIL** |" in text  # the per-intent F1 table's gate column


def _report_page(tmp_path: Path) -> Path:
    decision = decide(CANDIDATE, PRODUCTION, GatePolicy(min_intent_support=5, max_intent_drop=0.05))
    write_report(
        tmp_path,
        candidate_version="v3",
        candidate=CANDIDATE,
        candidate_confusion=NEW_CONFUSION,
        decision=decision,
        production_version="v2",
        production=PRODUCTION,
        production_confusion=OLD_CONFUSION,
    )
    return tmp_path / HTML_FILE


def test_the_report_is_also_one_self_contained_page(tmp_path: Path) -> None:
    page = _report_page(tmp_path).read_text()
    assert "<title>Retraining report: v3</title>" in page and "<table>" in page and "<th>intent</th>" in page
    assert page.count('src="data:image/png;base64,') == 3  # every plot inlined
    assert not re.search(r'(src|href)="(?!data:|#)', page)  # nothing outside the file


@pytest.mark.skipif(shutil.which("chromium") is None, reason="needs Debian's chromium (CI installs it)")
def test_the_report_page_renders_in_headless_chromium(tmp_path: Path) -> None:
    page = _report_page(tmp_path)
    shot = tmp_path / "report.png"
    subprocess.run(
        ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--window-size=1200,1800",
         f"--screenshot={shot}", page.as_uri()],
        check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    pixels = matplotlib.image.imread(shot)
    assert pixels.shape[:2] == (1800, 1200)
    dark = (pixels[..., :3].mean(axis=2) < 0.5).mean()  # text, table rules and plots, not a blank page
    assert 0.005 < dark < 0.5, dark
