"""`supportbot ask` and `supportbot chat` end to end on the tiny model version, with what they log."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bot.cli import app
from bot.cli.common import settings
from bot.engine import HANDOFF_TEXT
from storage.repository import RatedAnswer, Repository

pytestmark = pytest.mark.slow

TINY = "v20260101-000000"
PASSWORD_ANSWER = "To reset your password, open the sign-in page and choose *Forgot password*."


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tiny_files: tuple[Path, Path], tiny_version: Path) -> str:
    """A data dir whose registry has the tiny version in production; returns the database URL.

    The root `_isolated` fixture has cleared the environment and the CLI's cached settings (before this runs)."""
    intents, kb = tiny_files
    for name, value in {
        "SUPPORTBOT_DATA_DIR": str(tmp_path / "data"),
        "INTENTS_FILE": str(intents),
        "KB_DIR": str(kb),
        "RETRIEVAL_MIN_SCORE": "0.45",
    }.items():
        monkeypatch.setenv(name, value)
    url = settings().db_url
    assert url == f"sqlite:///{tmp_path / 'data' / 'supportbot.db'}"
    repo = Repository(url)
    repo.register_model(TINY, path=str(tiny_version), metrics={}, dataset_hash="x" * 64, status="production")
    repo.close()
    return url


def logged(url: str) -> list[RatedAnswer]:
    repo = Repository(url)
    try:
        now = datetime.now(UTC)
        return repo.answers_between(now - timedelta(days=1), now + timedelta(days=1))
    finally:
        repo.close()


def handoff_reasons(url: str, conversation_id: int) -> list[str]:
    repo = Repository(url)
    try:
        return [h.reason for h in repo.handoffs(conversation_id)]
    finally:
        repo.close()


def test_ask_prints_answer_and_diagnostics_and_logs_one_thread(env: str):
    result = CliRunner().invoke(app, ["ask", "I forgot my password"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == PASSWORD_ANSWER
    assert "source      intent (curated answer)" in result.output
    assert "intent      reset_password  confidence" in result.output and ">= threshold" in result.output
    assert "top intents reset_password" in result.output
    assert "kb hits" in result.output and "[accounts/reset-password.md]" in result.output
    assert f"model       {TINY}" in result.output
    assert "\x1b[" not in result.output  # no colour codes when piped

    [item] = logged(env)
    assert (item.answer.source, item.answer.intent, item.answer.status) == ("intent", "reset_password", "posted")
    assert item.answer.model_version == TINY and item.answer.doc_ids[0] == "accounts/reset-password.md"
    assert item.question.text == "I forgot my password" and item.question.role == "user"
    repo = Repository(env)
    try:
        assert [m.role for m in repo.messages(item.answer.conversation_id)] == ["user", "bot"]
    finally:
        repo.close()


def test_ask_json_and_no_log(env: str):
    result = CliRunner().invoke(app, ["ask", "what's the capital of Peru", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["source"] == "handoff" and data["text"] == HANDOFF_TEXT
    assert data["intent"] and data["reason"] in ("out_of_scope", "low_confidence")
    assert len(data["top_intents"]) == 3 and len(data["hits"]) == 3
    assert data["model_version"] == TINY and data["latency_ms"] > 0
    conversation_id = data["logged"]["conversation_id"]
    assert handoff_reasons(env, conversation_id) == ["abstained"]
    repo = Repository(env)
    try:
        conversation = repo.find_conversation(
            team_id="local", channel_id="terminal", thread_ts=data["logged"]["thread"]
        )
    finally:
        repo.close()
    assert conversation is not None and conversation.id == conversation_id and conversation.source == "cli"

    result = CliRunner().invoke(app, ["ask", "I want a refund", "--no-log", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["logged"] is None
    assert len(logged(env)) == 1


def test_ask_masks_pii_in_what_it_logs(env: str):
    result = CliRunner().invoke(app, ["ask", "I forgot my password, mail me at jane@example.com", "--json"])
    assert result.exit_code == 0, result.output
    assert "jane@example.com" not in json.loads(result.output)["question"]
    [item] = logged(env)
    assert "jane@example.com" not in item.question.text and "[EMAIL]" in item.question.text


def test_ask_empty_question_is_a_usage_error(env: str):
    result = CliRunner().invoke(app, ["ask", "   "])
    assert result.exit_code == 2
    assert "empty" in result.output
    assert logged(env) == []


def test_chat_conversation_with_ratings_and_handoffs(env: str):
    script = (
        "+\n"  # nothing to rate yet
        "I forgot my password\n"
        "+\n"
        "\n"
        "what's the capital of Peru\n"
        "/bad\n"
        "\x00\x01\n"  # nothing but control characters: ignored like an empty line
        "/human\n"
        "/quit\n"
        "I want a refund\n"  # after /quit: never read
    )
    result = CliRunner().invoke(app, ["chat"], input=script)
    assert result.exit_code == 0, result.output
    out = result.output
    assert f"model {TINY}" in out
    assert "Nothing to rate yet" in out
    assert f"bot> {PASSWORD_ANSWER}" in out and f"bot> {HANDOFF_TEXT}" in out
    assert "Thanks, noted." in out and "Sorry about that" in out
    assert out.rstrip().endswith("Bye.")
    assert "you>" not in out  # no prompts when stdin is not a terminal

    items = logged(env)
    assert [(i.answer.source, i.question.text) for i in items] == [
        ("intent", "I forgot my password"),
        ("handoff", "what's the capital of Peru"),
    ]
    assert len({i.answer.conversation_id for i in items}) == 1
    assert [(r.helpful, r.rater_role, r.source) for r in items[0].ratings] == [(True, "customer", "cli")]
    assert [(r.helpful, r.rater_role, r.source) for r in items[1].ratings] == [(False, "customer", "cli")]
    assert handoff_reasons(env, items[0].answer.conversation_id) == ["abstained", "customer_request"]
    repo = Repository(env)
    try:
        roles = [m.role for m in repo.messages(items[0].answer.conversation_id)]
    finally:
        repo.close()
    assert roles == ["user", "bot", "user", "bot"]


def test_chat_survives_binary_and_huge_input(env: str):
    script = b"\xff\xfe\x00garbage \x80\x81\n" + b"refund " * 8000 + b"\n" + "😀😀\n".encode()
    result = CliRunner().invoke(app, ["chat", "--details"], input=script)
    assert result.exit_code == 0, result.output
    assert result.output.count("bot> ") == 3
    assert "source      " in result.output  # --details
    assert "note        the question was cut" in result.output
    items = logged(env)
    assert len(items) == 3
    assert "\ufffd" in items[0].question.text
    assert len(items[1].question.text) <= settings().max_question_chars


def test_chat_clarifying_question_takes_a_number(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from bot.cli.ask import SOMETHING_ELSE_TEXT, TerminalLog, _converse
    from tests.bot.slack.fakes import BILLING_ANSWER, CLARIFY_TEXT, FakeEngine

    repo = Repository(f"sqlite:///{tmp_path / 'chat.db'}")
    try:
        session = TerminalLog(repo, user_id="local:me", max_question_chars=500)
        script = iter(["which one?", "2", "which one again?", "0", "which one?", "7", "/quit"])
        _converse(FakeEngine(), session, script, interactive=False, details=False)  # type: ignore[arg-type]
        out = capsys.readouterr().out
        assert out.count(f"bot> {CLARIFY_TEXT}") == 3
        assert "1) How do I reset my password?" in out and "2) Where are my invoices?" in out
        assert f"0) {SOMETHING_ELSE_TEXT}" in out
        assert f"bot> {BILLING_ANSWER}" in out
        now = datetime.now(UTC)
        items = repo.answers_between(now - timedelta(days=1), now + timedelta(days=1))
        sources = [(i.answer.source, i.answer.intent, i.question.text) for i in items]
        assert sources == [
            ("clarify", "reset_password", "which one?"),
            ("intent", "billing", "which one?"),  # the pick answers the same question
            ("clarify", "reset_password", "which one again?"),
            ("clarify", "reset_password", "which one?"),
            ("handoff", "billing", "7"),  # out of range: a new question, not a pick
        ]
        picks = [(r.corrected_intent, r.helpful, r.source) for i in items for r in i.ratings]
        assert picks == [("billing", True, "clarify"), (None, False, "clarify")]
        assert [h.reason for h in repo.handoffs(session.conversation_id)] == ["customer_request", "abstained"]
    finally:
        repo.close()


def test_a_terminal_turn_costs_two_transactions(tmp_path: Path) -> None:
    """`ask` and `chat` account for a turn with the store operations Slack uses: record the turn, mark it posted."""
    from sqlalchemy import event

    from bot.cli.ask import TerminalLog
    from tests.bot.slack.fakes import FakeEngine

    repo = Repository(f"sqlite:///{tmp_path / 'turns.db'}")
    began: list[object] = []
    event.listen(repo._engine, "begin", began.append)
    try:
        session = TerminalLog(repo, user_id="local:me", max_question_chars=500)
        engine = FakeEngine()
        for question in ("password?", "my parrot ate the router"):
            began.clear()
            session.record(question, engine.answer(question))
            assert len(began) == 2, question
        assert [m.role for m in repo.messages(session.conversation_id)] == ["user", "bot", "user", "bot"]
        assert [h.reason for h in repo.handoffs(session.conversation_id)] == ["abstained"]
    finally:
        repo.close()
