"""`TrainingConfig`: the hyper-parameters and options of one training run, checked on creation.

Kept apart from `training.train` so that reading or building a config (the CLI's option defaults, the nightly
job) does not import torch.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from training.data import OUT_OF_SCOPE

FIRST_MODEL: dict[str, object] = {"freeze_encoder": True, "epochs": 60, "head_lr": 1e-2, "patience": 5}
"""Overrides of the first production version's recipe: a head on the frozen base encoder, trained in seconds, so
a fresh install answers within a minute; the next retraining fine-tunes the encoder and is gated like any
candidate (docs/retraining.md)."""


@dataclass
class TrainingConfig:
    """Hyper-parameters and options of one training run (stored in the model's info).

    Args:
        base_model: Local path (or name) of the base encoder, e.g. the bundled all-MiniLM-L6-v2.
        epochs: Maximum number of passes over the training data.
        batch_size: Examples per optimiser step.
        lr: Peak learning rate of the encoder.
        head_lr: Learning rate of the classification head (its weights and scale).
        max_length: Token limit of training texts.
        warmup_ratio: Share of the steps with a linear learning-rate warm-up (then linear decay to 0).
        weight_decay: AdamW weight decay of the encoder's weight matrices.
        label_smoothing: Cross-entropy label smoothing.
        scale: Initial logit scale of the cosine head.
        learn_scale: Whether the scale is trained (at `head_lr`, so it moves little: 20 -> 19.9 measured).
        seed: Seeds the split, the head, dropout and the batch order (same seed, same model on one machine).
        val_ratio: Share carved from the training data for validation when none is given.
        patience: Stop after this many epochs without a better validation score (0 = never stop early).
        select_by: Validation score that picks the best epoch: "loss" (label-smoothed cross-entropy; smoother,
            so less noisy on small validation sets) or "accuracy".
        freeze_encoder: Keep the base encoder as it is and train only the head on its embeddings, computed once
            (the first-run recipe `FIRST_MODEL`: seconds instead of minutes; `epochs` then counts passes over the
            cached embeddings).
        calibration_twin: Also train a twin without a quarter of the intents, whose questions then calibrate
            the operating point as faithful unknowns (about 75% more training time); False hides intents from
            the model itself instead (cheaper, optimistic: more out-of-scope questions get answered).
        rare_label_examples: A label with fewer examples than this (a new intent from a few agent corrections)
            keeps all of them for training (none carved off for validation) and has them repeated up to this
            many per epoch, so a handful of corrections is learnt rather than drowned by the other labels'
            hundreds (0: off, every label split and weighted by its count). At most half the median label's count
            (`training.train.rare_below`).
        rare_logit_adjustment: How much a rare label's logit is lowered during training, times the log of its
            share over the median label's (logit adjustment, `training.fine_tune.rare_adjustment`), so that the
            served model does not lose a new intent's questions to the labels with hundreds of examples (0: off).
        out_of_scope_label: Label of questions the bot must not answer.
        device: "auto" (CUDA with bf16 autocast when available, else CPU), "cpu" or "cuda".
        num_threads: torch CPU threads; None keeps torch's default.
        init_from: A previous model directory whose encoder weights to start from (the head is always new,
            so the label set may differ); None starts from `base_model`.
        version: Version name written into the model; None uses the current time ("v20261128-233001").
        eval_batch_size: Batch size for embedding and validation.
        max_grad_norm: Gradient clipping norm.
        extra: Free-form JSON-serialisable notes stored with the config in the model's info (e.g. the data's origin).
    """

    base_model: str
    epochs: int = 6
    batch_size: int = 32
    lr: float = 8e-5
    head_lr: float = 3e-3
    max_length: int = 64
    warmup_ratio: float = 0.06
    weight_decay: float = 0.01
    label_smoothing: float = 0.1
    scale: float = 20.0
    learn_scale: bool = True
    seed: int = 0
    val_ratio: float = 0.1
    patience: int = 2
    select_by: str = "loss"
    freeze_encoder: bool = False
    calibration_twin: bool = True
    rare_label_examples: int = 16
    rare_logit_adjustment: float = 1.0
    out_of_scope_label: str = OUT_OF_SCOPE
    device: str = "auto"
    num_threads: int | None = None
    init_from: str | None = None
    version: str | None = None
    eval_batch_size: int = 128
    max_grad_norm: float = 1.0
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        problems = []
        if not str(self.base_model).strip():
            problems.append("base_model is empty: give the path of a local encoder (e.g. the bundled MiniLM)")
        for name in ("epochs", "batch_size", "max_length", "eval_batch_size"):
            if int(getattr(self, name)) < 1:
                problems.append(f"{name} must be >= 1 (got {getattr(self, name)})")
        for name in ("lr", "head_lr", "scale", "max_grad_norm"):
            if not float(getattr(self, name)) > 0:
                problems.append(f"{name} must be > 0 (got {getattr(self, name)})")
        if self.max_length < 4 or self.max_length > 512:
            problems.append(f"max_length must be between 4 and 512 tokens (got {self.max_length})")
        for name in ("warmup_ratio", "label_smoothing"):
            if not 0.0 <= float(getattr(self, name)) < 1.0:
                problems.append(f"{name} must be in [0, 1) (got {getattr(self, name)})")
        if self.weight_decay < 0:
            problems.append(f"weight_decay must be >= 0 (got {self.weight_decay})")
        if not 0.0 <= self.rare_logit_adjustment <= 5.0:
            problems.append(f"rare_logit_adjustment must be between 0 and 5 (got {self.rare_logit_adjustment})")
        if self.rare_label_examples < 0:
            problems.append(f"rare_label_examples must be >= 0 (got {self.rare_label_examples})")
        if not 0.0 < self.val_ratio < 1.0:
            problems.append(f"val_ratio must be between 0 and 1 (got {self.val_ratio})")
        if self.select_by not in ("loss", "accuracy"):
            problems.append(f"select_by must be 'loss' or 'accuracy' (got {self.select_by!r})")
        if self.patience < 0:
            problems.append(f"patience must be >= 0 (got {self.patience})")
        if not self.out_of_scope_label.strip():
            problems.append("out_of_scope_label is empty")
        if self.device not in ("auto", "cpu", "cuda") and not self.device.startswith("cuda:"):
            problems.append(f"device must be 'auto', 'cpu' or 'cuda' (got {self.device!r})")
        if self.num_threads is not None and self.num_threads < 1:
            problems.append(f"num_threads must be >= 1 or None (got {self.num_threads})")
        if problems:
            raise ValueError("invalid training config: " + "; ".join(problems))
