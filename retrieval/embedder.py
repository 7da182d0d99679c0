"""What the knowledge base needs from an encoder: the `Embedder` protocol.

`retrieval` never loads a model itself. The bot passes the encoder of the model version the index belongs
to (`training.encoder.Encoder` or `training.model.IntentModel`), and tests pass a small deterministic fake.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np

from retrieval.errors import KnowledgeBaseError


@runtime_checkable
class Embedder(Protocol):
    """Anything that turns texts into L2-normalised float32 vectors.

    Attributes:
        dim: length of each vector.
        encoder_id: identifies the weights that produced the vectors (a model path, hub id or version);
            an index refuses to mix vectors from two encoders.
    """

    @property
    def dim(self) -> int:
        """Length of each embedding."""
        ...

    @property
    def encoder_id(self) -> str:
        """Identity of the encoder weights."""
        ...

    def encode(self, texts: list[str]) -> np.ndarray:
        """Embed `texts` as a float32 array of shape (len(texts), dim), each row L2-normalised."""
        ...


def normalise_rows(vectors: np.ndarray, *, dim: int, what: str) -> np.ndarray:
    """Check `vectors` is a finite (n, dim) matrix and return it as contiguous, L2-normalised float32.

    Args:
        vectors: the matrix to check.
        dim: the expected number of columns.
        what: names the vectors in error messages ("query vector", "embeddings of 'faq.csv'").

    Raises:
        KnowledgeBaseError: wrong shape or dimension, NaN/inf values, or an all-zero row.
    """
    array = np.asarray(vectors, dtype=np.float32)
    if array.ndim != 2 or array.shape[1] != dim:
        raise KnowledgeBaseError(
            f"{what} has shape {tuple(array.shape)} but this index holds {dim}-dimensional vectors: embed with "
            "the same encoder that built the index, or rebuild the index with `supportbot kb rebuild VERSION`"
        )
    if not np.isfinite(array).all():
        raise KnowledgeBaseError(f"{what} contains NaN or infinite values: check the encoder output")
    norms = np.linalg.norm(array, axis=1, keepdims=True)
    if array.shape[0] and (norms == 0).any():
        raise KnowledgeBaseError(f"{what} contains an all-zero vector, which has no direction to search by")
    return np.ascontiguousarray(array / np.where(norms == 0, 1, norms), dtype=np.float32)
