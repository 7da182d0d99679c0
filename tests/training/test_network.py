"""Mean pooling and the cosine head."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from training.network import CosineHead, mean_pool


def test_mean_pool_ignores_padding() -> None:
    hidden = torch.tensor([[[1.0, 2.0], [3.0, 4.0], [100.0, 100.0]]])
    mask = torch.tensor([[1, 1, 0]])
    assert mean_pool(hidden, mask).tolist() == [[2.0, 3.0]]


def test_cosine_head_is_scaled_cosine_similarity() -> None:
    weight = torch.tensor([[2.0, 0.0], [0.0, 3.0], [1.0, 1.0]])
    head = CosineHead(weight, scale=10.0, learn_scale=False)
    embedding = F.normalize(torch.tensor([[1.0, 1.0]]), dim=-1)
    logits = head(embedding)
    expected = 10.0 * torch.tensor([[2**-0.5, 2**-0.5, 1.0]])
    assert torch.allclose(logits, expected, atol=1e-6)
    assert head.num_labels == 3
    assert not head.scale.requires_grad
    assert CosineHead(weight).scale.requires_grad
