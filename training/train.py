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
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.metrics import f1_score
from tqdm.auto import tqdm

from training.batching import bucketed_batches, pad_batch, sorted_batches, tokenize
from training.calibration import answer_scores, choose_threshold, max_in_scope, ood_auroc
from training.config import TrainingConfig
from training.data import Example, dataset_hash, label_counts, split
from training.errors import DataError, ModelError
from training.model import Encoder, IntentModel, new_version, resolve_device, set_threads
from training.network import CosineHead, IntentNetwork

log = logging.getLogger(__name__)


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
    progress: bool = True,
) -> IntentModel:
    """Fine-tune an intent model, choose its abstention threshold on validation, and save it.

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
        progress: Show tqdm progress bars.

    Returns:
        The trained model (saved to `out_dir` when given).

    Raises:
        DataError: Too few labels, or validation labels that training does not have.
        ModelError: The base model or `init_from` cannot be loaded.
    """
    started = time.perf_counter()
    set_threads(config.num_threads)
    device = resolve_device(config.device)
    _seed_everything(config.seed)
    train_rows, val_rows, carved = _prepare_examples(config, train_examples, val_examples)
    labels = sorted({ex.label for ex in train_rows})

    base_encoder, base_info = _load_start(config, device)
    tokenizer = base_encoder.tokenizer
    pad_id = base_encoder.pad_id
    train_data = _encode_rows(tokenizer, train_rows, labels, config)
    val_data = _encode_rows(tokenizer, val_rows, labels, config)

    pooled = base_encoder.encoder
    centroids = _centroids(pooled, train_data, len(labels), pad_id, device, config.eval_batch_size)
    torch.manual_seed(config.seed)
    head = CosineHead(centroids, scale=config.scale, learn_scale=config.learn_scale).to(device)
    network = IntentNetwork(pooled, head)

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
        "validation_carved_from_train": carved,
        "label_counts": label_counts(train_rows),
        "dataset_hash": dataset_hash(train_rows),
        "validation_hash": dataset_hash(val_rows),
        "device": str(device),
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "versions": _versions(),
    }
    model = IntentModel(tokenizer, pooled, head, info=info, device=device)
    _calibrate(model, val_rows, config)
    model.info["training_seconds"] = round(time.perf_counter() - started, 1)
    if out_dir is not None:
        model.save(out_dir)
        log.info("saved model %s to %s", model.version, out_dir)
    return model


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


def _centroids(
    pooled: torch.nn.Module, data: _Data, num_labels: int, pad_id: int, device: torch.device, batch_size: int
) -> torch.Tensor:
    """Mean normalised embedding of each class (the cosine head's starting weights)."""
    dim = int(getattr(pooled, "transformer").config.hidden_size)  # noqa: B009
    sums = torch.zeros((num_labels, dim), dtype=torch.float32)
    counts = torch.zeros(num_labels, dtype=torch.float32)
    targets = torch.tensor(data.targets)
    for batch, embedding in _embed_batches(pooled, data.ids, pad_id, device, batch_size):
        batch_targets = targets[batch]
        keep = batch_targets >= 0
        sums.index_add_(0, batch_targets[keep], embedding.float().cpu()[keep])
        counts.index_add_(0, batch_targets[keep], torch.ones(int(keep.sum())))
    return F.normalize(sums / counts.clamp(min=1.0).unsqueeze(1), dim=1)


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
    warmup = int(config.warmup_ratio * total_steps)
    optimizer = _optimizer(network, config)

    def schedule(step: int) -> float:
        if step < warmup:
            return (step + 1) / (warmup + 1)
        return max(0.0, (total_steps - step) / max(1, total_steps - warmup))

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)
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


def _calibrate(model: IntentModel, val_rows: Sequence[Example], config: TrainingConfig) -> None:
    """Choose the abstention threshold on validation and record validation metrics in `model.info`."""
    oos = config.out_of_scope_label
    labels = model.labels
    probs, _ = model.probabilities([ex.text for ex in val_rows], config.eval_batch_size)
    top, scores = answer_scores(probs, labels, oos)
    truth = np.array([ex.label for ex in val_rows], dtype=object)
    predicted = np.array([labels[i] for i in top], dtype=object)
    is_oos = truth == oos
    correct = (predicted == truth) & ~is_oos
    choice = choose_threshold(scores, correct, config.target_precision)
    model.threshold = choice.threshold
    model.info["threshold"] = choice.threshold
    model.info["threshold_selection"] = choice.to_dict()
    metrics: dict[str, Any] = {"examples": len(val_rows)}
    if len(val_rows):
        in_scope = ~is_oos
        metrics["accuracy"] = float((predicted == truth).mean())
        metrics["macro_f1"] = float(f1_score(truth, predicted, average="macro", zero_division=0))
        if is_oos.any():
            in_scores = max_in_scope(probs, labels, oos)
            metrics["in_scope_accuracy"] = (
                float((predicted[in_scope] == truth[in_scope]).mean()) if in_scope.any() else None
            )
            metrics["out_of_scope_recall"] = float((scores[is_oos] < choice.threshold).mean())
            metrics["auroc"] = ood_auroc(in_scores[in_scope], in_scores[is_oos])
    model.info["validation"] = metrics


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
