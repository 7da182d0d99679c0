"""Fine-tuning: a mean-pooled encoder with a cosine head, early stopping, abstention threshold, save."""

from __future__ import annotations

import contextlib
import logging
import math
import platform
import random
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.metrics import f1_score
from tqdm.auto import tqdm
from transformers import get_linear_schedule_with_warmup

from training.batching import bucketed_batches, pad_batch, sorted_batches, tokenize
from training.calibration import Calibration, DecisionPolicy, OperatingPoint, choose, json_safe, truth_indices
from training.config import TrainingConfig
from training.data import Example, dataset_hash, label_counts, split
from training.errors import DataError, ModelError
from training.model import Encoder, IntentModel, new_version, resolve_device, set_threads
from training.network import CosineHead, IntentNetwork
from training.openset import OpenSetScorer, QuestionScores
from training.simulate import HELD_OUT_SHARE, calibration_set, folds, generic_offtopic

log = logging.getLogger(__name__)

MIN_CALIBRATION_ROWS = 30
"""Below this many in-scope validation rows the operating point is noted as a rough estimate."""


@dataclass
class _Data:
    ids: list[list[int]]
    targets: list[int]  # -1: an out-of-scope row whose label is not a class


def train(
    config: TrainingConfig,
    train_examples: Sequence[Example],
    val_examples: Sequence[Example] | None = None,
    out_dir: str | Path | None = None,
    *,
    policy: DecisionPolicy | None = None,
    log_out_of_scope: Sequence[str] = (),
    progress: bool = True,
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

    Returns:
        The trained model (saved to `out_dir` when given).

    Raises:
        DataError: Too few labels, or validation labels that training does not have.
        ModelError: The base model or `init_from` cannot be loaded.
    """
    started = time.perf_counter()
    train_rows, val_rows, carved = _prepare_examples(config, train_examples, val_examples)
    memo: dict[str, np.ndarray] | None = {} if config.freeze_encoder else None  # one embedding per text
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


def fine_tune(
    config: TrainingConfig,
    train_rows: Sequence[Example],
    val_rows: Sequence[Example],
    *,
    progress: bool = True,
    memo: dict[str, np.ndarray] | None = None,
) -> IntentModel:
    """Fine-tune on prepared rows and return the model, not yet calibrated (its threshold is the default).

    With `config.freeze_encoder` only the head is trained, on the embeddings the model serves with (remembered in
    `memo`, which the returned model keeps using until it is cleared)."""
    set_threads(config.num_threads)
    device = resolve_device(config.device)
    _seed_everything(config.seed)
    labels = sorted({ex.label for ex in train_rows})

    base_encoder, base_info = _load_start(config, device)
    tokenizer = base_encoder.tokenizer
    pad_id = base_encoder.pad_id
    train_data = _encode_rows(tokenizer, train_rows, labels, config)
    val_data = _encode_rows(tokenizer, val_rows, labels, config)

    pooled = base_encoder.encoder
    train_targets = torch.tensor(train_data.targets)
    if config.freeze_encoder:
        base_encoder.memo = {} if memo is None else memo
        train_embeddings = _embed_texts(base_encoder, train_rows, config.eval_batch_size)
    else:
        train_embeddings = _embed_all(pooled, train_data.ids, pad_id, device, config.eval_batch_size)
    torch.manual_seed(config.seed)
    head = CosineHead(
        _centroids(train_embeddings, train_targets, len(labels)), scale=config.scale, learn_scale=config.learn_scale
    ).to(device)
    network = IntentNetwork(pooled, head)

    if config.freeze_encoder:
        val_embeddings = _embed_texts(base_encoder, val_rows, config.eval_batch_size)
        history, best_epoch = _fit_head(
            head, (train_embeddings, train_targets), (val_embeddings, torch.tensor(val_data.targets)), config, device
        )
    else:
        history, best_epoch = _fit(network, train_data, val_data, config, device, pad_id, progress)
    network.eval()

    info: dict[str, Any] = {
        "version": config.version or new_version(),
        "base_model": base_info["base_model"],
        "init_from": base_info.get("init_from"),
        "labels": labels,
        "out_of_scope_label": config.out_of_scope_label,
        "threshold": 0.5,
        "pooling": "mean",
        "normalize": True,
        "head": {"type": "cosine", "scale": float(head.scale.detach()), "learned_scale": config.learn_scale},
        "training": asdict(config),
        "history": history,
        "best_epoch": best_epoch,
        "train_examples": len(train_rows),
        "validation_examples": len(val_rows),
        "label_counts": label_counts(train_rows),
        "dataset_hash": dataset_hash(train_rows),
        "validation_hash": dataset_hash(val_rows),
        "device": str(device),
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "versions": _versions(),
    }
    model = IntentModel(tokenizer, pooled, head, info=info, device=device)
    model.memo = base_encoder.memo if config.freeze_encoder else None
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


def _prepare_examples(
    config: TrainingConfig, train_examples: Sequence[Example], val_examples: Sequence[Example] | None
) -> tuple[list[Example], list[Example], bool]:
    rows = list(train_examples)
    if len({ex.label for ex in rows}) < 2:
        raise DataError("training needs examples of at least 2 different labels; add intents to the data")
    carved = val_examples is None
    if val_examples is None:
        train_rows, val_rows = split(rows, config.val_ratio, config.seed)
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


def _load_start(config: TrainingConfig, device: torch.device) -> tuple[Encoder, dict[str, Any]]:
    if config.init_from:
        previous = IntentModel.load(config.init_from, device=str(device))
        return previous, {
            "base_model": previous.info.get("base_model", config.base_model),
            "init_from": previous.version,
        }
    encoder = Encoder.load(config.base_model, device=str(device))
    return encoder, {"base_model": config.base_model}


def _encode_rows(tokenizer: Any, rows: Sequence[Example], labels: list[str], config: TrainingConfig) -> _Data:
    index = {label: i for i, label in enumerate(labels)}
    return _Data(
        ids=tokenize(tokenizer, [ex.text for ex in rows], config.max_length),
        targets=[index.get(ex.label, -1) for ex in rows],
    )


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)


def _autocast(device: torch.device) -> contextlib.AbstractContextManager[Any]:
    if device.type == "cuda":
        return torch.autocast(device_type="cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def _embed_batches(
    module: torch.nn.Module, ids: list[list[int]], pad_id: int, device: torch.device, batch_size: int
) -> Iterator[tuple[list[int], torch.Tensor]]:
    module.eval()
    with torch.inference_mode(), _autocast(device):
        for batch in sorted_batches([len(row) for row in ids], batch_size):
            input_ids, mask = pad_batch([ids[i] for i in batch], pad_id, device)
            yield batch, module(input_ids, mask)


def _embed_all(
    pooled: torch.nn.Module, ids: list[list[int]], pad_id: int, device: torch.device, batch_size: int
) -> torch.Tensor:
    """The (float32, CPU) embedding of every row, in row order."""
    dim = int(getattr(pooled, "transformer").config.hidden_size)  # noqa: B009
    out = torch.zeros((len(ids), dim), dtype=torch.float32)
    for batch, embedding in _embed_batches(pooled, ids, pad_id, device, batch_size):
        out[batch] = embedding.float().cpu()
    return out


def _embed_texts(encoder: Encoder, rows: Sequence[Example], batch_size: int) -> torch.Tensor:
    return torch.from_numpy(encoder.encode([ex.text for ex in rows], batch_size))


def _centroids(embeddings: torch.Tensor, targets: torch.Tensor, num_labels: int) -> torch.Tensor:
    """Mean normalised embedding of each class (the cosine head's starting weights); rows with target -1 skipped."""
    keep = targets >= 0
    sums = torch.zeros((num_labels, embeddings.shape[1]), dtype=torch.float32)
    counts = torch.zeros(num_labels, dtype=torch.float32)
    sums.index_add_(0, targets[keep], embeddings[keep])
    counts.index_add_(0, targets[keep], torch.ones(int(keep.sum())))
    return F.normalize(sums / counts.clamp(min=1.0).unsqueeze(1), dim=1)


def _fit_head(
    head: CosineHead,
    train: tuple[torch.Tensor, torch.Tensor],
    val: tuple[torch.Tensor, torch.Tensor],
    config: TrainingConfig,
    device: torch.device,
) -> tuple[list[dict[str, float]], int]:
    """Train only the head on fixed embeddings (the frozen-encoder recipe); same selection as `_fit`."""
    train_x, train_y = train[0].to(device), train[1].to(device)
    keep = val[1] >= 0
    val_x, val_y = val[0][keep].to(device), val[1][keep].to(device)
    optimizer = torch.optim.AdamW([p for p in head.parameters() if p.requires_grad], lr=config.head_lr)
    generator = torch.Generator().manual_seed(config.seed)

    def score() -> tuple[float, float]:
        with torch.no_grad():
            logits = head(val_x)
            loss = F.cross_entropy(logits, val_y, label_smoothing=config.label_smoothing)
            return float((logits.argmax(dim=1) == val_y).float().mean()), float(loss)

    history: list[dict[str, float]] = []
    has_val = len(val_y) > 0
    best, best_epoch, best_state, stale = (float("-inf"), float("-inf")), 0, _snapshot(head), 0
    if has_val:
        accuracy, val_loss = score()
        history.append({"epoch": 0, "val_accuracy": accuracy, "val_loss": val_loss})
        best = _selection_key(config.select_by, accuracy, val_loss)
    for epoch in range(1, config.epochs + 1):
        loss_sum = 0.0
        for batch in torch.randperm(len(train_y), generator=generator).split(config.batch_size):
            batch = batch.to(device)
            batch_loss = F.cross_entropy(head(train_x[batch]), train_y[batch], label_smoothing=config.label_smoothing)
            optimizer.zero_grad(set_to_none=True)
            batch_loss.backward()
            optimizer.step()
            loss_sum += float(batch_loss.detach()) * len(batch)
        record = {"epoch": epoch, "train_loss": loss_sum / max(len(train_y), 1)}
        if has_val:
            accuracy, val_loss = score()
            record.update(val_accuracy=accuracy, val_loss=val_loss)
            key = _selection_key(config.select_by, accuracy, val_loss)
            if key > best:
                best, best_epoch, best_state, stale = key, epoch, _snapshot(head), 0
            else:
                stale += 1
        else:
            best_epoch, best_state = epoch, _snapshot(head)
        history.append(record)
        if has_val and config.patience and stale >= config.patience:
            break
    head.load_state_dict(best_state)
    log.info("head trained on frozen embeddings: best epoch %d of %d", best_epoch, len(history) - int(has_val))
    return history, best_epoch


def _evaluate_epoch(
    network: IntentNetwork, data: _Data, pad_id: int, device: torch.device, batch_size: int, smoothing: float
) -> tuple[float, float]:
    """(accuracy, loss) over validation rows whose label is a class."""
    correct, total, loss_sum = 0, 0, 0.0
    targets = torch.tensor(data.targets)
    for batch, (logits, _) in _embed_batches(network, data.ids, pad_id, device, batch_size):
        batch_targets = targets[batch]
        keep = batch_targets >= 0
        if not keep.any():
            continue
        kept_logits = logits.float().cpu()[keep]
        correct += int((kept_logits.argmax(dim=1) == batch_targets[keep]).sum())
        total += int(keep.sum())
        loss_sum += float(F.cross_entropy(kept_logits, batch_targets[keep], label_smoothing=smoothing, reduction="sum"))
    if total == 0:
        return float("nan"), float("nan")
    return correct / total, loss_sum / total


def _optimizer(network: IntentNetwork, config: TrainingConfig) -> torch.optim.Optimizer:
    decay: list[torch.nn.Parameter] = []
    no_decay: list[torch.nn.Parameter] = []
    for name, parameter in network.encoder.named_parameters():
        if not parameter.requires_grad:
            continue
        (no_decay if parameter.ndim < 2 or "LayerNorm" in name or "norm" in name.lower() else decay).append(parameter)
    groups: list[dict[str, Any]] = [
        {"params": decay, "lr": config.lr, "weight_decay": config.weight_decay},
        {"params": no_decay, "lr": config.lr, "weight_decay": 0.0},
        {
            "params": [p for p in network.head.parameters() if p.requires_grad],
            "lr": config.head_lr,
            "weight_decay": 0.0,
        },
    ]
    return torch.optim.AdamW(groups)


def _fit(
    network: IntentNetwork,
    train_data: _Data,
    val_data: _Data,
    config: TrainingConfig,
    device: torch.device,
    pad_id: int,
    progress: bool,
) -> tuple[list[dict[str, float]], int]:
    """Train; return the per-epoch history and the best epoch (its weights are loaded into `network`)."""
    rng = random.Random(config.seed)
    lengths = [len(row) for row in train_data.ids]
    targets = torch.tensor(train_data.targets)
    steps_per_epoch = math.ceil(len(lengths) / config.batch_size)
    total_steps = steps_per_epoch * config.epochs
    optimizer = _optimizer(network, config)
    scheduler = get_linear_schedule_with_warmup(optimizer, int(config.warmup_ratio * total_steps), total_steps)
    has_val = any(t >= 0 for t in val_data.targets)

    def score() -> tuple[float, float]:
        return _evaluate_epoch(network, val_data, pad_id, device, config.eval_batch_size, config.label_smoothing)

    history: list[dict[str, float]] = []
    best = (float("-inf"), float("-inf"))
    best_epoch, best_state, stale = 0, _snapshot(network), 0
    if has_val:
        accuracy, val_loss = score()
        history.append({"epoch": 0, "val_accuracy": accuracy, "val_loss": val_loss})
        best = _selection_key(config.select_by, accuracy, val_loss)
    for epoch in range(1, config.epochs + 1):
        network.train()
        epoch_started, loss_sum, seen = time.perf_counter(), 0.0, 0
        batches = bucketed_batches(lengths, config.batch_size, rng)
        bar = tqdm(batches, desc=f"epoch {epoch}/{config.epochs}", disable=not progress, leave=False, unit="batch")
        for batch in bar:
            input_ids, mask = pad_batch([train_data.ids[i] for i in batch], pad_id, device)
            batch_targets = targets[batch].to(device)
            with _autocast(device):
                logits, _ = network(input_ids, mask)
            batch_loss = F.cross_entropy(logits.float(), batch_targets, label_smoothing=config.label_smoothing)
            optimizer.zero_grad(set_to_none=True)
            batch_loss.backward()
            torch.nn.utils.clip_grad_norm_(network.parameters(), config.max_grad_norm)
            optimizer.step()
            scheduler.step()
            loss_sum += float(batch_loss.detach()) * len(batch)
            seen += len(batch)
            bar.set_postfix(loss=f"{loss_sum / seen:.3f}")
        bar.close()
        record = {"epoch": epoch, "train_loss": loss_sum / max(seen, 1), "seconds": time.perf_counter() - epoch_started}
        if has_val:
            accuracy, loss_value = score()
            record.update(val_accuracy=accuracy, val_loss=loss_value)
            key = _selection_key(config.select_by, accuracy, loss_value)
            if key > best:
                best, best_epoch, best_state, stale = key, epoch, _snapshot(network), 0
            else:
                stale += 1
        else:
            best_epoch, best_state = epoch, _snapshot(network)
        history.append(record)
        log.info("epoch %d: %s", epoch, {k: round(v, 4) for k, v in record.items()})
        if progress:
            summary = ", ".join(f"{k}={v:.4f}" for k, v in record.items() if k != "epoch")
            tqdm.write(f"epoch {epoch}: {summary}", file=sys.stderr)  # progress, like the bars: not stdout
        if has_val and config.patience and stale >= config.patience:
            log.info("early stop after epoch %d (best epoch %d)", epoch, best_epoch)
            break
    network.load_state_dict(best_state)
    return history, best_epoch


def _selection_key(select_by: str, accuracy: float, loss: float) -> tuple[float, float]:
    """Larger is better: validation loss (ties: accuracy) or validation accuracy (ties: loss)."""
    return (-loss, accuracy) if select_by == "loss" else (accuracy, -loss)


def _snapshot(network: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {name: tensor.detach().clone() for name, tensor in network.state_dict().items()}


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


def _versions() -> dict[str, str]:
    import transformers

    try:
        from importlib.metadata import version

        supportbot = version("supportbot")
    except Exception:  # noqa: BLE001 - not installed as a package (running from a checkout)
        supportbot = "unknown"
    return {
        "supportbot": supportbot,
        "transformers": transformers.__version__,
        "torch": torch.__version__,
        "python": platform.python_version(),
    }


__all__ = ["ModelError", "TrainingConfig", "train"]
