"""LOG_FORMAT=json: one JSON object per line, the answer's fields, nothing unmasked (real app, real traffic)."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from bot.slack.logs import JsonLines, configure
from tests.bot.slack import payloads
from tests.bot.slack.harness import CUSTOMER, BotUnderTest, quiesce
from tests.bot.slack.helpers import ask
from tests.bot.slack.standin import SlackStandIn

EMAIL, CARD = "jo.doe@example.com", "4111 1111 1111 1111"


@pytest.fixture
def json_log() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonLines())
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield stream
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)


async def test_json_lines_hold_the_answer_fields_and_no_pii(
    bot: BotUnderTest, standin: SlackStandIn, json_log: io.StringIO
) -> None:
    asked = await ask(bot, standin, f"password? mail me at {EMAIL}, card {CARD}")
    await bot.event(payloads.message(f"something else, {EMAIL}", channel="DCUSTOMER", user=CUSTOMER))
    await standin.wait_for_call("chat.postMessage", n=3)
    await quiesce()
    logging.getLogger("bot.test").exception("boom %s", EMAIL, exc_info=ValueError(f"card {CARD}"))

    text = json_log.getvalue()
    entries = [json.loads(line) for line in text.splitlines()]  # every line is one object

    assert entries and EMAIL not in text and CARD not in text and "[EMAIL]" in text
    answered = [e for e in entries if e.get("outcome")]
    assert [e["outcome"] for e in answered] == ["answer", "handoff"]
    first = answered[0]
    assert isinstance(first["event_id"], str) and first["event_id"]
    assert first["answer_id"] == asked.answer_id and first["conversation_id"] >= 1
    assert first["model_version"] == "v-test-1" and first["latency_ms"] >= 0 and first["level"] == "INFO"
    assert entries[-1]["level"] == "ERROR" and "ValueError" in entries[-1]["traceback"]


def test_configure_picks_the_format_once(monkeypatch: pytest.MonkeyPatch) -> None:
    root = logging.getLogger()
    monkeypatch.setattr(root, "handlers", [])
    monkeypatch.setattr(root, "level", root.level)
    configure("warning", "json")
    [handler] = root.handlers
    assert isinstance(handler.formatter, JsonLines) and root.level == logging.WARNING
    configure("info", "text")  # already configured: left as it is
    assert root.handlers == [handler]
