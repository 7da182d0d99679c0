"""Calibration data without out-of-scope examples: folds, the shipped off-topic set, the rows and weights."""

from __future__ import annotations

import numpy as np
import pytest

from training.simulate import calibration_set, folds, generic_offtopic

from .test_openset import clusters, scorer_for


def test_folds_hide_every_intent_once() -> None:
    parts = folds(range(10), 0.25, seed=3)
    assert len(parts) == 4
    assert sorted(c for part in parts for c in part) == list(range(10))
    assert folds(range(2), 0.25) == []  # hiding one of two would leave a single known intent
    assert folds(range(10), 0.25, seed=3) == parts  # seeded


def test_the_shipped_off_topic_set() -> None:
    lines = generic_offtopic()
    assert len(lines) >= 300
    assert len({line.casefold() for line in lines}) == len(lines)
    assert not any(line.startswith("#") for line in lines)


def test_without_out_of_scope_validation_the_simulated_rows_are_used() -> None:
    centres, embeddings, targets = clusters(classes=8, per_class=20)
    scorer = scorer_for([f"i{k}" for k in range(8)], centres, embeddings, targets)
    generic = np.random.default_rng(0).normal(size=(40, embeddings.shape[1])).astype(np.float32)
    data = calibration_set(
        scorer, val_embeddings=embeddings, val_truth=targets, oos_share=0.3, generic_embeddings=generic
    )
    counts = data.counts()
    assert counts == {"in_scope": 160, "held_out_intent": 160, "generic": 40}
    assert data.weight[~data.in_scope].sum() == pytest.approx(0.3)
    held = data.source == "held_out_intent"
    # scored with their own intent hidden: lower than the in-scope rows
    assert data.scores.values["msp"][held].mean() < data.scores.values["msp"][data.source == "in_scope"].mean()


def test_twin_scores_replace_the_hidden_intent_folds() -> None:
    centres, embeddings, targets = clusters(classes=4)
    scorer = scorer_for(["a", "b", "c", "d"], centres, embeddings, targets)
    twin = scorer.scores(embeddings[:7])
    data = calibration_set(scorer, val_embeddings=embeddings, val_truth=targets, oos_share=0.2, held_out=twin)
    assert data.counts() == {"in_scope": len(targets), "held_out_intent": 7}
    logged = calibration_set(
        scorer,
        val_embeddings=embeddings,
        val_truth=targets,
        oos_share=0.2,
        log_oos_embeddings=embeddings[:3],
        simulate=False,
    )
    assert logged.counts() == {"in_scope": len(targets), "log_oos": 3}
