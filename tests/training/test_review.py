"""The review queue's order: close calls and the logs' signals first, near-duplicates once."""

from __future__ import annotations

import numpy as np
import pytest

from training.review import CLOSE_CALL, DISAGREEMENT, HANDED_OFF, IN_PROPOSAL, ReviewConfig, Signals, priorities, rank

LABELS = ["billing", "refund", "card"]


def _probs(*rows: list[float]) -> np.ndarray:
    return np.array(rows, dtype=np.float64)


def test_the_closest_call_comes_first_and_signals_add_to_it() -> None:
    probs = _probs([0.9, 0.05, 0.05], [0.45, 0.44, 0.11], [0.7, 0.2, 0.1], [0.95, 0.03, 0.02])
    signals = [Signals(), Signals(), Signals(handed_off=True), Signals(disagreement=True)]
    score = priorities(probs, signals)
    assert score == pytest.approx([0.15, 0.99, 0.5 + 0.5, 0.08 + 1.0])
    queued = rank(probs, np.eye(4), LABELS, signals)
    assert [r.index for r in queued] == [3, 2, 1, 0]
    assert queued[0].reasons == (DISAGREEMENT,) and queued[0].guesses[0] == ("billing", 0.95)
    assert queued[2].reasons == (CLOSE_CALL,) and [g[0] for g in queued[2].guesses] == ["billing", "refund", "card"]
    assert rank(probs, np.eye(4), LABELS, signals, limit=2, config=ReviewConfig(diversity=0))[-1].index == 2


def test_the_queue_is_spread_over_the_embedding_space() -> None:
    close = _probs(*[[0.5, 0.5, 0.0]] * 6, [0.6, 0.4, 0.0], [0.65, 0.35, 0.0])  # six close calls on one pair first
    embeddings = np.array([[1.0, 0.1 * i, 0.0] for i in range(6)] + [[0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    signals = [Signals()] * 8
    plain = rank(
        close, embeddings, LABELS, signals, limit=3, config=ReviewConfig(diversity=0, duplicate_similarity=1.01)
    )
    spread = rank(
        close, embeddings, LABELS, signals, limit=3, config=ReviewConfig(diversity=3, duplicate_similarity=1.01)
    )
    assert [r.index for r in plain] == [0, 1, 2]
    assert [r.index for r in spread] == [0, 6, 7]  # one per region, highest priority first


def test_near_duplicates_are_queued_once() -> None:
    probs = _probs([0.5, 0.5, 0.0], [0.5, 0.5, 0.0], [0.4, 0.3, 0.3])
    embeddings = np.array([[1.0, 0.0], [1.0, 0.01], [0.0, 1.0]])
    queued = rank(probs, embeddings, LABELS, [Signals(in_proposal=True), Signals(), Signals()])
    assert [r.index for r in queued] == [0, 2] and IN_PROPOSAL in queued[0].reasons
    everything = rank(probs, embeddings, LABELS, [Signals()] * 3, config=ReviewConfig(duplicate_similarity=1.01))
    assert len(everything) == 3


def test_mismatched_inputs_are_refused() -> None:
    with pytest.raises(ValueError, match="one probability row"):
        priorities(_probs([0.5, 0.5, 0.0]), [Signals(), Signals()])
    with pytest.raises(ValueError, match="one embedding row"):
        rank(_probs([0.5, 0.5, 0.0]), np.eye(2), LABELS, [Signals()])
    [only] = rank(_probs([1.0]), np.eye(1), ["only"], [Signals(handed_off=True)])
    assert only.reasons == (HANDED_OFF,)
