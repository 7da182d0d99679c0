"""Shared fixtures for the knowledge-base tests: a fast deterministic embedder and sample documents."""

from __future__ import annotations

import re
import zlib

import numpy as np
import pytest

from retrieval.documents import Document


class HashEmbedder:
    """Hashed bag of words -> L2-normalised vector: texts sharing words get similar vectors."""

    def __init__(self, dim: int = 128, encoder_id: str = "hash-bow-v1") -> None:
        self.dim = dim
        self.encoder_id = encoder_id
        self.calls = 0

    def encode(self, texts: list[str]) -> np.ndarray:
        self.calls += 1
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in re.findall(r"\w+", text.lower()):
                h = zlib.crc32(word.encode())
                out[row, h % self.dim] += 1.0 if (h >> 16) & 1 else -1.0
            if not out[row].any():
                out[row, 0] = 1.0
        return out / np.linalg.norm(out, axis=1, keepdims=True)


@pytest.fixture
def embedder() -> HashEmbedder:
    return HashEmbedder()


def make_docs() -> list[Document]:
    return [
        Document("billing/refunds.md", "Refund policy", "Refunds are paid back to the original card within days.", "x"),
        Document("account/password.md", "Reset password", "Open settings and click forgot password to reset it.", "x"),
        Document("shipping.md", "Shipping times", "Parcels ship from the warehouse and arrive within a week.", "x"),
        Document("faq.csv#invoice", "Where is my invoice?", "Invoices are in the billing tab.", "faq.csv", kind="faq"),
    ]


@pytest.fixture
def docs() -> list[Document]:
    return make_docs()
