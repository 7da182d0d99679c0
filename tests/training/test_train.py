"""Training: config validation, reproducibility, tiny data, new label sets, validation with out-of-scope rows."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from training.calibration import DecisionPolicy
from training.data import Example
from training.errors import DataError
from training.model import IntentModel
from training.train import TrainingConfig, calibrate, rare_below, train

from .conftest import INTENTS, THREADS, tiny_config, tiny_examples


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"epochs": 0}, "epochs must be >= 1"),
        ({"lr": 0.0}, "lr must be > 0"),
        ({"max_length": 1024}, "max_length must be between 4 and 512"),
        ({"label_smoothing": 1.0}, r"label_smoothing must be in \[0, 1\)"),
        ({"val_ratio": 1.0}, "val_ratio must be between 0 and 1"),
        ({"device": "tpu"}, "device must be 'auto', 'cpu' or 'cuda'"),
        ({"num_threads": 0}, "num_threads must be >= 1 or None"),
        ({"base_model": " "}, "base_model is empty"),
        ({"patience": -1}, "patience must be >= 0"),
        ({"select_by": "f1"}, "select_by must be 'loss' or 'accuracy'"),
    ],
)
def test_config_validation(overrides: dict[str, object], message: str) -> None:
    values: dict[str, object] = {"base_model": "/models/minilm", **overrides}
    with pytest.raises(ValueError, match=message):
        TrainingConfig(**values)  # type: ignore[arg-type]


def test_config_reports_every_problem_at_once() -> None:
    with pytest.raises(ValueError, match=r"epochs must be >= 1 \(got 0\); batch_size must be >= 1"):
        TrainingConfig(base_model="x", epochs=0, batch_size=0)


def test_one_label_is_not_enough(base_model: str) -> None:
    with pytest.raises(DataError, match="at least 2 different labels"):
        train(tiny_config(base_model), [Example("hi", "greet"), Example("hello", "greet")], progress=False)


def test_validation_labels_must_be_known(base_model: str) -> None:
    with pytest.raises(DataError, match=r"validation labels \['weather'\] do not occur in the training data"):
        train(tiny_config(base_model), tiny_examples(), [Example("is it sunny", "weather")], progress=False)


@pytest.mark.slow
def test_same_seed_same_model(base_model: str, trained_model: IntentModel) -> None:
    again = train(tiny_config(base_model), tiny_examples(), None, None, progress=False)
    texts = ["I forgot my password", "is the shop open on monday", "where is my refund"]
    expected, expected_embeddings = trained_model.probabilities(texts)
    probs, embeddings = again.probabilities(texts)
    assert np.allclose(probs, expected, atol=1e-5)
    assert np.allclose(embeddings, expected_embeddings, atol=1e-5)
    assert again.info["dataset_hash"] == trained_model.info["dataset_hash"]
    history = again.info["history"]
    assert [h["epoch"] for h in history] == [0, 1, 2]
    assert history[2]["train_loss"] < history[1]["train_loss"] * 1.5
    assert 0 <= again.info["best_epoch"] <= 2


@pytest.mark.slow
def test_new_label_set_from_a_previous_model(base_model: str, trained_dir: Path, tmp_path: Path) -> None:
    """The nightly job: start from production's encoder, with a label set that gained and lost intents."""
    kept = {label: texts[:3] for label, texts in INTENTS.items() if label != "refund"}  # 3 examples per label
    kept["greeting"] = ["hello there", "hi!", "good morning"]
    rows = [Example(text, label) for label, texts in kept.items() for text in texts]
    val = [
        Example("I lost my password", "reset_password"),
        Example("hey, good evening", "greeting"),
        Example("what's the weather tomorrow?", "out_of_scope"),  # no such class: must abstain
    ]
    config = tiny_config(base_model, init_from=str(trained_dir), epochs=1, version="vnext")
    model = train(config, rows, val, tmp_path / "next", progress=False)
    assert model.labels == ["card_arrival", "greeting", "opening_hours", "reset_password"]
    assert model.info["init_from"] == "vtest"
    assert model.info["validation"]["examples"] == 3
    assert "out_of_scope_recall" in model.info["validation"]
    reloaded = IntentModel.load(tmp_path / "next", threads=THREADS)
    assert reloaded.predict_one("hello, good morning").label == "greeting"
    assert reloaded.version == "vnext"


@pytest.mark.slow
def test_two_examples_per_label(base_model: str) -> None:
    """The smallest data CI uses: the carved validation takes one example per label, training keeps one."""
    rows = [Example(text, label) for label, texts in INTENTS.items() for text in texts[:2]]
    model = train(tiny_config(base_model, epochs=1), rows, progress=False)
    assert model.info["train_examples"] == 4 and model.info["validation_examples"] == 4
    assert model.info["validation_carved_from_train"] is True
    assert "only 4 in-scope validation rows" in model.info["decision"]["note"]
    assert model.predict_one("I forgot my password").label == "reset_password"


@pytest.mark.slow
def test_validation_without_in_scope_rows_keeps_the_default_point(trained_dir: Path) -> None:
    model = IntentModel.load(trained_dir, device="cpu")
    before = model.point
    calibrate(model, tiny_examples(), [Example("what's the weather", "out_of_scope")], DecisionPolicy())
    assert model.point == before and "no in-scope validation rows" in model.info["decision"]["note"]
    assert model.info["validation"] == {"examples": 1}


def test_rare_means_rare_next_to_the_other_labels(base_model: str) -> None:
    config = tiny_config(base_model)  # rare_label_examples 16 by default
    plenty = [Example(f"q{n} {label}", label) for label in ("a", "b", "c") for n in range(40)]
    assert rare_below(config, [*plenty, Example("new one", "new")]) == 16
    assert rare_below(config, tiny_examples()) == 3  # 6 per label: only a label with 1 or 2 examples is rare
    assert rare_below(tiny_config(base_model, rare_label_examples=0), plenty) == 0


@pytest.mark.slow
def test_three_corrections_of_a_new_intent_are_answered_after_one_night(base_model: str) -> None:
    """Corrected today, right tomorrow: three agent corrections to a brand-new intent, next to plentiful seed
    intents, are all predicted right (head on the frozen encoder, the first-run recipe: seconds)."""
    seed = [Example(f"{text} {suffix}", label) for label, texts in INTENTS.items() for text in texts
            for suffix in ("", "please", "thanks")]  # fmt: skip
    corrections = [
        Example("my parcel was left with the neighbour", "parcel_neighbour"),
        Example("the courier gave my package to next door", "parcel_neighbour"),
        Example("delivered to my neighbour instead of me", "parcel_neighbour"),
    ]
    config = tiny_config(base_model, freeze_encoder=True, epochs=60, head_lr=1e-2, patience=5, calibration_twin=False)
    model = train(config, seed + corrections, progress=False)
    assert model.info["training"]["rare_label_examples"] == 9  # applied: half the seed's 18 per intent
    assert model.info["label_counts"]["parcel_neighbour"] == 3  # repeats are weighting, not data
    probs, _ = model.probabilities([ex.text for ex in corrections], 8)
    assert [model.labels[i] for i in probs.argmax(axis=1)] == ["parcel_neighbour"] * 3

    # the logit adjustment makes the new intent likelier on questions it was not trained on
    unseen = ["my neighbour has my parcel", "the package went to the house next door"]
    unadjusted = train(dataclasses.replace(config, rare_logit_adjustment=0.0), seed + corrections, progress=False)
    new = model.labels.index("parcel_neighbour")
    assert (model.probabilities(unseen, 8)[0][:, new] > unadjusted.probabilities(unseen, 8)[0][:, new]).all()
