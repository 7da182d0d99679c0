"""The base sentence encoder: loading a Hugging Face model, mean pooling, devices and threads.

This is the only module that calls `from_pretrained`. `training.model.IntentModel` (the fine-tuned classifier)
is an `Encoder` with a head.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from training.batching import pad_batch, sorted_batches, tokenize
from training.errors import ModelError
from training.network import PooledEncoder
from training.text import normalise_text

WEIGHTS_FILE = "model.safetensors"
"""The transformer's weights in a Hugging Face model directory."""

DEFAULT_MAX_LENGTH = 256
"""Token limit when embedding (all-MiniLM-L6-v2 was trained with 256)."""


def resolve_device(device: str | torch.device | None) -> torch.device:
    """`None` or "auto" -> CUDA when available, else CPU; anything else is passed to `torch.device`."""
    if device is None or device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        return torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ModelError(f"unknown device {device!r}: use 'auto', 'cpu' or 'cuda'") from exc


def set_threads(threads: int | None) -> None:
    """Limit torch's intra-op CPU threads (process-wide); `None` or 0 leaves torch's default."""
    if threads:
        torch.set_num_threads(threads)


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file (streamed by the standard library)."""
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


@contextlib.contextmanager
def quiet_hub_progress() -> Iterator[None]:
    """Hide transformers' own progress bars (loading/writing weights) for the duration."""
    from transformers.utils import logging as hf_logging

    enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if enabled:
            hf_logging.enable_progress_bar()


def load_transformer(name_or_path: str) -> tuple[Any, nn.Module]:
    from transformers import AutoModel, AutoTokenizer

    try:
        with quiet_hub_progress():
            tokenizer = AutoTokenizer.from_pretrained(name_or_path, use_fast=True, local_files_only=True)
            transformer = AutoModel.from_pretrained(name_or_path, local_files_only=True)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ModelError(
            f"cannot load the transformer from {name_or_path!r} ({exc.__class__.__name__}: {exc}); "
            "give the path of a local Hugging Face model directory (no model hub access), e.g. the bundled "
            "all-MiniLM-L6-v2, or set BASE_MODEL"
        ) from exc
    if not getattr(tokenizer, "is_fast", False):
        raise ModelError(f"{name_or_path!r} has no fast tokenizer (tokenizer.json); use a model that ships one")
    return tokenizer, transformer


def _quantize(module: nn.Module) -> nn.Module:
    """int8 dynamic quantisation of the Linear layers (CPU only): ~2.5x faster, ~1 point less accurate."""
    from torch.ao.quantization import quantize_dynamic

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return quantize_dynamic(module, {nn.Linear}, dtype=torch.qint8)


def _base_fingerprint(name_or_path: str) -> str:
    path = Path(name_or_path)
    name = path.parent.name if path.name == "model" else path.name
    weights = path / WEIGHTS_FILE
    if weights.is_file():
        return f"{name or name_or_path}@{sha256_file(weights)[:12]}"
    return name_or_path


class Encoder:
    """A mean-pooled, L2-normalised sentence encoder (the base model before any fine-tuning).

    Satisfies the retrieval `Embedder` protocol (`dim`, `encode`).

    Example:
        >>> encoder = Encoder.load(base_model_path, threads=2)
        >>> encoder.encode(["How do I reset my password?"]).shape
        (1, 384)
    """

    def __init__(
        self,
        tokenizer: Any,
        encoder: PooledEncoder,
        *,
        encoder_id: str,
        device: torch.device,
        max_length: int = DEFAULT_MAX_LENGTH,
    ) -> None:
        self.tokenizer = tokenizer
        self.encoder = encoder.eval()
        self.encoder_id = encoder_id
        self.device = device
        self.max_length = max_length
        self._dim = int(getattr(encoder.transformer, "config").hidden_size)  # noqa: B009
        self.memo: dict[str, np.ndarray] | None = None
        """Embeddings by text, reused while set: training a head on a frozen encoder embeds each text once."""

    @classmethod
    def load(
        cls,
        name_or_path: str | os.PathLike[str],
        *,
        device: str | None = None,
        threads: int | None = None,
        quantize: bool = False,
        max_length: int = DEFAULT_MAX_LENGTH,
    ) -> Encoder:
        """Load a Hugging Face encoder from a local directory.

        Args:
            name_or_path: Local model directory (e.g. `bot.settings.bundled_base_model()`).
            device: "auto"/None (CUDA when available), "cpu" or "cuda".
            threads: torch CPU threads (process-wide); None keeps torch's default.
            quantize: int8 dynamic quantisation for faster CPU inference (CPU only; "auto" then means CPU).
            max_length: Token limit per text.

        Raises:
            ModelError: The directory is missing or not a loadable model.
        """
        set_threads(threads)
        resolved = resolve_device("cpu" if quantize and device in (None, "auto") else device)
        tokenizer, transformer = load_transformer(str(name_or_path))
        encoder = PooledEncoder(transformer)
        module = prepare_for_inference(encoder, resolved, quantize)
        return cls(
            tokenizer,
            module,
            encoder_id=_base_fingerprint(str(name_or_path)),
            device=resolved,
            max_length=max_length,
        )

    @property
    def dim(self) -> int:
        """Embedding size (384 for MiniLM)."""
        return self._dim

    def encode(self, texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
        """Embed texts: float32 array (len(texts), dim), each row L2-normalised.

        Texts are normalised with `normalise_text` and batched by length (dynamic padding).
        """
        if isinstance(texts, str):
            raise TypeError("encode() takes a list of texts, not one string")
        if self.memo is None:
            return self._encode(texts, batch_size)
        missing = [text for text in dict.fromkeys(texts) if text not in self.memo]
        self.memo.update(zip(missing, self._encode(missing, batch_size), strict=True))
        return np.stack([self.memo[text] for text in texts]) if texts else self._encode([], batch_size)

    def _encode(self, texts: Sequence[str], batch_size: int) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        if not texts:
            return out
        ids = tokenize(self.tokenizer, [normalise_text(t) for t in texts], self.max_length)
        with torch.inference_mode():
            for batch in sorted_batches([len(row) for row in ids], batch_size):
                input_ids, mask = pad_batch([ids[i] for i in batch], self.pad_id, self.device)
                out[batch] = self.encoder(input_ids, mask).cpu().numpy()
        return out

    @property
    def pad_id(self) -> int:
        """The tokenizer's padding token id."""
        return int(self.tokenizer.pad_token_id or 0)


def prepare_for_inference(module: PooledEncoder, device: torch.device, quantize: bool) -> PooledEncoder:
    module.eval()
    if quantize:
        if device.type != "cpu":
            raise ModelError("quantize=True is CPU only: load with device='cpu' or without quantize")
        quantized = _quantize(module)
        assert isinstance(quantized, PooledEncoder)
        return quantized
    return module.to(device)
