"""The one decision policy (`bot.decision`) and the serving options it is configured by, without a model."""

from __future__ import annotations

from dataclasses import FrozenInstanceError
from typing import Any

import numpy as np
import pytest

from bot.answer import EngineAnswer
from bot.decision import AnswerPolicy, Reason, answer_or_hand_off, handoff_reason, predicted_intent, why_not
from bot.options import ServingOptions
from bot.settings import Settings, load_settings
from retrieval.index import Hit
from storage.models import Answer
from training.calibration import Action
from training.data import OUT_OF_SCOPE
from training.model import Prediction

CURATED = {"reset_password": "Use the reset link.", "billing": "See the billing page."}
MIN_SCORE = 0.5


def policy() -> AnswerPolicy:
    return AnswerPolicy(
        out_of_scope_labels={OUT_OF_SCOPE, "model_oos"}, retrieval_min_score=MIN_SCORE, curated=CURATED.get
    )


def prediction(label: str, action: Action, candidates: tuple[str, ...] = ()) -> Prediction:
    return Prediction(label, 0.9, {label: 0.9}, np.zeros(4, dtype=np.float32), action, 0.9, candidates)


def hit(score: float, doc_id: str = "doc") -> Hit:
    return Hit(doc_id=doc_id, chunk_id=f"{doc_id}#0", title=doc_id, text="A passage.", url=None, score=score)


GOOD, WEAK = hit(0.8, "good"), hit(0.3, "weak")


@pytest.mark.parametrize(
    ("label", "action", "candidates", "hits", "kind", "reason"),
    [
        ("reset_password", "answer", (), [GOOD, WEAK], "intent", None),
        ("reset_password", "answer", (), [], "intent", None),
        ("unknown_intent", "answer", (), [GOOD], "retrieval", Reason.NO_ANSWER),
        ("unknown_intent", "answer", (), [WEAK], "handoff", Reason.NO_ANSWER),
        ("reset_password", "handoff", (), [GOOD], "retrieval", Reason.LOW_CONFIDENCE),
        ("reset_password", "handoff", (), [WEAK], "handoff", Reason.LOW_CONFIDENCE),
        ("reset_password", "clarify", ("reset_password", "billing"), [GOOD], "clarify", None),
        ("reset_password", "clarify", ("unknown_intent", OUT_OF_SCOPE), [GOOD], "retrieval", Reason.LOW_CONFIDENCE),
        (OUT_OF_SCOPE, "answer", (), [WEAK], "handoff", Reason.OUT_OF_SCOPE),
        ("model_oos", "answer", (), [GOOD], "retrieval", Reason.OUT_OF_SCOPE),
        (OUT_OF_SCOPE, "clarify", ("reset_password", "billing"), [], "handoff", Reason.OUT_OF_SCOPE),
    ],
)
def test_the_policy_follows_the_operating_point_and_adds_only_scope_answers_and_passages(
    label: str, action: Action, candidates: tuple[str, ...], hits: list[Hit], kind: str, reason: Reason | None
) -> None:
    decision = policy().decide(prediction(label, action, candidates), hits)
    assert (decision.kind, decision.reason) == (kind, reason)
    assert decision.passages == tuple(h for h in hits if h.score >= MIN_SCORE)
    assert decision.curated == (CURATED[label] if kind == "intent" else None)
    if kind == "clarify":
        assert decision.offered == ("reset_password", "billing")


def test_clarify_offers_only_answerable_in_scope_intents() -> None:
    decision = policy().decide(prediction("billing", "clarify", ("billing", OUT_OF_SCOPE)), [])
    assert (decision.kind, decision.offered) == ("clarify", ("billing",))
    assert policy().in_scope("billing") and not policy().in_scope("model_oos")


class _Failing:
    def answer(self, text: str) -> EngineAnswer:
        raise RuntimeError("boom")


class _Answering:
    def __init__(self, source: Any) -> None:
        self.source = source

    def answer(self, text: str) -> EngineAnswer:
        return EngineAnswer(text, self.source, None, None)


def test_an_engine_failure_is_a_hand_off_stored_as_engine_error(caplog: pytest.LogCaptureFixture) -> None:
    answer, reason = answer_or_hand_off(_Failing(), "hi", failure_text="Sorry.")  # type: ignore[arg-type]
    assert (answer.text, answer.source, answer.intent, reason) == ("Sorry.", "handoff", None, "engine_error")
    assert answer.latency_ms >= 0 and "handing it off" in caplog.text
    assert answer_or_hand_off(_Answering("handoff"), "q", failure_text="x")[1] == "abstained"  # type: ignore[arg-type]
    assert answer_or_hand_off(_Answering("intent"), "q", failure_text="x")[1] is None  # type: ignore[arg-type]
    assert handoff_reason(EngineAnswer("t", "clarify", None, None)) is None


def test_what_the_bot_predicted_for_a_stored_answer() -> None:
    assert predicted_intent(Answer(source="handoff", intent="billing", text="t"), "oos") == "oos"
    assert predicted_intent(Answer(source="retrieval", intent="billing", text="t"), "oos") == "billing"


def test_reasons_in_words() -> None:
    assert why_not(Reason.OUT_OF_SCOPE) == why_not("out_of_scope") == "the classifier says out of scope"
    assert why_not("something new") == "something new"
    assert Reason.OUT_OF_SCOPE == OUT_OF_SCOPE  # the reason's value is the default label's constant


def test_serving_options_come_from_the_settings_only(monkeypatch: pytest.MonkeyPatch) -> None:
    defaults = ServingOptions.defaults()
    fields = Settings.model_fields
    assert defaults.out_of_scope_label == fields["out_of_scope_label"].default == OUT_OF_SCOPE
    assert defaults.retrieval_min_score == fields["retrieval_min_score"].default
    assert defaults.max_question_chars == fields["max_question_chars"].default
    assert defaults.max_retries == fields["slack_max_retries"].default
    assert defaults.reload_interval_s == fields["reload_interval_s"].default
    assert defaults.bot_token is None and defaults.support_channel_ids == frozenset()

    monkeypatch.setenv("RETRIEVAL_MIN_SCORE", "0.7")  # defaults() ignores the environment; from_settings reads it
    assert ServingOptions.defaults() == defaults
    settings = load_settings(
        slack_bot_token="xoxb-1", out_of_scope_label="nope", support_channel_ids="C1, C2", pii_masking=False
    )
    options = ServingOptions.from_settings(settings)
    assert (options.retrieval_min_score, options.out_of_scope_label, options.mask_pii) == (0.7, "nope", False)
    assert options.bot_token == "xoxb-1" and "xoxb-1" not in repr(options)
    assert options.support_channel_ids == frozenset({"C1", "C2"}) and options.torch_threads is None
    with pytest.raises(FrozenInstanceError):
        options.max_retries = 9  # type: ignore[misc]
