"""What an answering engine returns, and the interface the front ends (Slack, CLI) code against.

A tiny neutral module: `bot/engine.py` implements `EngineLike`, `bot/slack` and `bot/cli` consume it, and
neither has to import the other.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

AnswerKind = Literal["intent", "retrieval", "clarify", "handoff"]


@dataclass(frozen=True)
class SourceDoc:
    """A knowledge-base document an answer is drawn from.

    Args:
        doc_id: stable id of the document (or chunk) in the index.
        title: human-readable title shown to the customer.
        url: link to the document, when it has one.
        score: similarity score of the hit (cosine, higher is closer).
    """

    doc_id: str
    title: str
    url: str | None
    score: float


@dataclass(frozen=True)
class EngineAnswer:
    """The engine's decision for one question.

    Args:
        text: what to say: the curated answer, the knowledge-base passage, the clarifying question, or the
            hand-off text.
        source: `intent` (curated answer), `retrieval` (knowledge-base passage), `clarify` (the customer is
            asked which of `candidates` they mean) or `handoff` (not confident).
        intent: the predicted intent, when the classifier produced one (also its best guess on a hand-off).
        confidence: the classifier's probability for `intent`.
        sources: knowledge-base documents backing the answer, best first.
        model_version: registry version of the model that answered, `None` before any model is trained.
        latency_ms: time the engine spent on the question.
        question: the question as the model saw it (normalised, length-capped, PII-masked).
        truncated: the question was cut to the engine's length limit.
        threshold: the operating point's answer threshold `score` was compared with.
        top_intents: the classifier's best intents with their probabilities, best first (diagnostics).
        hits: the best knowledge-base hits, whatever their score, best first (diagnostics).
        reason: why the curated answer was not given (`out_of_scope`, `low_confidence`, `no_answer`);
            `None` when `source` is `intent` or `clarify`.
        score: the out-of-scope score of the question (`score_name`), compared with `threshold`.
        score_name: which score the model's operating point uses (e.g. `combined`, `msp`).
        candidates: for `clarify`, the intents offered, best first, each with the question that names it.
    """

    text: str
    source: AnswerKind
    intent: str | None
    confidence: float | None
    sources: list[SourceDoc] = field(default_factory=list)
    model_version: str | None = None
    latency_ms: float = 0.0
    question: str = ""
    truncated: bool = False
    threshold: float | None = None
    top_intents: tuple[tuple[str, float], ...] = ()
    hits: tuple[SourceDoc, ...] = ()
    reason: str | None = None
    score: float | None = None
    score_name: str | None = None
    candidates: tuple[tuple[str, str], ...] = ()

    def record_fields(self) -> dict[str, Any]:
        """The stored fields of this answer (`storage.repository.NewAnswer(**fields)`, or the keyword arguments of
        `Repository.record_answer`), the same for every front end: Slack, `ask`, `chat`."""
        return {
            "text": self.text,
            "source": self.source,
            "intent": self.intent,
            "confidence": self.confidence,
            "doc_ids": [doc.doc_id for doc in self.sources],
            "doc_scores": [doc.score for doc in self.sources],
            "model_version": self.model_version,
            "latency_ms": self.latency_ms,
        }


class EngineLike(Protocol):
    """Anything that answers questions: `bot.engine.Engine` or the hot-reloading holder in `bot.runtime`."""

    def answer(self, text: str) -> EngineAnswer:
        """Answer one question. Synchronous and CPU-bound: async callers run it off the event loop."""
        ...

    def answer_intent(self, intent: str) -> EngineAnswer:
        """The curated answer of `intent` (the customer picked it in a clarifying question)."""
        ...

    @property
    def intents(self) -> list[str]:
        """The intents the current model knows (offered to agents when they correct an answer)."""
        ...

    @property
    def model_info(self) -> dict[str, Any]:
        """The current model's version and evaluation metrics (shown on the agents' App Home)."""
        ...


class EmptyQuestionError(ValueError):
    """The question is empty once whitespace and control characters are removed; there is nothing to answer."""
