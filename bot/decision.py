"""The one decision policy: what the bot does with a question (answer, ask, cite a passage or hand off).

The operating point (`training.calibration.OperatingPoint.actions`, applied by the model as `Prediction.action`)
is the one rule for answer / clarify / hand off; `AnswerPolicy.decide` adds only what the model cannot know:

1. a top intent that is out of scope (the settings' label, or the model's own) is never answered
   (`Reason.OUT_OF_SCOPE`);
2. "clarify" asks which of the operating point's two candidates is meant, those that are in scope and have a
   curated answer (none left: `Reason.LOW_CONFIDENCE`);
3. "answer" gives the intent's curated answer (none: `Reason.NO_ANSWER`); "handoff" is `Reason.LOW_CONFIDENCE`;
4. a question not answered from its intent gets the best knowledge-base passage whose score reaches
   `retrieval_min_score` (retrieval fallback), else it is handed off.

The front ends do not re-decide: an engine failure becomes a hand-off here (`answer_or_hand_off`), the reason
a hand-off is stored with is `handoff_reason`, and what the bot effectively predicted for a stored answer (the
starting point of an agent's correction) is `predicted_intent`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

from bot.answer import AnswerKind, EngineAnswer, EngineLike
from storage.models import Answer
from storage.repository import HandoffReason
from training.data import OUT_OF_SCOPE

if TYPE_CHECKING:  # the Slack edge imports this module without loading torch or FAISS
    from retrieval.index import Hit
    from training.model import Prediction

logger = logging.getLogger(__name__)


class Reason(StrEnum):
    """Why a question was not answered from its intent's curated answer (`EngineAnswer.reason`)."""

    OUT_OF_SCOPE = OUT_OF_SCOPE
    LOW_CONFIDENCE = "low_confidence"
    NO_ANSWER = "no_answer"


_WHY: dict[str, str] = {
    Reason.OUT_OF_SCOPE: "the classifier says out of scope",
    Reason.LOW_CONFIDENCE: "score below the threshold",
    Reason.NO_ANSWER: "no curated answer for this intent",
}


def why_not(reason: str) -> str:
    """A `Reason` in words (the terminal's diagnostics); any other value as it is."""
    return _WHY.get(reason, reason)


@dataclass(frozen=True)
class Decision:
    """What to do with one question.

    Attributes:
        kind: `intent` (the curated answer), `clarify`, `retrieval` (a passage) or `handoff`.
        reason: Why the curated answer was not given; None for `intent` and `clarify`.
        curated: For `intent`, the curated answer.
        offered: For `clarify`, the intents offered, best first.
        passages: The knowledge-base hits at or above `retrieval_min_score`, best first (a `retrieval` answer
            is the first; an `intent` answer cites them).
    """

    kind: AnswerKind
    reason: Reason | None = None
    curated: str | None = None
    offered: tuple[str, ...] = ()
    passages: tuple[Hit, ...] = ()


class AnswerPolicy:
    """Turns the model's prediction and the knowledge-base hits of a question into a `Decision`.

    Args:
        out_of_scope_labels: Labels the bot never answers from (the settings' label and the model's own).
        retrieval_min_score: Cosine score a passage needs to be given as the answer.
        curated: The curated answer of an intent, or None when it has none.
    """

    def __init__(
        self, *, out_of_scope_labels: Iterable[str], retrieval_min_score: float, curated: Callable[[str], str | None]
    ) -> None:
        self.out_of_scope_labels = frozenset(out_of_scope_labels)
        self.retrieval_min_score = retrieval_min_score
        self._curated = curated

    def in_scope(self, label: str) -> bool:
        """Whether the bot may answer from `label`."""
        return label not in self.out_of_scope_labels

    def decide(self, prediction: Prediction, hits: Sequence[Hit]) -> Decision:
        """The decision for one question (see the module's docstring)."""
        passages = tuple(hit for hit in hits if hit.score >= self.retrieval_min_score)
        label = prediction.label
        if not self.in_scope(label):
            return self._fallback(Reason.OUT_OF_SCOPE, passages)
        if prediction.action == "clarify":
            offered = tuple(i for i in prediction.candidates if self.in_scope(i) and self._curated(i))
            if offered:
                return Decision("clarify", offered=offered, passages=passages)
            return self._fallback(Reason.LOW_CONFIDENCE, passages)
        if prediction.action != "answer":
            return self._fallback(Reason.LOW_CONFIDENCE, passages)
        curated = self._curated(label)
        if not curated:
            return self._fallback(Reason.NO_ANSWER, passages)
        return Decision("intent", curated=curated, passages=passages)

    @staticmethod
    def _fallback(reason: Reason, passages: tuple[Hit, ...]) -> Decision:
        """Not answered from the intent: the best passage when one is relevant, else a hand-off."""
        return Decision("retrieval" if passages else "handoff", reason=reason, passages=passages)


def answer_or_hand_off(
    engine: EngineLike, text: str, *, failure_text: str
) -> tuple[EngineAnswer, HandoffReason | None]:
    """Ask the engine; an engine failure becomes a hand-off saying `failure_text` (never a silent drop).

    Returns the answer and, when it is a hand-off, the reason to store it with (`handoff_reason`).
    """
    started = time.perf_counter()
    try:
        answer = engine.answer(text)
    except Exception:
        logger.exception("the engine failed on a question; handing it off")
        elapsed = (time.perf_counter() - started) * 1000
        failed = EngineAnswer(failure_text, "handoff", None, None, [], None, elapsed)
        return failed, handoff_reason(failed, failed=True)
    return answer, handoff_reason(answer)


def handoff_reason(answer: EngineAnswer, *, failed: bool = False) -> HandoffReason | None:
    """The reason a hand-off is stored with: `engine_error` when the engine failed, `abstained` when it chose
    to hand off; None when `answer` is not a hand-off."""
    if answer.source != "handoff":
        return None
    return "engine_error" if failed else "abstained"


def predicted_intent(answer: Answer, out_of_scope_label: str) -> str | None:
    """What the bot effectively predicted for a stored answer: its intent, or out of scope when it handed off."""
    return out_of_scope_label if answer.source == "handoff" else answer.intent
