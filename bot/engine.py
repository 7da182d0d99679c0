"""The answer engine: one question in, one decision out (curated answer, knowledge-base passage or hand-off).

Pipeline for each question:

1. clean (control characters and unpaired surrogates become spaces), normalise whitespace, cap the length;
2. mask personal data (`storage.privacy.mask_pii`, the masking the store applies, so the model serves on the
   same text it is later trained on);
3. ONE forward pass of the intent model: class probabilities and the L2-normalised question embedding;
4. FAISS search of the knowledge base with that embedding (the index was built with the same encoder);
5. decide: `bot.decision.AnswerPolicy` (the one decision policy, on the model's operating point) says
   answer, clarify, cite a passage or hand off; the engine only writes the decision out as an `EngineAnswer`
   (texts, cited sources, diagnostics).

Every setting comes from one `bot.options.ServingOptions` (the settings' defaults when none is given).
"""

from __future__ import annotations

import re
import time
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from bot.answer import EmptyQuestionError, EngineAnswer, SourceDoc
from bot.catalog import IntentCatalog
from bot.decision import AnswerPolicy
from bot.options import ServingOptions
from retrieval.index import Hit, KnowledgeIndex
from storage.privacy import mask_pii as _mask_pii
from training.model import IntentModel, Prediction
from training.text import normalise_text

HANDOFF_TEXT = "I'm not sure about this one, so I've asked a human colleague to follow up here."
"""What the customer reads when the bot hands the question to a human."""
CLARIFY_TEXT = "I want to get this right. Which of these do you mean?"
"""What the customer reads above the buttons of a clarifying question."""

MAX_SOURCES = 3
"""Most knowledge-base documents cited with an answer."""
SEARCH_K = 5
"""Knowledge-base hits fetched per question (one per document)."""
TOP_INTENTS = 3
"""Intents kept in the answer's diagnostics."""
PASSAGE_MAX_CHARS = 700
"""A knowledge-base passage longer than this is cut at a sentence (or word) boundary."""

_MASK_WINDOW = 4
"""Mask PII in the first `max_question_chars * _MASK_WINDOW` characters, then cap: bounded regex work, and a
PII value straddling the cap is masked whole rather than cut into an unrecognisable (unmasked) fragment."""

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")
_SENTENCE_END = re.compile(r"[.!?…](?=[\s\"')\]]|$)")


@dataclass(frozen=True)
class _Question:
    text: str
    truncated: bool


class Engine:
    """Answers questions with one model version: its intent model, its knowledge-base index and the catalog.

    Thread-safe: the model runs under torch inference mode and the index has its own lock, so several threads
    may call `answer` at once.

    Args:
        model: The intent model (classifies and embeds in one pass).
        index: The knowledge-base index built with `model`'s encoder.
        catalog: Intent -> curated answer and source documents.
        version: Registry version of the model, reported with every answer.
        options: The serving settings used here: `out_of_scope_label` (never answered from, beside the model's
            own), `retrieval_min_score`, `mask_pii` (before the model sees the question) and
            `max_question_chars` (longer questions are cut, and the answer says `truncated`). None: the
            settings' defaults.
        extra_answers: Agent-written answers for intents the catalog lacks (intents learnt from corrections);
            the catalog's curated answer wins when both exist.

    Example:
        >>> engine = Engine(model, index, catalog, version="v20261128-233001")
        >>> engine.answer("I forgot my password").source
        'intent'
    """

    def __init__(
        self,
        model: IntentModel,
        index: KnowledgeIndex,
        catalog: IntentCatalog,
        *,
        version: str | None = None,
        options: ServingOptions | None = None,
        extra_answers: Mapping[str, str] | None = None,
    ) -> None:
        options = options or ServingOptions.defaults()
        if options.max_question_chars < 1:
            raise ValueError(f"max_question_chars must be >= 1 (got {options.max_question_chars})")
        self.model = model
        self.index = index
        self.catalog = catalog
        self.version = version or model.version
        self.options = options
        self.extra_answers = dict(extra_answers or {})
        self.policy = AnswerPolicy(
            out_of_scope_labels={options.out_of_scope_label, model.out_of_scope_label},
            retrieval_min_score=options.retrieval_min_score,
            curated=self._curated,
        )
        self._source_docs = self._catalog_documents()

    # --- public API -----------------------------------------------------------------------------------

    @property
    def intents(self) -> list[str]:
        """Intents the model can predict and the bot can answer (the out-of-scope label excluded)."""
        return [label for label in self.model.labels if self.policy.in_scope(label)]

    @property
    def model_info(self) -> dict[str, Any]:
        """Version, threshold, validation metrics and knowledge-base size of the model answering."""
        info = self.model.info
        return {
            "version": self.version,
            "threshold": self.model.threshold,
            "score": self.model.point.score,
            "metrics": dict(info.get("validation") or {}),
            "intents": len(self.intents),
            "created_at": info.get("created_at"),
            "base_model": info.get("base_model"),
            "quantized": bool(info.get("quantized")),
            "kb_documents": self.index.document_count,
            "kb_chunks": self.index.chunk_count,
            "retrieval_min_score": self.options.retrieval_min_score,
        }

    def prepare(self, text: str) -> str:
        """The question as the model sees it: cleaned, normalised, PII-masked and capped.

        Raises:
            EmptyQuestionError: Nothing is left to answer.
        """
        return self._prepare(text).text

    def answer(self, text: str) -> EngineAnswer:
        """Answer one question (one transformer pass and one index search).

        Raises:
            EmptyQuestionError: The question is empty or whitespace only.
        """
        started = time.perf_counter()
        question = self._prepare(text)
        prediction = self.model.predict_one(question.text)
        hits = self.index.search(prediction.embedding, SEARCH_K) if self.index.chunk_count else []
        return self._decide(question, prediction, hits, started)

    def answer_many(self, texts: Sequence[str], batch_size: int = 64) -> list[EngineAnswer]:
        """Answer several questions with batched forward passes and one batched search (for throughput).

        Each answer's `latency_ms` is the batch's time divided by its size.

        Raises:
            EmptyQuestionError: One of the questions is empty (the message gives its position).
        """
        started = time.perf_counter()
        questions = []
        for position, text in enumerate(texts):
            try:
                questions.append(self._prepare(text))
            except EmptyQuestionError as exc:
                raise EmptyQuestionError(f"question #{position} is empty: {exc}") from None
        if not questions:
            return []
        predictions = self.model.predict([q.text for q in questions], batch_size=batch_size)
        if self.index.chunk_count:
            vectors = np.stack([p.embedding for p in predictions])
            all_hits = self.index.search_batch(vectors, SEARCH_K)
        else:
            all_hits = [[] for _ in predictions]
        answers = [self._decide(q, p, h, None) for q, p, h in zip(questions, predictions, all_hits, strict=True)]
        per_question = (time.perf_counter() - started) * 1000 / len(answers)
        return [_with_latency(a, per_question) for a in answers]

    # --- steps ----------------------------------------------------------------------------------------

    def _prepare(self, text: str) -> _Question:
        if not isinstance(text, str):
            raise TypeError(f"the question must be a string, not {type(text).__name__}")
        limit = self.options.max_question_chars
        window = text[: limit * _MASK_WINDOW]
        cleaned = _CONTROL.sub(" ", window)
        if self.options.mask_pii:
            cleaned = _mask_pii(cleaned)
        full = normalise_text(cleaned, max_chars=len(cleaned))
        normalised = full[:limit].rstrip()
        if not any(_is_visible(ch) for ch in normalised):
            raise EmptyQuestionError("the question is empty; type a question to get an answer")
        return _Question(normalised, truncated=len(text) > len(window) or len(full) > limit)

    def answer_intent(self, intent: str) -> EngineAnswer:
        """The curated answer of `intent`, as when the classifier picked it (a customer's clarification).

        Raises:
            KeyError: The intent has no curated answer.
        """
        curated = self._curated(intent)
        if not curated:
            raise KeyError(intent)
        sources = self._intent_sources(intent, None, [])
        return EngineAnswer(curated, "intent", intent, None, sources, self.version, threshold=self.model.threshold)

    def _curated(self, intent: str) -> str | None:
        """The catalog's curated answer of `intent`, else the one agents wrote for it."""
        return self.catalog.answer_for(intent) or self.extra_answers.get(intent)

    def _decide(
        self, question: _Question, prediction: Prediction, hits: list[Hit], started: float | None
    ) -> EngineAnswer:
        decision = self.policy.decide(prediction, hits)
        candidates: tuple[tuple[str, str], ...] = ()
        if decision.kind == "intent":
            assert decision.curated is not None
            text = decision.curated
            sources = self._intent_sources(prediction.label, prediction.embedding, list(decision.passages))
        elif decision.kind == "clarify":
            text, sources = CLARIFY_TEXT, []
            candidates = tuple((intent, self.catalog.question_for(intent)) for intent in decision.offered)
        elif decision.kind == "retrieval":
            text = trim_passage(decision.passages[0].text)
            sources = [_source(hit) for hit in decision.passages[:MAX_SOURCES]]
        else:
            text, sources = HANDOFF_TEXT, []

        ranked = sorted(prediction.scores.items(), key=lambda item: item[1], reverse=True)[:TOP_INTENTS]
        latency = (time.perf_counter() - started) * 1000 if started is not None else 0.0
        return EngineAnswer(
            text=text,
            source=decision.kind,
            intent=prediction.label,
            confidence=prediction.confidence,
            sources=sources,
            model_version=self.version,
            latency_ms=latency,
            question=question.text,
            truncated=question.truncated,
            threshold=self.model.threshold,
            top_intents=tuple((name, float(p)) for name, p in ranked),
            hits=tuple(_source(hit) for hit in hits),
            reason=decision.reason,
            score=prediction.score if np.isfinite(prediction.score) else None,
            score_name=self.model.point.score,
            candidates=candidates,
        )

    def _intent_sources(self, intent: str, embedding: np.ndarray | None, relevant: list[Hit]) -> list[SourceDoc]:
        """The catalog's documents for `intent` first, then the relevant hits; distinct, at most MAX_SOURCES."""
        sources: dict[str, SourceDoc] = {}
        scores = {hit.doc_id: hit.score for hit in relevant}
        for doc_id in self.catalog.sources_for(intent):
            known = self._source_docs.get(doc_id)
            if known is None or doc_id in sources:
                continue
            title, url, vectors = known
            score = scores.get(doc_id)
            if score is None:
                score = float((vectors @ embedding).max()) if embedding is not None else 1.0
            sources[doc_id] = SourceDoc(doc_id, title, url, score)
        for hit in relevant:
            sources.setdefault(hit.doc_id, _source(hit))
        return list(sources.values())[:MAX_SOURCES]

    # --- set-up ---------------------------------------------------------------------------------------

    def _catalog_documents(self) -> dict[str, tuple[str, str | None, np.ndarray]]:
        """Title, URL and stored chunk vectors of every indexed document the catalog cites (to score it)."""
        documents: dict[str, tuple[str, str | None, np.ndarray]] = {}
        for doc_id in sorted({doc_id for intent in self.catalog for doc_id in intent.sources}):
            chunks = self.index.chunks(doc_id)
            if chunks:
                documents[doc_id] = (chunks[0].title, chunks[0].url, self.index.vectors(doc_id))
        return documents


def trim_passage(text: str, limit: int = PASSAGE_MAX_CHARS) -> str:
    """Cut a passage to at most `limit` characters: at a paragraph or sentence end when one is past the
    middle, else at a word boundary with an ellipsis.
    """
    text = text.strip()
    if len(text) <= limit:
        return text
    head = text[:limit]
    paragraph = head.rfind("\n\n")
    if paragraph >= limit // 2:
        return head[:paragraph].rstrip()
    ends = [m.end() for m in _SENTENCE_END.finditer(head)]
    if ends and ends[-1] >= limit // 2:
        return head[: ends[-1]].rstrip()
    space = head.rfind(" ")
    cut = head[:space] if space >= limit // 2 else head[: limit - 1]
    return cut.rstrip(" ,;:-") + "…"


def _is_visible(char: str) -> bool:
    """Not whitespace, not a format/control/unassigned code point (e.g. a zero-width space)."""
    return not char.isspace() and unicodedata.category(char)[0] not in ("C", "Z")


def _source(hit: Hit) -> SourceDoc:
    return SourceDoc(hit.doc_id, hit.title, hit.url, hit.score)


def _with_latency(answer: EngineAnswer, latency_ms: float) -> EngineAnswer:
    return replace(answer, latency_ms=latency_ms)
