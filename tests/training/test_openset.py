"""Out-of-scope scores on synthetic clustered embeddings: hidden intents look unknown, persistence, OOS class."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from training.calibration import ood_auroc
from training.openset import FEATURES, SCORES, OpenSetScorer, scores_from_probs

DIM = 16


def clusters(classes: int = 4, per_class: int = 30, seed: int = 0, spread: float = 0.15):
    """Normalised embeddings around `classes` random centres: (centres, embeddings, targets)."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(classes, DIM))
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    targets = np.repeat(np.arange(classes), per_class)
    embeddings = centres[targets] + spread * rng.normal(size=(len(targets), DIM))
    embeddings /= np.linalg.norm(embeddings, axis=1, keepdims=True)
    return centres, embeddings.astype(np.float32), targets


def scorer_for(labels: list[str], centres: np.ndarray, embeddings: np.ndarray, targets: np.ndarray) -> OpenSetScorer:
    return OpenSetScorer.fit(centres, 20.0, labels, "out_of_scope", embeddings, targets, knn_k=3)


def test_every_score_ranks_unseen_clusters_below_known_ones() -> None:
    centres, embeddings, targets = clusters(classes=6)
    known = targets < 4
    scorer = scorer_for(["a", "b", "c", "d"], centres[:4], embeddings[known], targets[known])
    _, fresh, fresh_targets = clusters(classes=6, seed=0)  # the same centres, jittered below
    rng = np.random.default_rng(5)
    fresh = fresh + 0.05 * rng.normal(size=fresh.shape).astype(np.float32)
    fresh /= np.linalg.norm(fresh, axis=1, keepdims=True)
    scores = scorer.scores(fresh)
    in_scope = fresh_targets < 4
    for name in SCORES:
        auroc = ood_auroc(scores.values[name], in_scope)
        assert auroc is not None and auroc > 0.9, name
    assert (scores.top[in_scope] == fresh_targets[in_scope]).mean() > 0.95


def test_hiding_intents_makes_their_questions_unknown() -> None:
    centres, embeddings, targets = clusters(classes=4)
    scorer = scorer_for(["a", "b", "c", "d"], centres, embeddings, targets)
    known = np.array([True, True, True, False])
    full = scorer.scores(embeddings)
    hidden = scorer.scores(embeddings, known)
    rows = targets == 3
    assert (full.top[rows] == 3).all()
    assert (hidden.top[rows] != 3).all()  # the hidden class is never predicted
    for name in ("msp", "cosine", "knn", "mahalanobis"):
        assert hidden.values[name][rows].mean() < full.values[name][rows].mean(), name


def test_the_out_of_scope_class_is_never_answered() -> None:
    centres, embeddings, targets = clusters(classes=3)
    scorer = scorer_for(["a", "b", "out_of_scope"], centres, embeddings, targets)
    scores = scorer.scores(embeddings)
    rows = targets == 2
    for name in SCORES:
        assert np.isneginf(scores.values[name][rows]).all()
        assert np.isfinite(scores.values[name][~rows]).all()
    assert (scores.second[~rows] != 2).all()  # the second intent offered is an in-scope one


def test_combined_score_is_fitted_and_survives_save_and_load(tmp_path: Path) -> None:
    centres, embeddings, targets = clusters(classes=5)
    known = targets < 4
    scorer = scorer_for(["a", "b", "c", "d"], centres[:4], embeddings[known], targets[known])
    scorer.set_reference(scorer.scores(embeddings[known]))
    scores = scorer.scores(embeddings)
    assert scores.features.shape == (len(embeddings), len(FEATURES))
    assert scores.features.min() >= 0.0 and scores.features.max() < 1.0  # p-values against the reference
    right = (scores.top == targets) & known
    scorer.fit_combiner(scores, right, np.ones(len(right)))
    combined = scorer.scores(embeddings).values["combined"]
    assert ood_auroc(combined, known) > 0.9
    assert combined.min() >= 0.0 and combined.max() <= 1.0
    scorer.save(tmp_path)
    loaded = OpenSetScorer.load(tmp_path, centres[:4], 20.0, ["a", "b", "c", "d"], "out_of_scope")
    again = loaded.scores(embeddings)
    for name in SCORES:
        assert again.values[name] == pytest.approx(scorer.scores(embeddings).values[name], abs=1e-3), name
    assert loaded.reference is not None and loaded.reference.shape == scorer.reference.shape
    assert len(FEATURES) == len(SCORES) - 1


def test_max_softmax_scores_for_a_model_without_a_scorer() -> None:
    probs = np.array([[0.7, 0.2, 0.1], [0.3, 0.6, 0.1]])
    scores = scores_from_probs(probs, ["a", "out_of_scope", "b"], "out_of_scope")
    assert scores.values["msp"][0] == pytest.approx(0.7) and np.isneginf(scores.values["msp"][1])
    assert scores.values["margin"][0] == pytest.approx(0.6)
    assert scores.second.tolist() == [2, 2]


def test_serving_computes_only_what_the_operating_point_needs() -> None:
    centres, embeddings, targets = clusters(classes=4)
    scorer = scorer_for(["a", "b", "c", "d"], centres, embeddings, targets)
    full = scorer.scores(embeddings)
    quick = scorer.scores(embeddings, only="msp")
    assert np.isnan(quick.values["knn"]).all() and np.isnan(quick.values["mahalanobis"]).all()
    for name in ("msp", "margin", "energy", "cosine"):
        assert quick.values[name] == pytest.approx(full.values[name]), name
    assert scorer.scores(embeddings, only="knn").values["knn"] == pytest.approx(full.values["knn"])
    assert np.isfinite(scorer.scores(embeddings, only="combined").values["mahalanobis"]).all()
