"""A newcomer's path end to end through the CLI: train -> model list -> promote -> ask -> kb ingest changes what
the bot cites (and `kb search` / `kb stats` read the production version)."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bot.cli import app
from retrieval.errors import KnowledgeBaseError
from storage.errors import StorageError
from tests.bot.conftest import KB_FILES, TINY_INTENTS, write_tiny_kb
from training.data import load_examples

pytestmark = pytest.mark.slow

NEW_ARTICLE = (
    "# Two-factor sign-in with a hardware key\n\nRegister a FIDO2 hardware security key under Settings > Security > "
    "Two-factor; keep a second key as a spare.\n"
)


@pytest.fixture
def newcomer(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    intents = tmp_path / "intents.yaml"
    intents.write_text(TINY_INTENTS, encoding="utf-8")
    with (tmp_path / "my.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text", "label"])
        writer.writerows((ex.text, ex.label) for ex in load_examples(intents))
    write_tiny_kb(tmp_path / "kb")
    for name, value in {
        "SUPPORTBOT_DATA_DIR": tmp_path / "data",
        "INTENTS_FILE": intents,
        "KB_DIR": tmp_path / "kb",
        "CALIBRATION_TWIN": "false",
        "TORCH_THREADS": "2",
        "RETRIEVAL_MIN_SCORE": "0.3",
    }.items():
        monkeypatch.setenv(name, str(value))
    return tmp_path


def invoke(*args: str) -> str:
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == 0, f"{args}: {result.output}\n{result.exception!r}"
    return result.output


def test_train_list_promote_ask_then_kb_ingest_changes_what_it_cites(newcomer: Path):
    data = str(newcomer / "my.csv")
    output = invoke(
        "train", "--data", data, "--frozen-encoder", "--max-length", "32", "--version", "v-mine", "--no-progress"
    )
    assert "registered v-mine as a candidate" in output

    listing = invoke("model", "list")
    assert "v-mine" in listing and "candidate" in listing

    invoke("model", "promote", "v-mine")
    answer = json.loads(invoke("ask", "--json", "--no-log", "I forgot my password"))
    assert answer["model_version"] == "v-mine"
    assert answer["intent"] == "reset_password"
    assert "hardware" not in json.dumps(answer["hits"])

    (newcomer / "kb" / "security" / "hardware-keys.md").write_text(NEW_ARTICLE, encoding="utf-8")
    output = invoke("kb", "ingest")
    assert "(4 documents, the model of v-mine)" in output
    production = invoke("model", "list")
    derived = json.loads(invoke("kb", "stats", "--json"))
    assert derived["version"] != "v-mine" and derived["version"] in production and derived["documents"] == 4

    answer = json.loads(invoke("ask", "--json", "--no-log", "how do I register a FIDO2 hardware security key?"))
    assert answer["model_version"] == derived["version"]
    assert answer["hits"][0]["doc_id"] == "security/hardware-keys.md"
    hits = invoke("kb", "search", "hardware security key", "-k", "1")
    assert hits.startswith("1. 0.") and "Two-factor sign-in with a hardware key  [security/hardware-keys.md]" in hits
    older = invoke("kb", "search", "hardware security key", "-k", "1", "--version", "v-mine")
    assert "hardware-keys.md" not in older  # the old version keeps its own index
    stats = invoke("kb", "stats", "--version", "v-mine")
    assert f"documents    {len(KB_FILES)} (3 article)" in stats


def test_kb_commands_before_any_model_say_what_to_do(newcomer: Path):
    for args in (["kb", "ingest"], ["kb", "search", "refund"], ["kb", "stats"]):
        result = CliRunner().invoke(app, args)
        assert isinstance(result.exception, StorageError), args
        assert "no model in production yet" in str(result.exception) and "supportbot" in str(result.exception)
    result = CliRunner().invoke(app, ["kb", "search", "refund", "--version", "v-nope"])
    assert isinstance(result.exception, StorageError) and "supportbot model list" in str(result.exception)


def test_model_import_into_a_fresh_store_then_promote_serves_it(
    newcomer: Path, tiny_version: Path, db_url: str, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("DATABASE_URL", db_url)  # e.g. moving from SQLite to PostgreSQL with the versions on disk
    broken = newcomer / "broken"
    shutil.copytree(tiny_version, broken)
    shutil.rmtree(broken / "index")
    result = CliRunner().invoke(app, ["model", "import", str(broken)])
    assert isinstance(result.exception, KnowledgeBaseError) and "index" in str(result.exception)
    assert "no model versions yet" in invoke("model", "list")  # nothing registered or copied
    assert not (newcomer / "data" / "models" / tiny_version.name).exists()

    output = invoke("model", "import", str(tiny_version))
    assert f"imported {tiny_version.name} as a candidate" in output
    assert (newcomer / "data" / "models" / tiny_version.name / "manifest.json").is_file()
    listing = invoke("model", "list")
    assert tiny_version.name in listing and "candidate" in listing
    invoke("model", "promote", tiny_version.name)
    answer = json.loads(invoke("ask", "--json", "--no-log", "I forgot my password"))
    assert answer["model_version"] == tiny_version.name and answer["intent"] == "reset_password"
    again = CliRunner().invoke(app, ["model", "import", str(tiny_version)])
    assert isinstance(again.exception, StorageError) and "already in this registry" in str(again.exception)


def test_a_corrupt_index_names_its_repair_and_kb_rebuild_fixes_it(newcomer: Path, tiny_version: Path):
    invoke("model", "import", str(tiny_version))
    name = tiny_version.name
    index = newcomer / "data" / "models" / name / "index"
    (index / "index.faiss").unlink()  # a new file, never written in place: imported files are hard links
    (index / "index.faiss").write_bytes(b"not a faiss index")
    broken = CliRunner().invoke(app, ["kb", "search", "refund", "--version", name])
    assert isinstance(broken.exception, KnowledgeBaseError)
    assert f"models/{name}/index" in str(broken.exception) and "`supportbot kb rebuild VERSION`" in str(
        broken.exception
    )
    refused = CliRunner().invoke(app, ["model", "promote", name])
    assert refused.exit_code == 1 and "does not load, not promoted" in refused.output

    output = invoke("kb", "rebuild", name)
    assert f"rebuilt the index of {name}" in output
    hits = invoke("kb", "search", "can I get my money back?", "-k", "1", "--version", name)
    assert "billing/refund-policy.md" in hits
    assert not any(p.name.endswith(".tmp") for p in index.parent.iterdir())  # no staging left behind
    invoke("model", "promote", name)  # loads now
