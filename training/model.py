"""The fine-tuned `IntentModel` (an `Encoder` with a cosine head, its scorer and operating point): run it, save
it as a self-describing directory, load it with verification; version names."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch

from training.batching import pad_batch, sorted_batches, tokenize
from training.calibration import ANSWER, CLARIFY, Action, OperatingPoint
from training.data import OUT_OF_SCOPE
from training.encoder import (
    DEFAULT_MAX_LENGTH,
    WEIGHTS_FILE,
    Encoder,
    load_transformer,
    prepare_for_inference,
    quiet_hub_progress,
    resolve_device,
    set_threads,
    sha256_file,
)
from training.errors import ModelError
from training.network import CosineHead, IntentNetwork, PooledEncoder
from training.openset import SCORER_FILE, OpenSetScorer, QuestionScores, scores_from_probs
from training.text import normalise_text

HEAD_FILE = "head.safetensors"
MANIFEST_FILE = "supportbot.json"
FORMAT_VERSION = 1
SUPPORTED_FORMAT_VERSIONS = frozenset({1})
_REQUIRED_FILES = (WEIGHTS_FILE, HEAD_FILE, "config.json", "tokenizer.json")
_WHAT_TO_DO = (
    "train a new one (`supportbot retrain --force`, or `supportbot train` then `supportbot model promote VERSION`); "
    "if it is the production model, restore a version from the registry (`supportbot model rollback`) meanwhile"
)


def _read_json(path: Path) -> dict[str, Any]:
    data = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise ValueError("not a JSON object")
    return data


def new_version(now: datetime | None = None) -> str:
    """The one version-name scheme: the UTC time, e.g. "v20261128-233001" (names sort in creation order)."""
    return (now or datetime.now(UTC)).strftime("v%Y%m%d-%H%M%S")


def retag(directory: str | os.PathLike[str], version: str) -> None:
    """Give the model directory `directory` (a copy of another version's model) the version name `version`.

    `supportbot.json` is replaced by a new file, never written in place: the other files may be hard links
    shared with the version it was copied from.
    """
    path = Path(directory).expanduser() / MANIFEST_FILE
    manifest = _read_manifest(path.parent)
    manifest["version"] = version
    staging = path.with_name(f".{MANIFEST_FILE}.tmp")
    staging.write_text(json.dumps(manifest, indent=2, sort_keys=False) + "\n", "utf-8")
    os.replace(staging, path)


@dataclass(frozen=True, slots=True)
class Prediction:
    """The classifier's answer for one question.

    Attributes:
        label: The top class (may be the out-of-scope label).
        confidence: Its softmax probability.
        scores: Probability of every label.
        embedding: The L2-normalised question embedding (float32, for knowledge-base search).
        action: What the model's operating point says: "answer" from `label`, "clarify" (ask which of
            `candidates` is meant) or "handoff". What the bot then does (out of scope, curated answers,
            knowledge-base passages) is `bot.decision.AnswerPolicy`'s.
        score: The out-of-scope score the operating point compared (`model.point.score`).
        candidates: The operating point's two best in-scope intents, best first (what a clarifying question
            may offer).
    """

    label: str
    confidence: float
    scores: dict[str, float]
    embedding: np.ndarray
    action: Action
    score: float
    candidates: tuple[str, ...] = ()


class IntentModel(Encoder):
    """The fine-tuned intent classifier: one forward pass gives class probabilities and the embedding.

    Example:
        >>> model = IntentModel.load("~/.supportbot/models/v20261128-233001/model")
        >>> prediction = model.predict_one("I forgot my password")
        >>> prediction.label, prediction.action
        ('reset_password', 'answer')
    """

    def __init__(
        self,
        tokenizer: Any,
        encoder: PooledEncoder,
        head: CosineHead,
        *,
        info: dict[str, Any],
        device: torch.device,
        encoder_id: str | None = None,
        max_length: int = DEFAULT_MAX_LENGTH,
    ) -> None:
        labels = list(info["labels"])
        if head.num_labels != len(labels):
            raise ModelError(f"the head has {head.num_labels} classes but there are {len(labels)} labels")
        super().__init__(
            tokenizer,
            encoder,
            encoder_id=encoder_id or f"supportbot:{info['version']}",
            device=device,
            max_length=max_length,
        )
        self.head = head.to(device).eval()
        self.network = IntentNetwork(self.encoder, self.head).eval()
        self.info = info
        self._labels = labels
        self.scorer: OpenSetScorer | None = None
        self.point = OperatingPoint.from_dict(info.get("decision") or {"threshold": info["threshold"]})

    @property
    def threshold(self) -> float:
        """The operating point's answer threshold (on the score `point.score`)."""
        return self.point.threshold

    @property
    def labels(self) -> list[str]:
        """Class names, in the order of the head's outputs."""
        return list(self._labels)

    @property
    def version(self) -> str:
        """Model version name (e.g. "v20261128-233001")."""
        return str(self.info["version"])

    @property
    def out_of_scope_label(self) -> str:
        """The label meaning "not something the bot answers" (it may be absent from `labels`)."""
        return str(self.info.get("out_of_scope_label", OUT_OF_SCOPE))

    # --- inference -------------------------------------------------------------------------------
    def probabilities(self, texts: Sequence[str], batch_size: int = 64) -> tuple[np.ndarray, np.ndarray]:
        """Class probabilities (n, len(labels)) and embeddings (n, dim), both float32, from one pass."""
        if isinstance(texts, str):
            raise TypeError("probabilities() takes a list of texts, not one string")
        probs = np.zeros((len(texts), len(self._labels)), dtype=np.float32)
        embeddings = np.zeros((len(texts), self.dim), dtype=np.float32)
        if not texts:
            return probs, embeddings
        if self.memo is not None:  # the encoder is frozen (training): the head alone runs on remembered embeddings
            embeddings = self.encode(texts, batch_size)
            with torch.inference_mode():
                logits = self.head(torch.from_numpy(embeddings).to(self.device))
            return torch.softmax(logits.float(), dim=-1).cpu().numpy(), embeddings
        ids = tokenize(self.tokenizer, [normalise_text(t) for t in texts], self.max_length)
        with torch.inference_mode():
            for batch in sorted_batches([len(row) for row in ids], batch_size):
                input_ids, mask = pad_batch([ids[i] for i in batch], self.pad_id, self.device)
                logits, embedding = self.network(input_ids, mask)
                probs[batch] = torch.softmax(logits.float(), dim=-1).cpu().numpy()
                embeddings[batch] = embedding.cpu().numpy()
        return probs, embeddings

    def decision_scores(self, probs: np.ndarray, embeddings: np.ndarray, *, every: bool = False) -> QuestionScores:
        """The out-of-scope scores of a batch: those the operating point needs, or `every` one (max softmax only
        for a model saved without a scorer)."""
        if self.scorer is None:
            return scores_from_probs(probs, self._labels, self.out_of_scope_label)
        return self.scorer.scores(embeddings, only=None if every else self.point.score)

    def predict(self, texts: Sequence[str], batch_size: int = 64) -> list[Prediction]:
        """Classify and embed each text (one forward pass per batch)."""
        probs, embeddings = self.probabilities(texts, batch_size)
        scores = self.decision_scores(probs, embeddings)
        return [self._prediction(probs[i], embeddings[i], scores.subset(np.array([i]))) for i in range(len(probs))]

    def predict_one(self, text: str) -> Prediction:
        """Classify one question with the least latency (no padding, no batching)."""
        encoded = self.tokenizer(normalise_text(text), truncation=True, max_length=self.max_length, return_tensors="pt")
        input_ids = encoded["input_ids"].to(self.device)
        with torch.inference_mode():
            logits, embedding = self.network(input_ids, torch.ones_like(input_ids))
            probs = torch.softmax(logits.float(), dim=-1)
        row_probs, row_embedding = probs.cpu().numpy(), embedding.cpu().numpy()
        return self._prediction(row_probs[0], row_embedding[0], self.decision_scores(row_probs, row_embedding))

    def _prediction(self, probs: np.ndarray, embedding: np.ndarray, scores: QuestionScores) -> Prediction:
        top = int(probs.argmax())
        label, confidence = self._labels[top], float(probs[top])
        action = int(self.point.actions(scores)[0])
        second = int(scores.second[0])
        candidates = (self._labels[int(scores.top[0])], self._labels[second]) if second >= 0 else ()
        return Prediction(
            label=label,
            confidence=confidence,
            scores={name: float(p) for name, p in zip(self._labels, probs, strict=True)},
            embedding=embedding.astype(np.float32, copy=False),
            action="answer" if action == ANSWER else "clarify" if action == CLARIFY else "handoff",
            score=float(scores.values[self.point.score][0]),
            candidates=candidates,
        )

    # --- persistence -----------------------------------------------------------------------------
    def save(self, directory: str | os.PathLike[str]) -> Path:
        """Write the self-describing model directory atomically (temp directory beside it, then rename).

        Contents: the transformer (safetensors + config), the tokenizer, the head (`head.safetensors`) and
        `supportbot.json` (the info plus the sha256 of every file). An existing model directory is replaced.

        Raises:
            ModelError: The model is quantised, or the target exists and is not a model directory.
        """
        target = Path(directory).expanduser()
        if self.info.get("quantized"):
            raise ModelError("a quantised model cannot be saved; load it without quantize and save that")
        if target.exists() and (
            not target.is_dir() or (any(target.iterdir()) and not (target / MANIFEST_FILE).exists())
        ):
            raise ModelError(f"{target} exists and is not a supportbot model directory; choose another output path")
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
        try:
            staging.chmod(0o755)
            transformer = self.encoder.transformer
            with quiet_hub_progress():
                transformer.save_pretrained(staging)  # type: ignore[operator]
            self.tokenizer.save_pretrained(staging)
            from safetensors.torch import save_file

            save_file(
                {
                    "weight": self.head.weight.detach().cpu().contiguous(),
                    "scale": self.head.scale.detach().cpu().reshape(1),
                },
                str(staging / HEAD_FILE),
            )
            if self.scorer is not None:
                self.scorer.save(staging)
            files = {p.name: sha256_file(p) for p in sorted(staging.iterdir()) if p.is_file()}
            manifest = {**self.info, "format_version": FORMAT_VERSION, "head_file": HEAD_FILE, "files": files}
            (staging / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2, sort_keys=False) + "\n", "utf-8")
            _replace_directory(staging, target)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        self.info = manifest
        self.encoder_id = _intent_fingerprint(manifest)
        return target

    @classmethod
    def load(
        cls,
        directory: str | os.PathLike[str],
        *,
        device: str | None = None,
        threads: int | None = None,
        quantize: bool = False,
        max_length: int = DEFAULT_MAX_LENGTH,
    ) -> IntentModel:
        """Load and verify a model directory written by `save`.

        Checks: the directory and `supportbot.json` exist and parse, the format version is supported, every
        file is present with the recorded sha256, labels are unique, the head matches the labels, and the
        tokenizer and transformer load.

        Args:
            directory: The model directory (`models/<version>/model`).
            device: "auto"/None (CUDA when available), "cpu" or "cuda".
            threads: torch CPU threads (process-wide); None keeps torch's default.
            quantize: int8 dynamic quantisation of the encoder (CPU only, so "auto" means CPU; ~2.5x faster,
                ~1 point less accurate).
            max_length: Token limit per text.

        Raises:
            ModelError: What is wrong, naming the directory, and what to do.
        """
        path = Path(directory).expanduser()
        manifest = verify(path)
        labels = manifest["labels"]
        set_threads(threads)
        resolved = resolve_device("cpu" if quantize and device in (None, "auto") else device)
        head = _load_head(path, len(labels))
        try:
            tokenizer, transformer = load_transformer(str(path))
        except ModelError as exc:
            raise ModelError(f"{path}: the transformer or tokenizer does not load ({exc}); {_WHAT_TO_DO}") from exc
        hidden = int(getattr(transformer, "config").hidden_size)  # noqa: B009
        if head.weight.shape[1] != hidden:
            raise ModelError(f"{path}: head width {head.weight.shape[1]} != encoder width {hidden}; {_WHAT_TO_DO}")
        module = prepare_for_inference(PooledEncoder(transformer), resolved, quantize)
        info = {**manifest, "quantized": quantize}
        try:
            model = cls(
                tokenizer,
                module,
                head,
                info=info,
                device=resolved,
                encoder_id=_intent_fingerprint(manifest),
                max_length=max_length,
            )
        except (TypeError, ValueError) as exc:
            raise ModelError(f"{path}: the decision in {MANIFEST_FILE} is invalid ({exc}); {_WHAT_TO_DO}") from None
        if SCORER_FILE in manifest["files"]:
            model.scorer = _load_scorer(path, head, labels, model.out_of_scope_label)
        return model


def _load_scorer(path: Path, head: CosineHead, labels: list[str], out_of_scope_label: str) -> OpenSetScorer:
    weight = head.weight.detach().cpu().numpy()
    try:
        return OpenSetScorer.load(path, weight, float(head.scale.detach()), labels, out_of_scope_label)
    except (OSError, ValueError, KeyError) as exc:
        raise ModelError(f"{path}: {SCORER_FILE} is unreadable ({exc}); {_WHAT_TO_DO}") from None


def _intent_fingerprint(manifest: dict[str, Any]) -> str:
    return f"supportbot:{manifest['version']}@{str(manifest['files'][WEIGHTS_FILE])[:12]}"


def _replace_directory(staging: Path, target: Path) -> None:
    """Move `staging` to `target`; an existing `target` is moved aside first and deleted afterwards."""
    if not target.exists():
        os.replace(staging, target)
        return
    old = target.with_name(f".{target.name}.old-{uuid.uuid4().hex[:8]}")
    os.replace(target, old)
    try:
        os.replace(staging, target)
    except OSError:
        os.replace(old, target)
        raise
    shutil.rmtree(old, ignore_errors=True)


def verify(directory: str | os.PathLike[str]) -> dict[str, Any]:
    """Check a model directory without loading it (its `supportbot.json` and the sha256 of every file it lists);
    returns the manifest. `IntentModel.load` starts with this.

    Raises:
        ModelError: What is wrong, naming the directory, and what to do.
    """
    path = Path(directory).expanduser()
    manifest = _read_manifest(path)
    _verify_files(path, manifest["files"])
    return manifest


def _read_manifest(path: Path) -> dict[str, Any]:
    if not path.is_dir():
        raise ModelError(f"{path}: no such model directory; {_WHAT_TO_DO}")
    manifest_path = path / MANIFEST_FILE
    if not manifest_path.is_file():
        raise ModelError(f"{path}: {MANIFEST_FILE} is missing, so this is not a complete model; {_WHAT_TO_DO}")
    try:
        manifest = _read_json(manifest_path)
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise ModelError(f"{path}: {MANIFEST_FILE} is unreadable ({exc}); {_WHAT_TO_DO}") from None
    version = manifest.get("format_version")
    if version not in SUPPORTED_FORMAT_VERSIONS:
        raise ModelError(
            f"{path}: model format version {version!r} is not supported by this supportbot (supports "
            f"{sorted(SUPPORTED_FORMAT_VERSIONS)}); upgrade supportbot or {_WHAT_TO_DO}"
        )
    labels = manifest.get("labels")
    if not isinstance(labels, list) or len(labels) < 2 or not all(isinstance(x, str) and x for x in labels):
        raise ModelError(f"{path}: {MANIFEST_FILE} has no valid 'labels' list (2+ names); {_WHAT_TO_DO}")
    if len(set(labels)) != len(labels):
        duplicates = sorted({x for x in labels if labels.count(x) > 1})
        raise ModelError(f"{path}: duplicate labels {duplicates} in {MANIFEST_FILE}; {_WHAT_TO_DO}")
    threshold = manifest.get("threshold")
    if isinstance(threshold, bool) or not isinstance(threshold, int | float) or not np.isfinite(threshold):
        raise ModelError(f"{path}: {MANIFEST_FILE} has no valid 'threshold' (a number); {_WHAT_TO_DO}")
    files = manifest.get("files")
    if not isinstance(files, dict) or not isinstance(manifest.get("version"), str):
        raise ModelError(f"{path}: {MANIFEST_FILE} lacks 'files' or 'version'; {_WHAT_TO_DO}")
    missing = [name for name in _REQUIRED_FILES if name not in files]
    if missing:
        raise ModelError(f"{path}: {MANIFEST_FILE} does not list {missing}; {_WHAT_TO_DO}")
    return manifest


def _verify_files(path: Path, files: dict[str, Any]) -> None:
    for name, expected in files.items():
        file = path / str(name)
        if Path(str(name)).name != name or not file.is_file():
            raise ModelError(f"{path}: file {name!r} is missing; {_WHAT_TO_DO}")
        if sha256_file(file) != expected:
            raise ModelError(f"{path}: {name} is corrupted (sha256 mismatch); {_WHAT_TO_DO}")


def _load_head(path: Path, num_labels: int) -> CosineHead:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        tensors = load_file(str(path / HEAD_FILE))
        weight, scale = tensors["weight"], tensors["scale"]
    except (SafetensorError, OSError, KeyError) as exc:
        raise ModelError(f"{path}: {HEAD_FILE} is unreadable ({exc}); {_WHAT_TO_DO}") from None
    if weight.ndim != 2 or weight.shape[0] != num_labels:
        raise ModelError(
            f"{path}: the head has shape {tuple(weight.shape)} but there are {num_labels} labels; {_WHAT_TO_DO}"
        )
    return CosineHead(weight, scale=float(scale.reshape(-1)[0]), learn_scale=False)
