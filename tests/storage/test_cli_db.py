"""`supportbot db upgrade | copy | purge | forget-user` through the Typer app, with settings from the environment."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from bot.cli import db as db_cli
from storage.db import head_revision
from storage.errors import StorageError
from storage.repository import Repository, ThreadRef
from tests.factories import answered_question, new_answer, rate

runner = CliRunner()


@pytest.fixture
def app() -> typer.Typer:
    """A Typer app with only the `db` group (independent of the other command modules)."""
    application = typer.Typer(pretty_exceptions_enable=False)

    @application.callback()
    def _root() -> None:
        """Test root."""

    db_cli.register(application)
    return application


@pytest.fixture(autouse=True)
def _data_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The data directory in tmp_path (the root `_isolated` fixture has cleared the rest of the environment)."""
    monkeypatch.setenv("SUPPORTBOT_DATA_DIR", str(tmp_path / "data"))


def _seed(url: str) -> None:
    """U1's old conversation, U2's recent one, and U1's rating of U2's answer."""
    now = datetime.now(UTC)
    with Repository(url) as repo:
        for user, age in (("U1", timedelta(days=40)), ("U2", timedelta(days=1))):
            logged = answered_question(
                repo,
                "hi",
                new_answer("hello", intent="greet", confidence=1.0),
                user_id=user,
                thread=ThreadRef("T", "C", user),
                asked_at=now - age,
            )
        rate(repo, logged.answer_id, rater_id="U1")


HEAD = head_revision()


def _conversations(url: str) -> list[str | None]:
    with Repository(url) as repo:
        return sorted(
            c.started_by
            for user in ("U1", "U2")
            if (c := repo.find_conversation(team_id="T", channel_id="C", thread_ts=user)) is not None
        )


def test_upgrade_creates_the_default_sqlite_database_then_reports_up_to_date(app: typer.Typer, tmp_path: Path) -> None:
    first = runner.invoke(app, ["db", "upgrade"])
    assert first.exit_code == 0, first.output
    assert f"upgraded from an empty database to revision {HEAD}" in first.output
    assert (tmp_path / "data" / "supportbot.db").exists()
    second = runner.invoke(app, ["db", "upgrade"])
    assert second.exit_code == 0 and f"is up to date (revision {HEAD})" in second.output


def test_upgrade_uses_database_url(app: typer.Typer, empty_db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", empty_db_url)
    result = runner.invoke(app, ["db", "upgrade"])
    assert result.exit_code == 0, result.output
    assert f"revision {HEAD}" in result.output


def test_purge_asks_first_and_prints_the_counts(app: typer.Typer, db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", db_url)
    _seed(db_url)

    declined = runner.invoke(app, ["db", "purge", "--older-than", "30"], input="n\n")
    assert (
        declined.exit_code == 1
        and "Delete 1 conversation, 1 message, 1 answer, 0 ratings, 0 handoffs" in declined.output
    )
    assert _conversations(db_url) == ["U1", "U2"]

    accepted = runner.invoke(app, ["db", "purge", "--older-than", "30"], input="y\n")
    assert accepted.exit_code == 0, accepted.output
    assert "deleted 1 conversation, 1 message, 1 answer, 0 ratings, 0 handoffs, 0 proposals." in accepted.output
    assert _conversations(db_url) == ["U2"]

    nothing = runner.invoke(app, ["db", "purge", "--older-than", "30", "--yes"])
    assert nothing.exit_code == 0 and "nothing to delete" in nothing.output


def test_purge_yes_skips_the_question(app: typer.Typer, db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", db_url)
    _seed(db_url)
    result = runner.invoke(app, ["db", "purge", "--older-than", "0", "--yes"])
    assert result.exit_code == 0, result.output
    assert "Delete" not in result.output and "deleted 2 conversations" in result.output
    assert _conversations(db_url) == []


def test_purge_needs_a_non_negative_number_of_days(app: typer.Typer) -> None:
    assert runner.invoke(app, ["db", "purge", "--older-than", "-1", "--yes"]).exit_code == 2
    assert runner.invoke(app, ["db", "purge", "--yes"]).exit_code == 2


def test_forget_user(app: typer.Typer, db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", db_url)
    _seed(db_url)

    declined = runner.invoke(app, ["db", "forget-user", "U1"], input="n\n")
    assert declined.exit_code == 1 and "of user U1?" in declined.output
    assert _conversations(db_url) == ["U1", "U2"]

    result = runner.invoke(app, ["db", "forget-user", "U1"], input="y\n")
    assert result.exit_code == 0, result.output
    assert (
        "deleted 1 conversation, 1 message, 1 answer, 1 rating, 0 handoffs, 0 eval examples, 0 proposals of user U1."
        in (result.output)
    )
    assert _conversations(db_url) == ["U2"]

    again = runner.invoke(app, ["db", "forget-user", "U1", "--yes"])
    assert again.exit_code == 0 and "nothing to delete: no data of user U1." in again.output


def test_bad_database_url_is_a_storage_error(app: typer.Typer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "mysql://u@localhost/db")
    result = runner.invoke(app, ["db", "upgrade"])
    assert isinstance(result.exception, StorageError)


def test_main_prints_one_line_and_exits_1(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    from bot.cli import main

    monkeypatch.setenv("DATABASE_URL", "postgresql+psycopg://bot:s3cret@127.0.0.1:1/supportbot")
    monkeypatch.setattr("sys.argv", ["supportbot", "db", "forget-user", "U1", "--yes"])
    with pytest.raises(SystemExit) as exited:
        main()
    assert exited.value.code == 1
    err = capsys.readouterr().err
    assert err.startswith("error: cannot reach the database at postgresql+psycopg://bot:***@127.0.0.1:1/supportbot")
    assert err.count("\n") == 1 and "s3cret" not in err and "Traceback" not in err


def test_copy_copies_the_store_and_says_what_to_set(
    app: typer.Typer, sqlite_url: str, empty_db_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("DATABASE_URL", sqlite_url)
    _seed(sqlite_url)
    with Repository(sqlite_url) as repo:
        repo.register_model("v1", path="v1", metrics={"accuracy": 0.9}, dataset_hash="a" * 64, status="production")

    result = runner.invoke(app, ["db", "copy", "--to", empty_db_url])

    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == f"copying {sqlite_url} to {empty_db_url}:"
    assert "  conversations: 2 rows" in lines and "  model_versions: 1 row" in lines and "  inbox: 0 rows" in lines
    assert lines[-1] == (
        f"copied 8 rows. Now set DATABASE_URL={empty_db_url} for the bot and the nightly job and keep "
        f"SUPPORTBOT_DATA_DIR={tmp_path / 'data'} where it is: the registry's models stay in "
        f"{tmp_path / 'data' / 'models'}."
    )
    assert _conversations(empty_db_url) == ["U1", "U2"]
    with Repository(empty_db_url) as repo:
        production = repo.production_model()
        assert production is not None and (production.version, production.path) == ("v1", "v1")

    again = runner.invoke(app, ["db", "copy", "--to", empty_db_url])
    assert isinstance(again.exception, StorageError) and "is not empty" in str(again.exception)


def test_copy_errors_are_one_line_without_the_password(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from bot.cli import main

    monkeypatch.setenv("DATABASE_URL", sqlite_url)
    target = "postgresql+psycopg://bot:s3cret@127.0.0.1:1/supportbot"
    monkeypatch.setattr("sys.argv", ["supportbot", "db", "copy", "--to", target])
    with pytest.raises(SystemExit) as exited:
        main()
    assert exited.value.code == 1
    captured = capsys.readouterr()
    assert captured.err.startswith("error: cannot reach the database at postgresql+psycopg://bot:***@127.0.0.1:1/")
    assert captured.err.count("\n") == 1 and "Traceback" not in captured.err
    assert "s3cret" not in captured.err + captured.out
