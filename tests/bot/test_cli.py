"""The command line as a whole: every command listed, help fast (no torch for --help), errors as one line."""

from __future__ import annotations

import subprocess
import sys

from typer.testing import CliRunner

from bot.cli import app

COMMANDS = ["ask", "chat", "serve", "train", "eval", "kb", "retrain", "model", "db", "config"]


def test_help_lists_every_command() -> None:
    result = CliRunner().invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in COMMANDS:
        assert command in result.output


def test_every_command_has_help() -> None:
    runner = CliRunner()
    for command in COMMANDS:
        result = runner.invoke(app, [command, "--help"])
        assert result.exit_code == 0, (command, result.output)


def test_loading_the_cli_does_not_import_torch() -> None:
    code = "import sys, bot.cli; sys.exit(1 if 'torch' in sys.modules else 0)"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


def test_bad_configuration_is_one_line_and_non_zero(tmp_path) -> None:  # type: ignore[no-untyped-def]
    env = {"PATH": "", "SLACK_MODE": "pigeon", "HOME": str(tmp_path)}
    result = subprocess.run(
        [sys.executable, "-c", "from bot.cli import main; main()", "config"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        check=False,
    )
    assert result.returncode == 1
    assert result.stderr.strip().count("\n") == 0
    assert "SLACK_MODE" in result.stderr and "Traceback" not in result.stderr
