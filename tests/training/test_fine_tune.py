"""The frozen-encoder recipe (the first production version): the encoder stays the base model, only the head
learns, each text is embedded once, and serving computes exactly what training used."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from training.config import FIRST_MODEL
from training.encoder import Encoder
from training.fine_tune import rare_adjustment
from training.model import IntentModel
from training.train import train

from .conftest import THREADS, tiny_config, tiny_examples


@pytest.mark.slow
def test_frozen_encoder_trains_only_the_head(base_model: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    embedded: list[int] = []
    real = Encoder._encode

    def counting(self: Encoder, texts, batch_size):  # type: ignore[no-untyped-def]
        embedded.append(len(texts))
        return real(self, texts, batch_size)

    monkeypatch.setattr(Encoder, "_encode", counting)
    config = dataclasses.replace(tiny_config(base_model, calibration_twin=True), **FIRST_MODEL)
    examples = tiny_examples()
    model = train(config, examples, None, tmp_path / "m", progress=False)
    assert model.memo is None  # serving does not remember every question
    assert model.info["training"]["freeze_encoder"] is True and model.info["best_epoch"] >= 1

    distinct = len({ex.text for ex in examples})
    assert sum(embedded) <= distinct + 500  # each question once (plus the shipped off-topic set), twin included

    base = Encoder.load(base_model, device="cpu", threads=THREADS)
    for name, tensor in base.encoder.state_dict().items():
        assert torch.equal(tensor, model.encoder.state_dict()[name]), name
    saved = IntentModel.load(tmp_path / "m", device="cpu")
    texts = [ex.text for ex in examples[:6]]
    probs, embeddings = saved.probabilities(texts)
    assert np.allclose(embeddings, base.encode(texts), atol=1e-5)  # the head was trained on what serving computes
    assert [saved.labels[i] for i in probs.argmax(axis=1)] == [ex.label for ex in examples[:6]]


def test_rare_labels_logits_are_lowered_in_training_by_the_log_of_their_share(base_model: str) -> None:
    labels = ["a", "b", "new"]
    config = tiny_config(base_model, rare_label_examples=16)
    targets = [0] * 40 + [1] * 40 + [2] * 16  # "new": 3 given examples repeated to 16
    adjustment = rare_adjustment(targets, {"a": 40, "b": 40, "new": 3}, labels, config)
    assert adjustment.tolist() == pytest.approx([0.0, 0.0, math.log(16 / 40)])
    halved = rare_adjustment(targets, {"a": 40, "b": 40, "new": 3}, labels, replace(config, rare_logit_adjustment=0.5))
    assert halved[2] == pytest.approx(0.5 * math.log(16 / 40))
    off = replace(config, rare_logit_adjustment=0.0)
    assert rare_adjustment(targets, {"a": 40, "b": 40, "new": 3}, labels, off).tolist() == [0.0, 0.0, 0.0]
    plenty = {"a": 40, "b": 40, "new": 16}  # not rare: no adjustment
    assert rare_adjustment(targets, plenty, labels, config).tolist() == [0.0, 0.0, 0.0]
