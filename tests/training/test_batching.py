"""Dynamic padding and length-bucketed batches."""

from __future__ import annotations

import random

import torch

from training.batching import bucketed_batches, pad_batch, sorted_batches


def test_pad_batch_pads_to_the_longest_row() -> None:
    ids, mask = pad_batch([[1, 2, 3], [4]], pad_id=0, device=torch.device("cpu"))
    assert ids.tolist() == [[1, 2, 3], [4, 0, 0]]
    assert mask.tolist() == [[1, 1, 1], [1, 0, 0]]
    assert ids.dtype == mask.dtype == torch.long


def test_sorted_batches_cover_every_row_once_by_length() -> None:
    lengths = [5, 1, 4, 2, 3]
    batches = list(sorted_batches(lengths, 2))
    assert batches == [[1, 3], [4, 2], [0]]


def test_bucketed_batches_cover_every_row_once_and_group_similar_lengths() -> None:
    rng = random.Random(0)
    lengths = [rng.randint(3, 60) for _ in range(1000)]
    batches = bucketed_batches(lengths, 16, random.Random(1), bucket_factor=10)
    flat = [i for batch in batches for i in batch]
    assert sorted(flat) == list(range(1000))
    assert all(1 <= len(batch) <= 16 for batch in batches)
    padded = sum(max(lengths[i] for i in batch) * len(batch) for batch in batches)
    shuffled = list(range(1000))
    random.Random(2).shuffle(shuffled)
    chunks = [shuffled[s : s + 16] for s in range(0, 1000, 16)]
    naive = sum(max(lengths[i] for i in chunk) * len(chunk) for chunk in chunks)
    assert padded < 0.8 * naive  # bucketing saves padding over random batches


def test_bucketed_batches_depend_only_on_the_seed() -> None:
    lengths = list(range(100))
    assert bucketed_batches(lengths, 8, random.Random(3)) == bucketed_batches(lengths, 8, random.Random(3))
    assert bucketed_batches(lengths, 8, random.Random(3)) != bucketed_batches(lengths, 8, random.Random(4))
