"""Block Kit builders: Slack's limits respected, ids and values round-trip."""

from __future__ import annotations

import json

from bot.answer import SourceDoc
from bot.slack import blocks, texts
from tests.factories import engine_answer


def test_long_answers_are_split_into_sections_within_slack_limits() -> None:
    text = ("word " * 700 + "\n") * 4  # ~14,000 characters
    result = blocks.answer_blocks(7, engine_answer(text))
    sections = [b["text"]["text"] for b in result if b["type"] == "section"]
    assert len(sections) >= 5 and all(0 < len(s) <= blocks.SECTION_MAX for s in sections)
    assert "".join(sections).replace(" ", "").replace("\n", "") == text.replace(" ", "").replace("\n", "")
    assert len(blocks.fallback_text(text)) <= blocks.FALLBACK_MAX


def test_sources_context_and_buttons() -> None:
    docs = [SourceDoc("a", "Billing <FAQ>", "https://x/a", 0.9), SourceDoc("b", "Plans", None, 0.8)]
    result = blocks.answer_blocks(12, engine_answer("passage", "retrieval", sources=docs), truncated_at=4000)
    sources = next(b for b in result if b["type"] == "section" and texts.SOURCES_HEADER in b["text"]["text"])
    assert "• <https://x/a|Billing &lt;FAQ&gt;>" in sources["text"]["text"] and "• Plans" in sources["text"]["text"]
    [context] = [b for b in result if b["type"] == "context"]
    [note] = context["elements"]  # only the truncation note: no diagnostics for the customer
    assert "4,000" in note["text"]
    actions = result[-1]
    assert [e["value"] for e in actions["elements"]] == ["12"] * 3


def test_the_customer_sees_no_diagnostics_and_no_agent_button() -> None:
    answer = engine_answer("Open Settings > Security.", "intent")
    handoff = engine_answer("A human will help", "handoff")
    for result in (blocks.answer_blocks(7, answer), blocks.answer_blocks(3, handoff)):
        shown = json.dumps(result)
        assert answer.intent and answer.intent not in shown and "confidence" not in shown and "v1" not in shown
        assert blocks.ACTION_CORRECT not in shown
    assert [e["action_id"] for e in blocks.answer_blocks(7, answer)[-1]["elements"]] == [
        blocks.ACTION_HELPFUL,
        blocks.ACTION_NOT_HELPFUL,
        blocks.ACTION_HUMAN,
    ]
    assert all(b["type"] != "actions" for b in blocks.answer_blocks(3, handoff))


def test_correction_target_round_trips_and_rejects_garbage() -> None:
    target = blocks.CorrectionTarget(5, "C1", "1.2", "billing")
    assert blocks.CorrectionTarget.from_metadata(target.to_metadata()) == target
    for raw in (None, "", "{", '{"a": "x"}', '{"a": 1, "c": 2, "t": "1"}', "[]"):
        assert blocks.CorrectionTarget.from_metadata(raw) is None


def test_modal_lists_out_of_scope_first_and_groups_many_intents() -> None:
    target = blocks.CorrectionTarget(5, "C1", "1.2", "intent_3")
    intents = [f"intent_{i}" for i in range(250)]
    view = blocks.correction_modal(target, intents=intents, out_of_scope_label="oos", question="q?", confidence=0.4)
    select = next(b for b in view["blocks"] if b.get("block_id") == blocks.INTENT_BLOCK)["element"]
    groups = select["option_groups"]
    assert [len(g["options"]) for g in groups] == [100, 100, 51]
    assert groups[0]["options"][0]["value"] == "oos" and select["initial_option"]["value"] == "intent_3"
    long_name = "x" * 200
    small = blocks.correction_modal(
        target, intents=[long_name], out_of_scope_label="oos", question=None, confidence=None
    )
    option = next(b for b in small["blocks"] if b.get("block_id") == blocks.INTENT_BLOCK)["element"]["options"][1]
    assert len(option["text"]["text"]) <= blocks.OPTION_TEXT_MAX and len(option["value"]) <= 150


def test_home_views() -> None:
    period = blocks.PeriodStats("Today", questions=4, answered=3, handed_off=1, rated=2, helpful=1)
    view = blocks.agent_home_view([period], unhelpful_by_intent=[("billing", 2)], model_info={"version": "v9"})
    text = str(view)
    assert "(75%)" in text and "(25%)" in text and "(50%)" in text and "`billing`: 2" in text and "v9" in text
    failed = blocks.agent_home_view(None, unhelpful_by_intent=[], model_info={})
    assert texts.HOME_STATS_FAILED in str(failed) and texts.HOME_NO_MODEL in str(failed)
    empty = blocks.PeriodStats("Week", 0, 0, 0, 0, 0)
    assert "n/a" in str(blocks.agent_home_view([empty], unhelpful_by_intent=[], model_info={}))
