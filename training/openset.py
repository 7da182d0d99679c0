"""Out-of-scope scores of a fine-tuned intent model, every one computed from the question's embedding.

The cosine head gives `logits = scale * cos(embedding, class weight)`, so one embedding yields all of them:

- `msp`: the maximum in-scope softmax probability (the classic score);
- `margin`: the top in-scope probability minus the second;
- `energy`: `logsumexp` of the in-scope logits (free energy with temperature 1, sign flipped);
- `cosine`: the cosine to the closest class weight;
- `knn`: the mean cosine to the `knn_k` nearest training examples (FAISS, exact inner product) in the
  fine-tuned embedding space;
- `mahalanobis`: minus the smallest Mahalanobis distance to a class mean (shared Ledoit-Wolf covariance);
- `combined`: a logistic model on the six above, fitted on calibration data to predict "answering from the
  top intent is right"; its output is a probability. Its inputs are the six scores as conformal p-values: the
  share of the model's own in-scope validation questions scoring at most as high. That makes them comparable
  between models (the calibration twin's unknown-intent questions are ranked against the twin's in-scope
  questions, the real model's against its own), so the logistic model learns what is unusual, not which
  model scored a row.

Higher always means "more answerable". A question whose top class is the out-of-scope class (when the model
has one) scores `-inf` on every score: it is never answered. Every score can be computed with some classes
hidden (`known`), which is how leave-intents-out calibration simulates questions of intents the model never saw.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

SCORES = ("msp", "margin", "energy", "cosine", "knn", "mahalanobis", "combined")
"""Every out-of-scope score, by name."""
FEATURES = SCORES[:-1]
"""The scores the combined score is fitted on."""
DEFAULT_SCORE = "msp"
SCORER_FILE = "openset.npz"
KNN_K = 5
MAX_BANK = 60_000
"""Most training embeddings kept for the kNN score (a random subsample beyond)."""


@dataclass(frozen=True)
class QuestionScores:
    """The scores of a batch of questions (one value per row for each name in `SCORES`).

    Attributes:
        top: Index of the top class per row (the out-of-scope class included).
        second: Index of the second in-scope class per row (-1 when there is none).
        values: Score name -> float array.
        features: The combined score's inputs, (rows, len(FEATURES)): the `FEATURES` as p-values against the
            scoring model's in-scope reference (raw values while it has none).
    """

    top: np.ndarray
    second: np.ndarray
    values: dict[str, np.ndarray]
    features: np.ndarray

    def __len__(self) -> int:
        return len(self.top)

    def subset(self, rows: np.ndarray) -> QuestionScores:
        """The scores of some rows (an index or boolean array)."""
        return QuestionScores(
            self.top[rows], self.second[rows], {k: v[rows] for k, v in self.values.items()}, self.features[rows]
        )

    @staticmethod
    def concat(parts: Sequence[QuestionScores]) -> QuestionScores:
        """The rows of several batches, in order."""
        return QuestionScores(
            np.concatenate([p.top for p in parts]),
            np.concatenate([p.second for p in parts]),
            {name: np.concatenate([p.values[name] for p in parts]) for name in parts[0].values},
            np.concatenate([p.features for p in parts]),
        )


@dataclass(frozen=True)
class Combiner:
    """Logistic regression over standardised features (plain arrays, saved without pickle)."""

    mean: np.ndarray
    std: np.ndarray
    coef: np.ndarray
    intercept: float

    def __call__(self, features: np.ndarray) -> np.ndarray:
        z = ((features - self.mean) / self.std) @ self.coef + self.intercept
        return np.asarray(1.0 / (1.0 + np.exp(-np.clip(z, -50, 50))), dtype=np.float64)

    @classmethod
    def fit(cls, features: np.ndarray, target: np.ndarray, weights: np.ndarray) -> Combiner:
        """Fit on rows of `features` (one column per name in `FEATURES`); `target` 1 = answering is right."""
        from sklearn.linear_model import LogisticRegression

        mean = features.mean(axis=0)
        std = features.std(axis=0)
        std = np.where(std > 1e-9, std, 1.0)
        if len(set(target.tolist())) < 2:
            coef = np.zeros(features.shape[1])
            coef[0] = 1.0  # degenerate data: fall back to the standardised max softmax
            return cls(mean, std, coef, 0.0)
        model = LogisticRegression(C=1.0, max_iter=1000)
        model.fit((features - mean) / std, target, sample_weight=weights / weights.mean())
        return cls(mean, std, model.coef_[0].astype(np.float64), float(model.intercept_[0]))


class OpenSetScorer:
    """Computes every out-of-scope score from embeddings; fitted once per model, saved in its directory.

    Args:
        weight: The cosine head's class vectors, shape (classes, dim) (normalised here).
        scale: The head's logit scale.
        labels: Class names in head order.
        out_of_scope_label: The label never answered (may be absent from `labels`).
        bank: Training embeddings for the kNN score, shape (n, dim), L2-normalised.
        bank_labels: Class index of each bank row.
        means: Class means of the training embeddings, shape (classes, dim).
        whitening: `L` with `L @ L.T` the shared precision matrix, shape (dim, dim).
        combiner: The fitted combined score; None until calibration fits it.
        knn_k: Neighbours averaged by the kNN score.
        reference: Sorted in-scope validation values of each of `FEATURES` (the p-values' reference); None
            until `set_reference`.
    """

    def __init__(
        self,
        weight: np.ndarray,
        scale: float,
        labels: Sequence[str],
        out_of_scope_label: str,
        *,
        bank: np.ndarray,
        bank_labels: np.ndarray,
        means: np.ndarray,
        whitening: np.ndarray,
        combiner: Combiner | None = None,
        knn_k: int = KNN_K,
        reference: np.ndarray | None = None,
    ) -> None:
        norms = np.linalg.norm(weight, axis=1, keepdims=True)
        self.weight = (weight / np.maximum(norms, 1e-12)).astype(np.float32)
        self.scale = float(scale)
        self.labels = list(labels)
        self.out_of_scope = self.labels.index(out_of_scope_label) if out_of_scope_label in self.labels else -1
        self.bank = np.ascontiguousarray(bank, dtype=np.float32)
        self.bank_labels = np.asarray(bank_labels, dtype=np.int64)
        self.means = np.asarray(means, dtype=np.float32)
        self.whitening = np.asarray(whitening, dtype=np.float32)
        self.combiner = combiner
        self.knn_k = int(knn_k)
        self.reference = reference
        self._white_means = self.means @ self.whitening
        self._white_norms = (self._white_means**2).sum(axis=1)
        self._index_cache: dict[bytes, Any] = {}

    # --- fitting -----------------------------------------------------------------------------------

    @classmethod
    def fit(
        cls,
        weight: np.ndarray,
        scale: float,
        labels: Sequence[str],
        out_of_scope_label: str,
        embeddings: np.ndarray,
        targets: np.ndarray,
        *,
        knn_k: int = KNN_K,
        max_bank: int = MAX_BANK,
        seed: int = 0,
    ) -> OpenSetScorer:
        """Fit the kNN bank, the class means and the shared covariance on the training embeddings.

        Args:
            embeddings: Training embeddings from the fine-tuned encoder, (n, dim).
            targets: Class index of each row (-1 rows are ignored).
        """
        from sklearn.covariance import LedoitWolf

        embeddings = np.asarray(embeddings, dtype=np.float32)
        targets = np.asarray(targets, dtype=np.int64)
        keep = targets >= 0
        embeddings, targets = embeddings[keep], targets[keep]
        oos = list(labels).index(out_of_scope_label) if out_of_scope_label in labels else -1
        in_scope = targets != oos
        if len(embeddings) > max_bank:
            rows = np.random.default_rng(seed).permutation(len(embeddings))[:max_bank]
            bank, bank_labels = embeddings[np.sort(rows)], targets[np.sort(rows)]
        else:
            bank, bank_labels = embeddings, targets
        bank = bank.astype(np.float16).astype(np.float32)  # as saved: calibration sees what serving will
        dim = embeddings.shape[1]
        means = np.zeros((len(labels), dim), dtype=np.float32)
        for index in range(len(labels)):
            rows = targets == index
            if rows.any():
                means[index] = embeddings[rows].mean(axis=0)
        centred = embeddings[in_scope] - means[targets[in_scope]]
        precision = LedoitWolf(assume_centered=True).fit(centred).precision_ if len(centred) > 2 else np.eye(dim)
        whitening = np.linalg.cholesky(0.5 * (precision + precision.T) + 1e-6 * np.eye(dim))
        return cls(
            weight,
            scale,
            labels,
            out_of_scope_label,
            bank=bank,
            bank_labels=bank_labels,
            means=means,
            whitening=whitening,
            knn_k=knn_k,
        )

    # --- scoring -----------------------------------------------------------------------------------

    def scores(
        self, embeddings: np.ndarray, known: np.ndarray | None = None, *, only: str | None = None
    ) -> QuestionScores:
        """Every score of each embedding; with `known` (bool per class), hidden classes do not exist.

        The `combined` score is present once a combiner is fitted (else it equals `msp`). `only` (a score
        name) skips the costly scores that one does not need (serving: the kNN search and the Mahalanobis
        distances are computed only for `knn`, `mahalanobis` and `combined`); `msp` and `margin` are always
        there, and skipped scores hold NaN.
        """
        emb = np.atleast_2d(np.asarray(embeddings, dtype=np.float32))
        classes = len(self.labels)
        visible = np.ones(classes, bool) if known is None else np.asarray(known, bool)
        in_scope = visible.copy()
        if self.out_of_scope >= 0:
            in_scope[self.out_of_scope] = False
        cos = (emb @ self.weight.T).astype(np.float64)
        logits = np.where(visible, self.scale * cos, -np.inf)
        shifted = logits - logits.max(axis=1, keepdims=True)
        exp = np.exp(shifted)
        probs = exp / exp.sum(axis=1, keepdims=True)
        top, first, second, second_p = _top_two(probs, in_scope)
        in_logits = np.where(in_scope, logits, -np.inf)
        peak = in_logits.max(axis=1, keepdims=True)
        values: dict[str, np.ndarray] = {
            "msp": first,
            "margin": first - np.maximum(second_p, 0.0),
            "energy": (peak[:, 0] + np.log(np.exp(in_logits - peak).sum(axis=1))),
            "cosine": np.where(in_scope, cos, -np.inf).max(axis=1),
        }
        everything = only is None or only == "combined"
        skipped = np.full(len(emb), np.nan)
        values["knn"] = self._knn(emb, in_scope) if everything or only == "knn" else skipped
        values["mahalanobis"] = self._mahalanobis(emb, in_scope) if everything or only == "mahalanobis" else skipped
        features = self._features(values) if everything else np.zeros((len(emb), len(FEATURES)))
        values["combined"] = (
            self.combiner(features) if self.combiner is not None and everything else values["msp"].copy()
        )
        if self.out_of_scope >= 0:
            never = top == self.out_of_scope
            for name in values:
                values[name] = np.where(never, -np.inf, values[name])
        return QuestionScores(top, second, values, features)

    def _features(self, values: Mapping[str, np.ndarray]) -> np.ndarray:
        raw = np.column_stack([np.nan_to_num(values[name], neginf=-1e6, posinf=1e6) for name in FEATURES])
        if self.reference is None:
            return raw
        ranks = [
            np.searchsorted(self.reference[i], raw[:, i], side="right") / (len(self.reference[i]) + 1)
            for i in range(len(FEATURES))
        ]
        return np.column_stack(ranks)

    def set_reference(self, in_scope: QuestionScores) -> None:
        """Rank future scores against these in-scope validation scores (the combined score's p-values)."""
        finite = np.isfinite(in_scope.values["msp"])
        if not finite.any():
            return
        self.reference = np.stack([np.sort(in_scope.values[name][finite]) for name in FEATURES])

    def _knn(self, emb: np.ndarray, in_scope: np.ndarray) -> np.ndarray:
        index = self._index(in_scope)
        if index is None:
            return np.zeros(len(emb))
        k = min(self.knn_k, index.ntotal)
        similarities, _ = index.search(np.ascontiguousarray(emb), k)
        return np.asarray(similarities.mean(axis=1), dtype=np.float64)

    def _index(self, in_scope: np.ndarray) -> Any:
        """A FAISS exact inner-product index over the bank rows of the visible in-scope classes (cached)."""
        key = np.packbits(in_scope).tobytes()
        if key not in self._index_cache:
            import faiss

            rows = self.bank[in_scope[self.bank_labels]] if len(self.bank) else self.bank
            if len(rows) == 0:
                return None
            index = faiss.IndexFlatIP(rows.shape[1])
            index.add(np.ascontiguousarray(rows))
            if len(self._index_cache) > 16:
                self._index_cache.clear()
            self._index_cache[key] = index
            return index
        return self._index_cache[key]

    def _mahalanobis(self, emb: np.ndarray, in_scope: np.ndarray) -> np.ndarray:
        white = (emb @ self.whitening).astype(np.float64)
        distances = (white**2).sum(axis=1, keepdims=True) - 2 * white @ self._white_means.T + self._white_norms
        return -np.where(in_scope, distances, np.inf).min(axis=1)

    def fit_combiner(self, scores: QuestionScores, target: np.ndarray, weights: np.ndarray) -> None:
        """Fit the combined score on calibration rows (`target` 1 = answering from the top intent is right)."""
        finite = np.isfinite(scores.values["msp"])
        self.combiner = Combiner.fit(
            scores.features[finite], np.asarray(target)[finite].astype(int), np.asarray(weights)[finite]
        )

    def out_of_fold(
        self, scores: QuestionScores, target: np.ndarray, weights: np.ndarray, *, folds: int = 5, seed: int = 0
    ) -> QuestionScores:
        """`scores` with `combined` values each predicted by a combiner fitted without that row's fold.

        The operating point is chosen on these, so its threshold reflects how the combined score does on
        questions it was not fitted on (an in-sample fit is optimistic on small calibration sets).
        """
        finite = np.isfinite(scores.values["msp"])
        combined = np.full(len(scores), -np.inf)
        fold_of = np.random.default_rng(seed).integers(0, folds, len(scores))
        target = np.asarray(target).astype(int)
        for fold in range(folds):
            fit, predict = finite & (fold_of != fold), finite & (fold_of == fold)
            if predict.any():
                combiner = Combiner.fit(scores.features[fit], target[fit], np.asarray(weights)[fit])
                combined[predict] = combiner(scores.features[predict])
        return QuestionScores(scores.top, scores.second, {**scores.values, "combined": combined}, scores.features)

    # --- persistence -------------------------------------------------------------------------------

    def save(self, directory: Path) -> Path:
        """Write `openset.npz` (bank in float16, means, whitening, combiner) into a model directory."""
        arrays: dict[str, Any] = {
            "bank": self.bank.astype(np.float16),
            "bank_labels": self.bank_labels.astype(np.int32),
            "means": self.means,
            "whitening": self.whitening,
            "knn_k": np.array(self.knn_k),
        }
        if self.reference is not None:
            arrays["reference"] = self.reference
        if self.combiner is not None:
            arrays |= {
                "combiner_mean": self.combiner.mean,
                "combiner_std": self.combiner.std,
                "combiner_coef": self.combiner.coef,
                "combiner_intercept": np.array(self.combiner.intercept),
            }
        path = Path(directory) / SCORER_FILE
        with path.open("wb") as handle:
            np.savez(handle, **arrays)
        return path

    @classmethod
    def load(
        cls, directory: Path, weight: np.ndarray, scale: float, labels: Sequence[str], out_of_scope_label: str
    ) -> OpenSetScorer:
        """Read `openset.npz` of a model directory (raises OSError / ValueError / KeyError when unreadable)."""
        with np.load(Path(directory) / SCORER_FILE, allow_pickle=False) as data:
            arrays: Mapping[str, np.ndarray] = {name: data[name] for name in data.files}
        combiner = None
        if "combiner_coef" in arrays:
            combiner = Combiner(
                arrays["combiner_mean"],
                arrays["combiner_std"],
                arrays["combiner_coef"],
                float(arrays["combiner_intercept"]),
            )
        return cls(
            weight,
            scale,
            labels,
            out_of_scope_label,
            bank=arrays["bank"].astype(np.float32),
            bank_labels=arrays["bank_labels"],
            means=arrays["means"],
            whitening=arrays["whitening"],
            combiner=combiner,
            knn_k=int(arrays["knn_k"]),
            reference=arrays.get("reference"),
        )


def scores_from_probs(probs: np.ndarray, labels: Sequence[str], out_of_scope_label: str) -> QuestionScores:
    """Max-softmax scores only (for a model saved without a scorer): every score name holds `msp`, except
    `margin`."""
    probs = np.atleast_2d(np.asarray(probs, dtype=np.float64))
    oos = list(labels).index(out_of_scope_label) if out_of_scope_label in labels else -1
    in_scope = np.arange(probs.shape[1]) != oos
    top, first, second, second_p = _top_two(probs, in_scope)
    msp = np.where(top == oos, -np.inf, first) if oos >= 0 else first
    values = {name: msp.copy() for name in SCORES}
    values["margin"] = np.where(np.isfinite(msp), first - np.maximum(second_p, 0.0), -np.inf)
    features = np.column_stack([np.nan_to_num(values[name], neginf=-1e6) for name in FEATURES])
    return QuestionScores(top, second, values, features)


def _top_two(probs: np.ndarray, in_scope: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(top class, best in-scope probability, second in-scope class or -1, its probability or 0) per row."""
    top = probs.argmax(axis=1)
    in_probs = np.where(in_scope, probs, -1.0)
    order = np.argsort(-in_probs, axis=1)[:, :2]
    first = np.take_along_axis(in_probs, order[:, :1], axis=1)[:, 0]
    if in_scope.sum() < 2:
        return top, first, np.full(len(probs), -1), np.zeros(len(probs))
    return top, first, order[:, 1], np.take_along_axis(in_probs, order[:, 1:2], axis=1)[:, 0]
