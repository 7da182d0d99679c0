"""Tokenisation and dynamic-padding batches (padding only to the longest row of each batch)."""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from typing import Any

import torch


def tokenize(tokenizer: Any, texts: Sequence[str], max_length: int) -> list[list[int]]:
    """Token ids of each text (special tokens added, truncated to `max_length`, no padding)."""
    if not texts:
        return []
    encoded = tokenizer(list(texts), truncation=True, max_length=max_length, padding=False)
    return [list(ids) for ids in encoded["input_ids"]]


def pad_batch(rows: Sequence[Sequence[int]], pad_id: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Pad `rows` to their longest member; return (input_ids, attention_mask) on `device`."""
    width = max(len(row) for row in rows)
    input_ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    attention_mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, row in enumerate(rows):
        input_ids[i, : len(row)] = torch.tensor(row, dtype=torch.long)
        attention_mask[i, : len(row)] = 1
    return input_ids.to(device), attention_mask.to(device)


def sorted_batches(lengths: Sequence[int], batch_size: int) -> Iterator[list[int]]:
    """Index batches in order of length (inference: the least padding); callers restore the order."""
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    for start in range(0, len(order), batch_size):
        yield order[start : start + batch_size]


def bucketed_batches(
    lengths: Sequence[int], batch_size: int, rng: random.Random, bucket_factor: int = 50
) -> list[list[int]]:
    """Shuffled training batches of similar length.

    Rows are shuffled, cut into pools of `batch_size * bucket_factor`, each pool sorted by length and cut
    into batches, and the batches shuffled again: little padding, yet every epoch sees a new order.
    """
    order = list(range(len(lengths)))
    rng.shuffle(order)
    pool_size = max(batch_size * bucket_factor, batch_size)
    batches: list[list[int]] = []
    for start in range(0, len(order), pool_size):
        pool = sorted(order[start : start + pool_size], key=lambda i: lengths[i])
        batches.extend(pool[i : i + batch_size] for i in range(0, len(pool), batch_size))
    rng.shuffle(batches)
    return batches
