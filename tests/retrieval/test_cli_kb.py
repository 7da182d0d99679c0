"""`supportbot kb ingest|search|stats` end to end with the real base encoder on a tiny folder."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bot.cli import app
from bot.cli.common import settings
from retrieval.errors import KnowledgeBaseError

pytestmark = pytest.mark.slow


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    kb = tmp_path / "kb"
    (kb / "billing").mkdir(parents=True)
    (kb / "billing" / "refunds.md").write_text(
        "---\nurl: https://help.example.test/refunds\n---\n# Refund policy\n\n"
        "You can ask for your money back within 30 days of purchase. Refunds go to the original card.\n"
    )
    (kb / "shipping.html").write_text(
        "<html><body><h1>Delivery times</h1><p>Parcels arrive within 3 to 5 working days.</p></body></html>"
    )
    (kb / "faq.csv").write_text("question,answer\nHow do I change my password?,Open Settings > Security.\n")
    monkeypatch.setenv("SUPPORTBOT_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("KB_DIR", str(kb))
    settings.cache_clear()
    yield tmp_path
    settings.cache_clear()


def test_ingest_search_stats(env: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(app, ["kb", "ingest"])
    assert result.exit_code == 0, result.output
    assert "indexed 3 documents (3 chunks, flat index)" in result.output
    assert (env / "data" / "index" / "CURRENT").read_text().strip() == "1"

    result = runner.invoke(app, ["kb", "search", "can I get my money back?", "-k", "2"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].startswith("1. 0.") and "Refund policy  [billing/refunds.md]" in lines[0]
    assert "https://help.example.test/refunds" in result.output
    assert len([line for line in lines if line[:2] in ("1.", "2.", "3.")]) == 2

    result = runner.invoke(app, ["kb", "stats"])
    assert result.exit_code == 0, result.output
    assert "documents    3 (2 article, 1 faq)" in result.output
    assert "flat, exact below" in result.output
    data = json.loads(runner.invoke(app, ["kb", "stats", "--json"]).output)
    assert (data["documents"], data["chunks"], data["dim"], data["generation"]) == (3, 3, 384, 1)


def test_ingest_to_another_folder_and_search_it(env: Path) -> None:
    runner = CliRunner()
    out = env / "elsewhere"
    assert runner.invoke(app, ["kb", "ingest", str(env / "kb" / "billing"), "--out", str(out)]).exit_code == 0
    result = runner.invoke(app, ["kb", "search", "refund", "--index", str(out)])
    assert result.exit_code == 0, result.output
    assert "Refund policy" in result.output and "Delivery times" not in result.output


def test_errors_are_knowledge_base_errors(env: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(app, ["kb", "search", "refund"])
    assert isinstance(result.exception, KnowledgeBaseError)
    assert "supportbot kb ingest" in str(result.exception)
    result = runner.invoke(app, ["kb", "ingest", str(env / "missing")])
    assert isinstance(result.exception, KnowledgeBaseError)
