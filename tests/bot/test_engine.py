"""The answer engine on a real (tiny) model and knowledge base: decisions, PII masking, hostile input."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.catalog import IntentCatalog
from bot.engine import CLARIFY_TEXT, HANDOFF_TEXT, MAX_SOURCES, EmptyQuestionError, Engine, trim_passage
from bot.options import ServingOptions
from bot.versions import LoadedVersion, load_version
from retrieval.index import KnowledgeIndex
from tests.bot.conftest import TINY_INTENTS
from training.calibration import OperatingPoint

pytestmark = pytest.mark.slow

VERSION = "v20260101-000000"
RETRIEVAL_MIN = 0.45
FAR_OFF = ["what's the capital of Peru", "asdfgh"]


@pytest.fixture(scope="module")
def loaded(tiny_version: Path) -> LoadedVersion:
    return load_version(tiny_version)


@pytest.fixture(scope="module")
def engine(loaded: LoadedVersion, tiny_catalog: IntentCatalog) -> Engine:
    return Engine(
        loaded.model,
        loaded.kb,
        tiny_catalog,
        version=VERSION,
        options=ServingOptions.defaults(retrieval_min_score=RETRIEVAL_MIN, max_question_chars=500),
    )


def test_in_scope_question_gets_the_curated_answer_with_its_sources(engine: Engine, tiny_catalog: IntentCatalog):
    answer = engine.answer("I forgot my password")
    assert answer.source == "intent"
    assert answer.intent == "reset_password"
    assert answer.text == tiny_catalog.answer_for("reset_password")
    assert answer.score is not None and answer.threshold is not None
    assert answer.score >= answer.threshold and answer.score_name == engine.model.point.score
    assert answer.reason is None
    assert answer.sources[0].doc_id == "accounts/reset-password.md"  # the catalog's source comes first
    assert answer.sources[0].title == "Reset your password"
    doc_ids = [doc.doc_id for doc in answer.sources]
    assert len(doc_ids) == len(set(doc_ids)) <= MAX_SOURCES
    hit_scores = {hit.doc_id: hit.score for hit in answer.hits}  # the tiny KB's 3 documents are all hits
    for doc in answer.sources:  # a cited source's score is its real similarity, retrieved or not
        assert doc.score == pytest.approx(hit_scores[doc.doc_id], abs=1e-5)
    assert answer.model_version == VERSION
    assert answer.latency_ms > 0
    assert answer.top_intents[0][0] == "reset_password"
    assert len(answer.top_intents) == 3
    assert [hit.score for hit in answer.hits] == sorted((hit.score for hit in answer.hits), reverse=True)


@pytest.mark.parametrize("question", FAR_OFF)
def test_far_off_questions_are_handed_off_with_the_best_guess_kept(engine: Engine, question: str):
    answer = engine.answer(question)
    assert answer.source == "handoff"
    assert answer.text == HANDOFF_TEXT
    assert answer.sources == []
    assert answer.intent in engine.model.labels  # the classifier's best guess, for the agents
    assert answer.reason in ("out_of_scope", "low_confidence")
    assert all(hit.score < RETRIEVAL_MIN for hit in answer.hits)


def test_knowledge_base_only_topic_is_answered_from_retrieval(engine: Engine):
    answer = engine.answer("where is my data stored?")
    assert answer.source == "retrieval"
    assert answer.reason in ("out_of_scope", "low_confidence")
    assert "Frankfurt" in answer.text
    assert answer.sources[0].doc_id == "security/data-residency.md"
    assert answer.sources[0].score >= RETRIEVAL_MIN


def test_intent_without_curated_answer_uses_agent_written_answer(loaded: LoadedVersion):
    catalog = IntentCatalog.from_yaml(TINY_INTENTS.replace("  - name: upload_limit", "  - name: upload_limit_old"))
    assert catalog.answer_for("upload_limit") is None
    without = Engine(
        loaded.model, loaded.kb, catalog, options=ServingOptions.defaults(retrieval_min_score=RETRIEVAL_MIN)
    )
    answer = without.answer("what is the maximum file size")
    assert answer.intent == "upload_limit" and answer.source != "intent" and answer.reason == "no_answer"

    with_extra = Engine(
        loaded.model,
        loaded.kb,
        catalog,
        options=ServingOptions.defaults(retrieval_min_score=RETRIEVAL_MIN),
        extra_answers={"upload_limit": "50 GB."},
    )
    answer = with_extra.answer("what is the maximum file size")
    assert (answer.source, answer.text, answer.reason) == ("intent", "50 GB.", None)


@pytest.mark.parametrize("mask", [True, False])
def test_pii_is_masked_before_the_model_sees_the_question(
    loaded: LoadedVersion, tiny_catalog: IntentCatalog, monkeypatch: pytest.MonkeyPatch, mask: bool
):
    engine = Engine(loaded.model, loaded.kb, tiny_catalog, options=ServingOptions.defaults(mask_pii=mask))
    seen: list[str] = []
    original = loaded.model.predict_one

    def spy(text: str):  # type: ignore[no-untyped-def]
        seen.append(text)
        return original(text)

    monkeypatch.setattr(loaded.model, "predict_one", spy)
    answer = engine.answer("I forgot my password, I am jane.doe@example.com or +44 20 7946 0958")
    assert len(seen) == 1
    if mask:
        assert "jane.doe" not in seen[0] and "7946" not in seen[0]
        assert "[EMAIL]" in seen[0] and "[PHONE]" in seen[0]
        assert answer.question == seen[0]
    else:
        assert "jane.doe@example.com" in seen[0]


@pytest.mark.parametrize("question", ["", "   ", "\n\t  \r\n", "\x00\x01\x02", "\u200b\u200b", "\ufeff"])
def test_empty_questions_raise(engine: Engine, question: str):
    with pytest.raises(EmptyQuestionError, match="empty"):
        engine.answer(question)


@pytest.mark.parametrize(
    "question",
    [
        "😀😀😀🙏",
        "我忘记了密码，怎么办？",
        "نسيت كلمة المرور الخاصة بي",
        "pass\x00word\x07 re\x1bset\x7f",
        "broken \ud83d surrogate",
        "\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x01\x00",
        "refund " * 8000,
    ],
)
def test_hostile_input_gets_an_answer_not_a_crash(engine: Engine, question: str):
    answer = engine.answer(question)
    assert answer.source in ("intent", "retrieval", "handoff")
    assert answer.text
    assert len(answer.question) <= engine.options.max_question_chars
    assert not any(ord(ch) < 32 or 0xD800 <= ord(ch) <= 0xDFFF for ch in answer.question)


def test_very_long_question_is_capped_and_flagged(engine: Engine):
    answer = engine.answer("I forgot my password. " + "blah " * 10_000)  # ~50 kB
    assert answer.truncated
    assert len(answer.question) <= engine.options.max_question_chars
    assert not engine.answer("I forgot my password").truncated


def test_empty_knowledge_base_still_answers(loaded: LoadedVersion, tiny_catalog: IntentCatalog):
    empty = KnowledgeIndex.build([], loaded.model)
    engine = Engine(
        loaded.model, empty, tiny_catalog, options=ServingOptions.defaults(retrieval_min_score=RETRIEVAL_MIN)
    )
    answer = engine.answer("I forgot my password")
    assert answer.source == "intent" and answer.sources == [] and answer.hits == ()
    assert engine.answer("what's the capital of Peru").source == "handoff"
    assert engine.answer_many(["asdfgh"])[0].source == "handoff"
    assert engine.model_info["kb_chunks"] == 0


def test_answer_many_decides_like_answer(engine: Engine):
    questions = ["I forgot my password", "where is my data stored?", *FAR_OFF, "cancel my subscription"]
    batched = engine.answer_many(questions)
    single = [engine.answer(q) for q in questions]
    assert [(a.source, a.intent, a.text) for a in batched] == [(a.source, a.intent, a.text) for a in single]
    for a, b in zip(batched, single, strict=True):
        assert a.confidence == pytest.approx(b.confidence, abs=1e-4)
    assert all(a.latency_ms > 0 for a in batched)
    assert engine.answer_many([]) == []
    with pytest.raises(EmptyQuestionError, match="#1"):
        engine.answer_many(["hello", "  "])


def test_close_calls_get_a_clarifying_question_with_answerable_intents(tiny_version: Path, tiny_catalog: IntentCatalog):
    loaded = load_version(tiny_version)
    score = loaded.model.point.score
    loaded.model.point = OperatingPoint(score, threshold=1e9, clarify_threshold=-1e9)  # clarify everything
    engine = Engine(loaded.model, loaded.kb, tiny_catalog, version=VERSION)
    answer = engine.answer("I forgot my password")
    assert (answer.source, answer.text, answer.reason) == ("clarify", CLARIFY_TEXT, None)
    assert [intent for intent, _ in answer.candidates][0] == "reset_password" and len(answer.candidates) == 2
    for intent, question in answer.candidates:
        assert question == tiny_catalog.question_for(intent)
        assert engine.answer_intent(intent).text == tiny_catalog.answer_for(intent)
    assert answer.record_fields()["source"] == "clarify"
    with pytest.raises(KeyError):
        engine.answer_intent("out_of_scope")
    loaded.model.point = OperatingPoint(score, threshold=1e9)  # no clarification: the hand-off path
    assert engine.answer("I forgot my password").reason == "low_confidence"


def test_intents_and_model_info(engine: Engine):
    assert sorted(engine.intents) == ["cancel_plan", "refund", "reset_password", "upload_limit"]
    info = engine.model_info
    assert info["version"] == VERSION
    assert info["threshold"] == engine.model.threshold
    assert "accuracy" in info["metrics"]
    assert info["kb_documents"] == 3


def test_trim_passage():
    assert trim_passage("  Short passage.  ") == "Short passage."
    sentences = "First sentence is here. " * 10 + "x" * 200
    cut = trim_passage(sentences, limit=300)
    assert cut.endswith("here.") and len(cut) <= 300
    words = "word " * 200
    cut = trim_passage(words, limit=100)
    assert cut.endswith("…") and len(cut) <= 100 and "  " not in cut
    assert len(trim_passage("y" * 1000, limit=50)) == 50
