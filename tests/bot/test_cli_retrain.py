"""`supportbot retrain` as a process: SIGTERM mid-training leaves production as it was, records the run as failed
and leaves no unfinished version behind; a later run removes what a killed build left."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bot.versions import list_versions, remove_staging
from storage.repository import Repository
from tests.bot.conftest import TINY_INTENTS, write_tiny_kb

pytestmark = pytest.mark.slow


def test_sigterm_mid_training_records_the_run_and_leaves_nothing(tmp_path: Path):
    intents = tmp_path / "intents.yaml"
    intents.write_text(TINY_INTENTS, encoding="utf-8")
    env = {
        **os.environ,
        "SUPPORTBOT_DATA_DIR": str(tmp_path / "data"),
        "INTENTS_FILE": str(intents),
        "KB_DIR": str(write_tiny_kb(tmp_path / "kb")),
        "CALIBRATION_TWIN": "false",
        "TORCH_THREADS": "2",
        "RETRAIN_EPOCHS": "200",  # long enough to be stopped midway
    }
    command = [sys.executable, "-c", "from bot.cli import main; main()", "retrain", "--quiet"]
    process = subprocess.Popen(command, env=env, cwd=tmp_path, stderr=subprocess.PIPE, text=True)
    models = tmp_path / "data" / "models"
    deadline = time.monotonic() + 120
    while not (models.is_dir() and any(p.name.endswith(".tmp") for p in models.iterdir())):  # building now
        assert process.poll() is None and time.monotonic() < deadline, process.stderr.read() if process.stderr else ""
        time.sleep(0.1)
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 143, stderr
    assert "stopped by SIGTERM" in stderr
    assert list(models.iterdir()) == []  # neither the staging directory nor a half version
    with Repository(f"sqlite:///{tmp_path / 'data' / 'supportbot.db'}") as repo:
        assert repo.production_model() is None
        assert [(run.status, run.error) for run in repo.training_runs()] == [("failed", "interrupted")]


def test_remove_staging_deletes_only_unfinished_builds(tmp_path: Path):
    (tmp_path / ".v1.abc.tmp").mkdir()
    (tmp_path / "v0").mkdir()
    (tmp_path / "v0" / "manifest.json").write_text('{"version": "v0"}')
    old = tmp_path / ".v2.def.tmp"
    old.mkdir()
    os.utime(old, (time.time() - 7200, time.time() - 7200))
    assert remove_staging(tmp_path, older_than_s=3600) == [".v2.def.tmp"]
    assert remove_staging(tmp_path) == [".v1.abc.tmp"]
    assert list_versions(tmp_path) == ["v0"]
