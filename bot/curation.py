"""The nightly job's work for the agents: rank the review queue and find new intents among unanswered questions.

One pass (`curate`) over the logged questions of the last CURATION_WINDOW_DAYS that no agent has labelled yet:

1. the production model scores them once (class probabilities and its encoder's embeddings);
2. the unanswered ones (hand-offs, clarifying questions, answers below DISCOVERY_MAX_CONFIDENCE) are clustered
   (`training.discovery`); a cluster that is mostly a waiting proposal's questions updates that proposal, one
   that is mostly a dismissed proposal's is not proposed again, any other becomes a new waiting proposal;
3. the review queue is ranked (`training.review`, members of waiting proposals marked) and stored in place of
   yesterday's.

Agents label from the queue or accept a proposal (the App Home, the agents' channel, `supportbot review`); the
labels are agent ratings like corrections in the thread, so the next night's training learns them.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import numpy as np

from bot.decision import predicted_intent
from bot.settings import Settings
from storage.models import Proposal
from storage.repository import NewReviewItem, RatedAnswer, RatingSource, Repository
from training.discovery import DiscoveryConfig, discover
from training.review import Signals, rank

if TYPE_CHECKING:
    from training.model import IntentModel

UNANSWERED_SOURCES = ("handoff", "clarify")
SAME_PROPOSAL = 0.5
"""A cluster is an existing proposal again when at least this share of its questions are that proposal's."""


@dataclass(frozen=True)
class CurationResult:
    """What one pass did.

    Attributes:
        scored: logged questions scored.
        queued: questions in the review queue now.
        new_proposals: proposals made tonight (to post to the agents' channel).
        updated: waiting proposals that got tonight's members.
    """

    scored: int
    queued: int
    new_proposals: list[Proposal] = field(default_factory=list)
    updated: int = 0


def curate(settings: Settings, repo: Repository, model: IntentModel, *, now: datetime) -> CurationResult:
    """Rank the review queue and make intent-discovery proposals (see the module docstring)."""
    since = now - timedelta(days=settings.curation_window_days)
    logged = [item for item in repo.unlabelled_answers(since, limit=settings.curation_max_questions) if _text(item)]
    if not logged:
        repo.replace_review_queue([], model_version=model.version)
        return CurationResult(scored=0, queued=0)
    probs, embeddings = model.probabilities([_text(item) for item in logged])
    unanswered = [i for i, item in enumerate(logged) if _unanswered(item, settings.discovery_max_confidence)]
    new, updated = _propose(
        repo,
        [logged[i] for i in unanswered],
        embeddings[unanswered],
        probs[unanswered],
        model.labels,
        repo.proposals("waiting"),
        DiscoveryConfig(min_cluster_size=settings.discovery_min_questions),
    )
    proposed = {answer_id for proposal in repo.proposals("waiting") for answer_id in proposal.answer_ids}
    signals = [
        Signals(
            handed_off=item.answer.source in UNANSWERED_SOURCES,
            disagreement=disagreed(item),
            in_proposal=item.answer.id in proposed,
        )
        for item in logged
    ]
    ranked = rank(probs, embeddings, model.labels, signals, limit=settings.review_queue_limit)
    queued = repo.replace_review_queue(
        [NewReviewItem(_id(logged[r.index]), r.priority, r.guesses, r.reasons) for r in ranked],
        model_version=model.version,
    )
    return CurationResult(scored=len(logged), queued=queued, new_proposals=new, updated=updated)


_NAME = re.compile(r"[^a-z0-9_]+")


def intent_name(raw: str) -> str:
    """An agent's name for a new intent as a label: lower case, words joined by `_` ("Damaged card" ->
    "damaged_card"); "" when nothing usable is left."""
    return _NAME.sub("_", raw.strip().lower()).strip("_")[:64]


def label_question(
    repo: Repository,
    answer_id: int,
    *,
    agent_id: str,
    intent: str,
    answer: str | None,
    oos: str,
    source: RatingSource = "review",
) -> bool:
    """Store an agent's label for a logged question: an agent rating with `corrected_intent` (and the answer
    they wrote, if any); `helpful` is whether it is what the bot predicted. The one path of the review queue
    (Slack or the terminal, source `review`) and of the correction modal in the thread (`modal`).
    False when the answer is gone."""
    stored = repo.get_answer(answer_id)
    if stored is None:
        return False
    repo.add_rating(
        answer_id,
        rater_id=agent_id,
        rater_role="agent",
        helpful=intent == predicted_intent(stored, oos),
        corrected_intent=intent,
        corrected_answer=answer,
        source=source,
    )
    return True


def disagreed(item: RatedAnswer) -> bool:
    """The customer rejected the model's intent: "not helpful" on an intent answer, or another intent picked in
    a clarifying question than the one the bot put first."""
    answer = item.answer
    for rating in item.ratings:
        if rating.rater_role != "customer":
            continue
        if rating.helpful is False and answer.source == "intent":
            return True
        picked = rating.corrected_intent
        if rating.source == "clarify" and picked and answer.intent and picked != answer.intent:
            return True
    return False


def _propose(
    repo: Repository,
    items: Sequence[RatedAnswer],
    embeddings: np.ndarray,
    probs: np.ndarray,
    labels: Sequence[str],
    waiting: Sequence[Proposal],
    config: DiscoveryConfig,
) -> tuple[list[Proposal], int]:
    clusters = discover([_text(item) for item in items], embeddings, config)
    dismissed = repo.proposals("dismissed")
    new: list[Proposal] = []
    updated = 0
    for cluster in clusters:
        members = [_id(items[i]) for i in cluster.members]
        same = _same(members, waiting)
        if same is not None and same.id is not None:
            updated += repo.update_proposal(same.id, members, cluster.typical, cohesion=cluster.cohesion) is not None
            continue
        if _same(members, dismissed) is not None:
            continue
        votes = Counter(labels[int(probs[i].argmax())] for i in cluster.members)
        nearest = votes.most_common(1)[0][0] if votes else None
        new.append(repo.add_proposal(members, cluster.typical, cohesion=cluster.cohesion, nearest_intent=nearest))
    return new, updated


def _same(members: Sequence[int], proposals: Sequence[Proposal]) -> Proposal | None:
    """The proposal most of these questions already belong to, if any."""
    wanted = set(members)
    best = max(proposals, key=lambda p: len(wanted & set(p.answer_ids)), default=None)
    if best is None or len(wanted & set(best.answer_ids)) < SAME_PROPOSAL * len(wanted):
        return None
    return best


def _unanswered(item: RatedAnswer, max_confidence: float) -> bool:
    answer = item.answer
    return answer.source in UNANSWERED_SOURCES or (answer.confidence is not None and answer.confidence < max_confidence)


def _text(item: RatedAnswer) -> str:
    return item.question.text.strip()


def _id(item: RatedAnswer) -> int:
    assert item.answer.id is not None
    return item.answer.id
