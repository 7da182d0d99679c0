"""Training a servable model: fine-tune (`training.fine_tune`), the calibration twin, the out-of-scope scorer and the
operating point (`calibrate`), save."""

from __future__ import annotations

import dataclasses
import logging
import sys
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.metrics import f1_score
from tqdm.auto import tqdm

from training.calibration import Calibration, DecisionPolicy, OperatingPoint, choose, json_safe, truth_indices
from training.config import TrainingConfig
from training.data import Example, label_counts, split
from training.errors import DataError, ModelError
from training.fine_tune import fine_tune
from training.model import IntentModel
from training.openset import OpenSetScorer, QuestionScores
from training.simulate import HELD_OUT_SHARE, calibration_set, folds, generic_offtopic

log = logging.getLogger(__name__)

MIN_CALIBRATION_ROWS = 30
"""Below this many in-scope validation rows the operating point is noted as a rough estimate."""


def train(
    config: TrainingConfig,
    train_examples: Sequence[Example],
    val_examples: Sequence[Example] | None = None,
    out_dir: str | Path | None = None,
    *,
    policy: DecisionPolicy | None = None,
    log_out_of_scope: Sequence[str] = (),
    progress: bool = True,
    memo: dict[str, np.ndarray] | None = None,
) -> IntentModel:
    """Fine-tune an intent model, fit its out-of-scope scorer, choose its operating point, and save it.

    Starts from `config.base_model` (or the encoder of `config.init_from`) with a fresh cosine head
    initialised at the class centroids, trains with length-bucketed dynamic-padding batches, validates each
    epoch and keeps the best one by `config.select_by` (early stopping after `patience` epochs without
    improvement).

    Args:
        config: Hyper-parameters.
        train_examples: Labelled examples (at least 2 labels). Each label becomes a class, including the
            out-of-scope label when it has examples.
        val_examples: Validation examples; None carves a stratified `config.val_ratio` split from
            `train_examples`. Out-of-scope rows are allowed even if training has none (they calibrate abstention).
        out_dir: Where to save the model directory; None returns it unsaved.
        policy: How the operating point is chosen (`training.calibration.DecisionPolicy`; defaults when None).
        log_out_of_scope: Questions agents labelled out of scope (calibration only, never trained on).
        progress: Show tqdm progress bars.
        memo: With `config.freeze_encoder`, embeddings already computed by the same base encoder, filled in as
            texts are embedded (benchmarks training many heads on one data set embed each text once).

    Returns:
        The trained model (saved to `out_dir` when given).

    Raises:
        DataError: Too few labels, or validation labels that training does not have.
        ModelError: The base model or `init_from` cannot be loaded.
    """
    started = time.perf_counter()
    config = dataclasses.replace(config, rare_label_examples=rare_below(config, train_examples))  # as applied
    train_rows, val_rows, carved = _prepare_examples(config, train_examples, val_examples)
    memo = ({} if memo is None else memo) if config.freeze_encoder else None  # one embedding per text
    model = fine_tune(config, train_rows, val_rows, progress=progress, memo=memo)
    model.info["validation_carved_from_train"] = carved
    held_out = (
        twin_held_out(config, train_rows, val_rows, progress=progress, memo=memo) if config.calibration_twin else None
    )
    calibrate(
        model,
        train_rows,
        val_rows,
        policy or DecisionPolicy(),
        held_out=held_out,
        log_out_of_scope=log_out_of_scope,
        batch_size=config.eval_batch_size,
        seed=config.seed,
    )
    model.memo = None
    model.info["training_seconds"] = round(time.perf_counter() - started, 1)
    if out_dir is not None:
        model.save(out_dir)
        log.info("saved model %s to %s", model.version, out_dir)
    return model


def twin_held_out(
    config: TrainingConfig,
    train_rows: Sequence[Example],
    val_rows: Sequence[Example],
    *,
    progress: bool = True,
    memo: dict[str, np.ndarray] | None = None,
) -> QuestionScores | None:
    """Scores of questions of intents a model of the same recipe never saw (the calibration twin).

    The twin is trained like the model, with the intents of one leave-intents-out fold (`HELD_OUT_SHARE` of
    them) removed; the validation questions of those intents, scored by the twin, are faithful examples of
    in-domain questions the bot does not know. Their scores calibrate the real model's operating point.
    None when there are too few intents or no validation questions of the hidden ones.
    """
    oos = config.out_of_scope_label
    intents = sorted({ex.label for ex in train_rows} - {oos})
    chosen = folds(range(len(intents)), HELD_OUT_SHARE, config.seed)
    if not chosen:
        return None
    hidden = {intents[i] for i in chosen[0]}
    held = [ex for ex in val_rows if ex.label in hidden]
    twin_train = [ex for ex in train_rows if ex.label not in hidden]
    twin_val = [ex for ex in val_rows if ex.label not in hidden and ex.label != oos]
    if not held:
        return None
    log.info("calibration twin: %d of %d intents hidden, %d training rows", len(hidden), len(intents), len(twin_train))
    if progress:
        tqdm.write(f"calibration twin: training without {len(hidden)} of {len(intents)} intents", file=sys.stderr)
    # From the base model even when the real model warm-starts: a previous model already knows the hidden intents.
    twin_config = replace(config, version="calibration-twin", init_from=None)
    twin = fine_tune(twin_config, twin_train, twin_val, progress=progress, memo=memo)
    scorer = fitted_scorer(twin, twin_train, config.eval_batch_size, config.seed)
    if twin_val:  # the held-out rows' p-values are ranked against the twin's own in-scope questions
        scorer.set_reference(scorer.scores(twin.probabilities([ex.text for ex in twin_val], config.eval_batch_size)[1]))
    return scorer.scores(twin.probabilities([ex.text for ex in held], config.eval_batch_size)[1])


def fitted_scorer(model: IntentModel, train_rows: Sequence[Example], batch_size: int, seed: int) -> OpenSetScorer:
    """The out-of-scope scorer of `model`, its kNN bank and class means from `train_rows`."""
    index = {label: i for i, label in enumerate(model.labels)}
    _, embeddings = model.probabilities([ex.text for ex in train_rows], batch_size)
    targets = np.array([index.get(ex.label, -1) for ex in train_rows], dtype=np.int64)
    head = model.head
    weight = head.weight.detach().cpu().numpy()
    return OpenSetScorer.fit(
        weight, float(head.scale.detach()), model.labels, model.out_of_scope_label, embeddings, targets, seed=seed
    )


def rare_below(config: TrainingConfig, rows: Sequence[Example]) -> int:
    """Labels with fewer examples than this are rare (kept whole for training, repeated up to it, their logits
    adjusted): `rare_label_examples`, or half the median label's count when that is smaller, since rare means rare
    next to the others (with 8 examples per intent, 3 corrections are rare and 6 are not); 0 when off."""
    counts = sorted(label_counts(rows).values())
    if not counts or config.rare_label_examples <= 0:
        return 0
    return min(config.rare_label_examples, counts[len(counts) // 2] // 2)


def _prepare_examples(
    config: TrainingConfig, train_examples: Sequence[Example], val_examples: Sequence[Example] | None
) -> tuple[list[Example], list[Example], bool]:
    rows = list(train_examples)
    if len({ex.label for ex in rows}) < 2:
        raise DataError("training needs examples of at least 2 different labels; add intents to the data")
    carved = val_examples is None
    if val_examples is None:
        train_rows, val_rows = split(rows, config.val_ratio, config.seed, keep_below=config.rare_label_examples)
    else:
        train_rows, val_rows = rows, list(val_examples)
    known = {ex.label for ex in train_rows}
    unknown = sorted({ex.label for ex in val_rows} - known - {config.out_of_scope_label})
    if unknown:
        raise DataError(
            f"validation labels {unknown[:10]} do not occur in the training data; add training examples for them "
            "or remove them from the validation data"
        )
    return train_rows, val_rows, carved


def calibrate(
    model: IntentModel,
    train_rows: Sequence[Example],
    val_rows: Sequence[Example],
    policy: DecisionPolicy,
    *,
    held_out: QuestionScores | None = None,
    log_out_of_scope: Sequence[str] = (),
    batch_size: int = 128,
    seed: int = 0,
) -> None:
    """Fit the model's out-of-scope scorer and choose its operating point; record both in `model.info`.

    The scorer's kNN bank and class means come from `train_rows` embedded by the fine-tuned encoder. The
    operating point is chosen under `policy` on `val_rows` plus simulated out-of-scope questions
    (leave-intents-out folds and the shipped off-topic set, see `training.simulate`) and `log_out_of_scope`
    (questions agents labelled out of scope), weighted to `policy.oos_share`. `held_out` (from
    `twin_held_out`) replaces the leave-intents-out folds on the model itself, which are optimistic: the
    model was trained to keep those intents apart.
    """
    scorer = fitted_scorer(model, train_rows, batch_size, seed)
    val_probs, val_embeddings = model.probabilities([ex.text for ex in val_rows], batch_size)
    val_truth = truth_indices([ex.label for ex in val_rows], model.labels, model.out_of_scope_label)
    if (val_truth >= 0).any():
        scorer.set_reference(scorer.scores(val_embeddings[val_truth >= 0]))
    generic = model.probabilities(list(generic_offtopic()), batch_size)[1]
    logged = model.probabilities(list(log_out_of_scope), batch_size)[1] if log_out_of_scope else None
    data = calibration_set(
        scorer,
        val_embeddings=val_embeddings,
        val_truth=val_truth,
        oos_share=policy.oos_share,
        generic_embeddings=generic,
        log_oos_embeddings=logged,
        held_out=held_out,
        seed=seed,
    )
    if not data.in_scope.any():
        model.info["decision"] = {**model.point.to_dict(), "note": "no in-scope validation rows: default threshold"}
        model.info["validation"] = {"examples": len(val_rows)}
        return
    scorer.fit_combiner(data.scores, data.correct, data.weight)
    data.scores = scorer.out_of_fold(data.scores, data.correct, data.weight, seed=seed)
    in_scope = int(data.in_scope.sum())
    note = f"only {in_scope} in-scope validation rows: a rough estimate" if in_scope < MIN_CALIBRATION_ROWS else ""
    calibration = choose(data, policy, note)
    stored = calibration.to_dict()
    model.scorer = scorer
    model.point = OperatingPoint.from_dict(stored)  # as stored: serving now = after a reload
    model.info["threshold"] = stored["threshold"]
    model.info["decision"] = stored
    model.info["validation"] = _validation_metrics(val_rows, val_probs, model.labels, calibration)


def _validation_metrics(
    val_rows: Sequence[Example], probs: np.ndarray, labels: list[str], calibration: Calibration
) -> dict[str, Any]:
    truth = np.array([ex.label for ex in val_rows], dtype=object)
    predicted = np.array([labels[i] for i in probs.argmax(axis=1)], dtype=object)
    metrics: dict[str, Any] = {"examples": len(val_rows)}
    if len(val_rows):
        metrics["accuracy"] = float((predicted == truth).mean())
        metrics["macro_f1"] = float(f1_score(truth, predicted, average="macro", zero_division=0))
    outcome = calibration.outcome
    if outcome is not None:
        metrics["decision_accuracy"] = outcome.decision_accuracy
        metrics["expected_cost"] = outcome.cost
        metrics["out_of_scope_recall"] = outcome.oos_recall
        metrics["clarified"] = outcome.clarified
    metrics["auroc"] = calibration.auroc.get(calibration.point.score)
    return json_safe(metrics)


__all__ = ["ModelError", "TrainingConfig", "train"]
