"""The torch modules: a mean-pooled sentence encoder and a cosine classification head."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def mean_pool(hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Average the token vectors of each row, ignoring padding (attention-mask weighted)."""
    mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
    summed = (hidden * mask).sum(dim=1)
    counts = mask.sum(dim=1).clamp(min=1e-9)
    return summed / counts


class PooledEncoder(nn.Module):
    """A transformer followed by mean pooling and L2 normalisation."""

    def __init__(self, transformer: nn.Module) -> None:
        super().__init__()
        self.transformer = transformer

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Return one L2-normalised float32 embedding per row, shape (batch, dim)."""
        output = self.transformer(input_ids=input_ids, attention_mask=attention_mask)
        pooled = mean_pool(output.last_hidden_state, attention_mask)
        return F.normalize(pooled.float(), p=2.0, dim=-1)


class CosineHead(nn.Module):
    """Logits = scale * cos(embedding, class weight); the weights start at the class centroids.

    Args:
        weight: Initial class vectors, shape (num_labels, dim); they are normalised in `forward`.
        scale: Initial temperature (logit scale).
        learn_scale: Whether the scale is trained.
    """

    def __init__(self, weight: torch.Tensor, scale: float = 20.0, learn_scale: bool = True) -> None:
        super().__init__()
        self.weight = nn.Parameter(weight.detach().clone().float())
        self.scale = nn.Parameter(torch.tensor(float(scale)), requires_grad=learn_scale)

    @property
    def num_labels(self) -> int:
        return int(self.weight.shape[0])

    def forward(self, embedding: torch.Tensor) -> torch.Tensor:
        """Return logits, shape (batch, num_labels), for L2-normalised embeddings."""
        return self.scale * (embedding @ F.normalize(self.weight, p=2.0, dim=-1).T)


class IntentNetwork(nn.Module):
    """Encoder + head: one forward pass yields the logits and the embedding."""

    def __init__(self, encoder: PooledEncoder, head: CosineHead) -> None:
        super().__init__()
        self.encoder = encoder
        self.head = head

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Return (logits, embedding)."""
        embedding = self.encoder(input_ids, attention_mask)
        return self.head(embedding.float()), embedding
