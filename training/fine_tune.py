"""Fine-tuning: the encoder and its cosine head trained on labelled rows (or the head alone on a frozen encoder).

`fine_tune` returns an `IntentModel` that is not yet calibrated; `training.train.train` adds the out-of-scope
scorer and the operating point. Length-bucketed dynamic-padding batches, a linear warm-up/decay schedule
(transformers' helper), validation every epoch, the best epoch kept by `config.select_by` (early stopping).
"""

from __future__ import annotations

import contextlib
import logging
import math
import platform
import random
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm
from transformers import get_linear_schedule_with_warmup

from training.batching import bucketed_batches, pad_batch, sorted_batches, tokenize
from training.config import TrainingConfig
from training.data import Example, dataset_hash, label_counts, repeat_rare
from training.encoder import Encoder, resolve_device, set_threads
from training.model import IntentModel, new_version
from training.network import CosineHead, IntentNetwork

log = logging.getLogger(__name__)


@dataclass
class _Data:
    ids: list[list[int]]
    targets: list[int]  # -1: an out-of-scope row whose label is not a class


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
    given = train_rows  # what the model is said to be trained on (counts, hash): the repeats are weighting
    train_rows = repeat_rare(train_rows, config.rare_label_examples)
    train_data = _encode_rows(tokenizer, train_rows, labels, config)
    val_data = _encode_rows(tokenizer, val_rows, labels, config)

    pooled = base_encoder.encoder
    train_targets = torch.tensor(train_data.targets)
    adjustment = rare_adjustment(train_data.targets, label_counts(given), labels, config).to(device)
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
            head,
            (train_embeddings, train_targets),
            (val_embeddings, torch.tensor(val_data.targets)),
            config,
            device,
            adjustment,
        )
    else:
        history, best_epoch = _fit(network, train_data, val_data, config, device, pad_id, progress, adjustment)
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
        "train_examples": len(given),
        "validation_examples": len(val_rows),
        "label_counts": label_counts(given),
        "dataset_hash": dataset_hash(given),
        "validation_hash": dataset_hash(val_rows),
        "device": str(device),
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "versions": _versions(),
    }
    model = IntentModel(tokenizer, pooled, head, info=info, device=device)
    model.memo = base_encoder.memo if config.freeze_encoder else None
    return model


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


def rare_adjustment(
    targets: Sequence[int], given_counts: dict[str, int], labels: list[str], config: TrainingConfig
) -> torch.Tensor:
    """What training adds to each class's logit: `config.rare_logit_adjustment` x log(its share / the median
    label's share) for the rare labels (fewer than `config.rare_label_examples` given), 0 for the others.

    This is logit adjustment (Menon et al., "Long-tail learning via logit adjustment", ICLR 2021) confined to the
    rare labels: a class whose logit is lowered during training learns to score that much higher, and serving
    (without the adjustment) then ranks a new intent learnt from three corrections as a classifier trained on
    balanced data would, instead of losing its questions to the intents with hundreds of examples. Shares are
    counted on the training rows as given to the optimiser (after `repeat_rare`).
    """
    adjustment = torch.zeros(len(labels), dtype=torch.float32)
    rare = [i for i, label in enumerate(labels) if given_counts.get(label, 0) < config.rare_label_examples]
    if not rare or config.rare_logit_adjustment <= 0:
        return adjustment
    counts = np.bincount([t for t in targets if t >= 0], minlength=len(labels)).astype(np.float64)
    median = float(np.median(counts[counts > 0]))
    for i in rare:
        adjustment[i] = config.rare_logit_adjustment * math.log(max(counts[i], 1.0) / median)
    return adjustment.clamp(max=0.0)


def _fit_head(
    head: CosineHead,
    train: tuple[torch.Tensor, torch.Tensor],
    val: tuple[torch.Tensor, torch.Tensor],
    config: TrainingConfig,
    device: torch.device,
    adjustment: torch.Tensor,
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

    def one_epoch(epoch: int) -> dict[str, float]:
        loss_sum = 0.0
        for batch in torch.randperm(len(train_y), generator=generator).split(config.batch_size):
            batch = batch.to(device)
            logits = head(train_x[batch]) + adjustment
            batch_loss = F.cross_entropy(logits, train_y[batch], label_smoothing=config.label_smoothing)
            optimizer.zero_grad(set_to_none=True)
            batch_loss.backward()
            optimizer.step()
            loss_sum += float(batch_loss.detach()) * len(batch)
        return {"epoch": epoch, "train_loss": loss_sum / max(len(train_y), 1)}

    return _epochs(head, config, one_epoch, score if len(val_y) else None, progress=False)


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
    adjustment: torch.Tensor,
) -> tuple[list[dict[str, float]], int]:
    """Train, the loss on the logits plus `adjustment` (`rare_adjustment`); return the per-epoch history and the
    best epoch (its weights are loaded into `network`)."""
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

    def one_epoch(epoch: int) -> dict[str, float]:
        network.train()
        epoch_started, loss_sum, seen = time.perf_counter(), 0.0, 0
        batches = bucketed_batches(lengths, config.batch_size, rng)
        bar = tqdm(batches, desc=f"epoch {epoch}/{config.epochs}", disable=not progress, leave=False, unit="batch")
        for batch in bar:
            input_ids, mask = pad_batch([train_data.ids[i] for i in batch], pad_id, device)
            batch_targets = targets[batch].to(device)
            with _autocast(device):
                logits, _ = network(input_ids, mask)
            batch_loss = F.cross_entropy(
                logits.float() + adjustment, batch_targets, label_smoothing=config.label_smoothing
            )
            optimizer.zero_grad(set_to_none=True)
            batch_loss.backward()
            torch.nn.utils.clip_grad_norm_(network.parameters(), config.max_grad_norm)
            optimizer.step()
            scheduler.step()
            loss_sum += float(batch_loss.detach()) * len(batch)
            seen += len(batch)
            bar.set_postfix(loss=f"{loss_sum / seen:.3f}")
        bar.close()
        return {"epoch": epoch, "train_loss": loss_sum / max(seen, 1), "seconds": time.perf_counter() - epoch_started}

    return _epochs(network, config, one_epoch, score if has_val else None, progress=progress)


def _epochs(
    module: torch.nn.Module,
    config: TrainingConfig,
    one_epoch: Callable[[int], dict[str, float]],
    score: Callable[[], tuple[float, float]] | None,
    *,
    progress: bool,
) -> tuple[list[dict[str, float]], int]:
    """Run up to `config.epochs` epochs, validating after each (when `score` is given) and keeping the best by
    `config.select_by`, stopping after `config.patience` epochs without improvement; the best epoch's weights are
    loaded into `module`. Returns the per-epoch history and the best epoch."""
    history: list[dict[str, float]] = []
    best, best_epoch, best_state, stale = (float("-inf"), float("-inf")), 0, _snapshot(module), 0
    if score is not None:
        accuracy, val_loss = score()
        history.append({"epoch": 0, "val_accuracy": accuracy, "val_loss": val_loss})
        best = _selection_key(config.select_by, accuracy, val_loss)
    for epoch in range(1, config.epochs + 1):
        record = one_epoch(epoch)
        if score is not None:
            accuracy, val_loss = score()
            record.update(val_accuracy=accuracy, val_loss=val_loss)
            key = _selection_key(config.select_by, accuracy, val_loss)
            if key > best:
                best, best_epoch, best_state, stale = key, epoch, _snapshot(module), 0
            else:
                stale += 1
        else:
            best_epoch, best_state = epoch, _snapshot(module)
        history.append(record)
        log.debug("epoch %d: %s", epoch, {k: round(v, 4) for k, v in record.items()})
        if progress:
            summary = ", ".join(f"{k}={v:.4f}" for k, v in record.items() if k != "epoch")
            tqdm.write(f"epoch {epoch}: {summary}", file=sys.stderr)  # progress, like the bars: not stdout
        if score is not None and config.patience and stale >= config.patience:
            log.info("early stop after epoch %d (best epoch %d)", epoch, best_epoch)
            break
    module.load_state_dict(best_state)
    return history, best_epoch


def _selection_key(select_by: str, accuracy: float, loss: float) -> tuple[float, float]:
    """Larger is better: validation loss (ties: accuracy) or validation accuracy (ties: loss)."""
    return (-loss, accuracy) if select_by == "loss" else (accuracy, -loss)


def _snapshot(network: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {name: tensor.detach().clone() for name, tensor in network.state_dict().items()}


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
