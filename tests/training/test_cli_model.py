"""`supportbot train` and `supportbot eval` through the Typer app."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bot.cli import app
from bot.cli.common import settings
from storage.repository import Repository
from training.errors import DataError, ModelError
from training.model import IntentModel

from .conftest import INTENTS, THREADS, tiny_examples


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("SUPPORTBOT_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("TORCH_THREADS", str(THREADS))
    monkeypatch.setenv("INTENTS_FILE", str(tmp_path / "missing.yaml"))
    monkeypatch.setenv("KB_DIR", str(tmp_path / "no-kb"))  # a version indexes nothing here (the demo KB takes ~10 s)
    return tmp_path


def write_intents_yaml(path: Path) -> Path:
    lines = ["intents:"]
    for name, texts in INTENTS.items():
        lines += [f"  - name: {name}", f"    answer: Answer for {name}.", "    examples:"]
        lines += [f"      - {json.dumps(text)}" for text in texts]
    lines += ["out_of_scope:", '  - "What is the weather tomorrow?"', '  - "Tell me a joke"']
    lines += ['  - "Who won the match?"']
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.mark.slow
def test_train_registers_a_complete_candidate_version(env: Path) -> None:
    data = write_intents_yaml(env / "intents.yaml")
    args = [
        "train",
        "--data",
        str(data),
        "--frozen-encoder",
        "--epochs",
        "1",
        "--max-length",
        "32",
        "--batch-size",
        "8",
    ]
    result = CliRunner().invoke(app, [*args, "--version", "vcli", "--no-progress", "--device", "cpu"])
    assert result.exit_code == 0, result.output
    version_dir = env / "data" / "models" / "vcli"
    assert "registered vcli as a candidate" in result.output
    assert "`supportbot model promote vcli`" in result.output
    assert "Operating point: answer when `msp` >=" in result.output  # the chosen point, the policy, the curve
    assert "a wrong answer costs 1 hand-offs" in result.output and "Curve (`msp`" in result.output
    model = IntentModel.load(version_dir / "model")
    assert model.labels == sorted([*INTENTS, "out_of_scope"])
    assert model.info["training"]["epochs"] == 1
    assert sorted(p.name for p in version_dir.iterdir()) == ["index", "manifest.json", "model", "report"]
    assert "the gate would promote it" in result.output  # evaluated and gated like any candidate, not promoted
    with Repository(settings().db_url) as repo:
        record = repo.get_model("vcli")
        runs = repo.training_runs()
        assert repo.production_model() is None
    assert record is not None and record.status == "candidate" and record.path == "vcli"  # relative: the dir can move
    assert [(r.trigger, r.status, r.candidate_version) for r in runs] == [("train", "candidate", "vcli")]
    again = CliRunner().invoke(app, [*args, "--version", "vcli", "--no-progress"])
    assert isinstance(again.exception, ModelError) and "already" in str(again.exception)


def test_train_standalone_writes_only_a_model_directory(env: Path) -> None:
    data = write_intents_yaml(env / "intents.yaml")
    out = env / "alone"
    args = ["train", "--data", str(data), "--frozen-encoder", "--max-length", "32", "--standalone", str(out)]
    result = CliRunner().invoke(app, [*args, "--no-progress", "--device", "cpu"])
    assert result.exit_code == 0, result.output
    assert f"to {out} (not registered" in result.output
    model = IntentModel.load(out)
    assert model.info["training"]["freeze_encoder"] is True
    assert not (env / "data" / "models").exists()
    with Repository(settings().db_url) as repo:
        assert repo.models() == []


def test_train_without_data_says_what_to_do(env: Path) -> None:
    result = CliRunner().invoke(app, ["train", "--no-progress"])
    assert isinstance(result.exception, DataError)
    assert "pass --data PATH or set INTENTS_FILE" in str(result.exception)


def test_train_rejects_bad_options(env: Path) -> None:
    result = CliRunner().invoke(app, ["train", "--epochs", "0"])
    assert result.exit_code == 2
    assert "epochs" in result.output


@pytest.mark.slow
def test_eval_prints_a_summary_and_writes_json(env: Path, trained_dir: Path) -> None:
    data = env / "eval.csv"
    rows = ["text,label", *(f'"{ex.text}",{ex.label}' for ex in tiny_examples()), "Tell me a joke,out_of_scope"]
    data.write_text("\n".join(rows) + "\n", encoding="utf-8")
    report_path, plots = env / "out" / "report.json", env / "plots"
    args = ["eval", "--model", str(trained_dir), "--data", str(data), "--json", str(report_path), "--plots", str(plots)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "Evaluation of vtest (25 examples)" in result.output
    assert "out-of-scope recall" in result.output and "Weakest" in result.output
    assert "Operating point:" in result.output and "hindsight" in result.output  # own point vs the best one
    report = json.loads(report_path.read_text())
    assert report["examples"] == 25 and report["open_set"] is True
    assert report["accuracy"] == pytest.approx(report["outcomes"]["own"]["decision_accuracy"])
    assert (plots / "confusion.png").is_file() and (plots / "coverage.png").is_file()
    quantized = CliRunner().invoke(app, ["eval", "--model", str(trained_dir), "--data", str(data), "--quantize"])
    assert quantized.exit_code == 0, quantized.output
    assert "Evaluation of vtest (25 examples)" in quantized.output


def test_eval_of_a_missing_model(env: Path) -> None:
    data = env / "eval.csv"
    data.write_text("text,label\nhi,a\n", encoding="utf-8")
    result = CliRunner().invoke(app, ["eval", "--model", str(env / "nope"), "--data", str(data)])
    assert isinstance(result.exception, ModelError)
    assert "no such model directory" in str(result.exception)
