"""The review queue's order: which logged questions an agent's label would help the next model most.

Pure functions (no database, no Slack); `bot.curation` scores the logged questions with the production model
and stores the ranking, the App Home and `supportbot review` show it.

How the priority is chosen (uncertainty sampling with the signals a support team has):

* **close call**: `1 - (p1 - p2)`, one minus the margin between the model's two most likely labels (margin
  sampling, Scheffer et al. 2001): the questions the model is least sure of are the ones a label moves most;
* **disagreement**: the customer said "not helpful" to an intent answer, or picked another intent than the
  model's in a clarifying question (+`disagreement_bonus`): the model is sure and wrong;
* **hand-off**: the bot did not answer (+`handoff_bonus`): the customer waited for a person;
* **new cluster**: the question belongs to a waiting intent-discovery proposal (+`cluster_bonus`).

Near-duplicates are queued once: a question whose embedding is at least `duplicate_similarity` (cosine) to one
already queued is skipped, so ten copies of one question do not fill the queue. Then the queue is spread over
the embedding space (diverse mini-batch selection, Zhdanov 2019): the `diversity` x `limit` highest-priority
questions are grouped by k-means into `limit` groups and the highest of each is queued, so the queue does not
spend its labels on one confusable pair of intents (margin order alone picked 54 intents' questions for 100
labels, random 57-61). `diversity=10` was chosen on HWU64's validation split (the best at N = 300 on both
split seeds, about random's at N = 100). Measured against labelling random logged questions in
`bench/bench_review.py` (BENCHMARKS.md, "Review queue vs random labelling"): over 10 samples of BANKING77 logs, a
next model on the frozen encoder gains 0.7 (N = 100) and 1.2 (N = 300) points of test accuracy more than with N
random labels; with the nightly fine-tune the lead is about half that and not yet shown significant.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class ReviewConfig:
    """Weights of the review queue's priority and its spread (see the module docstring); `diversity` <= 1 keeps
    the priority order alone."""

    disagreement_bonus: float = 1.0
    handoff_bonus: float = 0.5
    cluster_bonus: float = 0.25
    duplicate_similarity: float = 0.95
    guesses: int = 3
    diversity: int = 10


@dataclass(frozen=True)
class Signals:
    """What the logs say about one question.

    Attributes:
        handed_off: the bot handed it to a person (or asked a clarifying question nobody answered).
        disagreement: the customer rejected the model's intent (unhelpful rating, or another clarify choice).
        in_proposal: it belongs to a waiting intent-discovery proposal.
    """

    handed_off: bool = False
    disagreement: bool = False
    in_proposal: bool = False


@dataclass(frozen=True)
class Ranked:
    """One queued question.

    Attributes:
        index: its position in the inputs of `rank`.
        priority: the score it was ranked by (higher first).
        guesses: the model's most likely labels with their probabilities, most likely first.
        reasons: why it is queued, for the agent ("close call", "handed off", ...).
    """

    index: int
    priority: float
    guesses: tuple[tuple[str, float], ...]
    reasons: tuple[str, ...]


CLOSE_CALL = "close call"
DISAGREEMENT = "customer disagreed"
HANDED_OFF = "handed off"
IN_PROPOSAL = "in a new-intent proposal"
CLOSE_MARGIN = 0.2
"""A margin below this is called a close call in the reasons shown to agents."""


def priorities(probs: np.ndarray, signals: Sequence[Signals], config: ReviewConfig | None = None) -> np.ndarray:
    """The priority of each row of `probs` (n, labels) given its signals (see the module docstring)."""
    config = config or ReviewConfig()
    probs = np.asarray(probs, dtype=np.float64)
    if probs.ndim != 2 or probs.shape[0] != len(signals):
        raise ValueError(f"need one probability row per question: {len(signals)} signals, probs {probs.shape}")
    if probs.shape[1] >= 2:
        top2 = -np.sort(-probs, axis=1)[:, :2]
        uncertainty = 1.0 - (top2[:, 0] - top2[:, 1])
    else:
        uncertainty = np.zeros(len(signals))
    bonus = np.array(
        [
            config.disagreement_bonus * s.disagreement
            + config.handoff_bonus * s.handed_off
            + config.cluster_bonus * s.in_proposal
            for s in signals
        ],
        dtype=np.float64,
    )
    return uncertainty + bonus.reshape(len(signals))


def rank(
    probs: np.ndarray,
    embeddings: np.ndarray,
    labels: Sequence[str],
    signals: Sequence[Signals],
    *,
    limit: int | None = None,
    config: ReviewConfig | None = None,
) -> list[Ranked]:
    """The questions in queue order, near-duplicates skipped, at most `limit` of them."""
    config = config or ReviewConfig()
    score = priorities(probs, signals, config)
    vectors = np.asarray(embeddings, dtype=np.float64)
    if vectors.shape[0] != len(signals):
        raise ValueError(f"need one embedding row per question: {len(signals)} signals, embeddings {vectors.shape}")
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    vectors = vectors / np.where(norms > 0, norms, 1.0)
    chosen: list[int] = []
    wanted = None if limit is None else limit * max(1, config.diversity)
    for row in np.argsort(-score, kind="stable"):
        if wanted is not None and len(chosen) >= wanted:
            break
        if chosen and float(np.max(vectors[chosen] @ vectors[row])) >= config.duplicate_similarity:
            continue
        chosen.append(int(row))
    if limit is not None and config.diversity > 1 and len(chosen) > limit:
        chosen = _spread(chosen, vectors, score, limit)
    queued = []
    for row in chosen[: len(chosen) if limit is None else limit]:
        order = np.argsort(-probs[row], kind="stable")[: config.guesses]
        guesses = tuple((labels[int(i)], float(probs[row][int(i)])) for i in order)
        queued.append(Ranked(row, float(score[row]), guesses, _reasons(guesses, signals[row])))
    return queued


def _spread(rows: list[int], vectors: np.ndarray, score: np.ndarray, limit: int) -> list[int]:
    """`limit` of `rows` spread over the embedding space: k-means into `limit` groups, the highest priority of
    each, highest first."""
    from sklearn.cluster import KMeans

    groups = KMeans(n_clusters=limit, n_init=1, random_state=0).fit_predict(vectors[rows])
    best: dict[int, int] = {}
    for row, group in zip(rows, groups, strict=True):
        if int(group) not in best:  # rows come highest priority first
            best[int(group)] = row
    return sorted(best.values(), key=lambda row: -score[row])


def _reasons(guesses: tuple[tuple[str, float], ...], signals: Signals) -> tuple[str, ...]:
    reasons = []
    if signals.disagreement:
        reasons.append(DISAGREEMENT)
    if signals.handed_off:
        reasons.append(HANDED_OFF)
    if len(guesses) >= 2 and guesses[0][1] - guesses[1][1] < CLOSE_MARGIN:
        reasons.append(CLOSE_CALL)
    if signals.in_proposal:
        reasons.append(IN_PROPOSAL)
    return tuple(reasons)
