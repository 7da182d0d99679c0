"""Intent discovery: group the questions the bot could not answer into candidate new intents.

Pure functions over embeddings (no database, no Slack): `bot.curation` hands in the logged hand-offs and
low-confidence questions with the production encoder's embeddings, and posts what comes back as proposals.

How a proposal is made:

1. The embeddings are L2-normalised, so euclidean distance orders pairs as cosine distance does.
2. scikit-learn's HDBSCAN groups dense regions and leaves the rest as noise: out-of-scope questions are
   scattered, a missing intent is a dense region. `min_cluster_size` is the smallest group worth an agent's
   time. HDBSCAN cannot return a single cluster, so on a small log with one new topic among scattered
   questions it finds nothing; the default `method="hybrid"` therefore also groups HDBSCAN's noise with
   average-linkage agglomerative clustering cut at cosine distance `distance` (`"hdbscan"` and
   `"agglomerative"` run one of the two).
3. A cluster is kept if it is cohesive: the members' mean cosine similarity to their centroid is at least
   `min_cohesion`; members further than `max_spread` below that mean are dropped (stragglers that HDBSCAN
   attached at the edge).
4. Each proposal is named by its most typical questions: the members closest to the centroid, one per
   distinct text.

The defaults were chosen on HWU64 (ten intents withheld, `bench/bench_discovery.py --grid`: the most withheld
questions in >= 80 %-pure proposals; hybrid at distance 0.3 scores as HDBSCAN alone there, 0.613, and finds the
single topic of a small log) and measured on BANKING77 (BENCHMARKS.md, "Intent discovery").
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from storage.text import text_key

Method = Literal["hdbscan", "agglomerative", "hybrid"]


@dataclass(frozen=True)
class DiscoveryConfig:
    """How questions are grouped (see the module docstring).

    Args:
        method: "hybrid" (default: HDBSCAN, then agglomerative on its noise), "hdbscan" or "agglomerative".
        min_cluster_size: the smallest group proposed.
        min_samples: HDBSCAN's density parameter (None: `min_cluster_size`); larger is more conservative.
        distance: agglomerative (and hybrid): the cosine distance at which the average-linkage tree is cut.
        min_cohesion: a group's members must have at least this mean cosine similarity to their centroid.
        max_spread: members whose similarity to the centroid is this far below the group's mean are dropped.
        typical: how many typical questions name a proposal.
    """

    method: Method = "hybrid"
    min_cluster_size: int = 5
    min_samples: int | None = 3
    distance: float = 0.3
    min_cohesion: float = 0.6
    max_spread: float = 0.4
    typical: int = 5

    def __post_init__(self) -> None:
        if self.method not in ("hdbscan", "agglomerative", "hybrid"):
            raise ValueError(f"discovery method must be 'hdbscan', 'agglomerative' or 'hybrid' (got {self.method!r})")
        if self.min_cluster_size < 2:
            raise ValueError(f"min_cluster_size must be >= 2 (got {self.min_cluster_size})")
        if self.min_samples is not None and self.min_samples < 1:
            raise ValueError(f"min_samples must be >= 1 or None (got {self.min_samples})")
        if not 0.0 < self.distance < 2.0:
            raise ValueError(f"distance must be in (0, 2) (got {self.distance})")
        if not -1.0 <= self.min_cohesion <= 1.0:
            raise ValueError(f"min_cohesion must be in [-1, 1] (got {self.min_cohesion})")
        if self.max_spread <= 0:
            raise ValueError(f"max_spread must be > 0 (got {self.max_spread})")
        if self.typical < 1:
            raise ValueError(f"typical must be >= 1 (got {self.typical})")


@dataclass(frozen=True)
class Cluster:
    """A group of similar unanswered questions: a candidate new intent.

    Attributes:
        members: indices into the texts given to `discover`, most typical first.
        typical: the most typical distinct questions (the proposal's name), most typical first.
        cohesion: the members' mean cosine similarity to their centroid.
    """

    members: tuple[int, ...]
    typical: tuple[str, ...]
    cohesion: float

    @property
    def size(self) -> int:
        return len(self.members)


def discover(texts: Sequence[str], embeddings: np.ndarray, config: DiscoveryConfig | None = None) -> list[Cluster]:
    """Group `texts` (one row of `embeddings` each) into candidate intents, largest first.

    Raises:
        ValueError: `embeddings` is not one row per text.
    """
    config = config or DiscoveryConfig()
    vectors = np.asarray(embeddings, dtype=np.float64)
    if vectors.ndim != 2 or vectors.shape[0] != len(texts):
        raise ValueError(f"need one embedding row per text: {len(texts)} texts, embeddings of shape {vectors.shape}")
    if len(texts) < config.min_cluster_size:
        return []
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    vectors = vectors / np.where(norms > 0, norms, 1.0)
    labels = _labels(vectors, config)
    clusters = []
    for label in sorted(set(labels.tolist()) - {-1}):
        cluster = _cluster(np.flatnonzero(labels == label), texts, vectors, config)
        if cluster is not None:
            clusters.append(cluster)
    return sorted(clusters, key=lambda c: (-c.size, -c.cohesion, c.members[0]))


def _labels(vectors: np.ndarray, config: DiscoveryConfig) -> np.ndarray:
    """One cluster label per row (-1: noise)."""
    if config.method == "agglomerative":
        return _agglomerative(vectors, config)
    labels = _hdbscan(vectors, config)
    if config.method == "hybrid":
        noise = np.flatnonzero(labels == -1)
        if len(noise) >= config.min_cluster_size:
            more = _agglomerative(vectors[noise], config)
            labels[noise] = np.where(more >= 0, more + labels.max() + 1, -1)
    return labels


def _hdbscan(vectors: np.ndarray, config: DiscoveryConfig) -> np.ndarray:
    from sklearn.cluster import HDBSCAN

    model = HDBSCAN(min_cluster_size=config.min_cluster_size, min_samples=config.min_samples, copy=True)
    return np.asarray(model.fit_predict(vectors))


def _agglomerative(vectors: np.ndarray, config: DiscoveryConfig) -> np.ndarray:
    """Average-linkage groups cut at cosine distance `config.distance`; groups below the minimum size are noise."""
    if len(vectors) < 2:
        return np.full(len(vectors), -1)
    from sklearn.cluster import AgglomerativeClustering

    model = AgglomerativeClustering(
        n_clusters=None, distance_threshold=config.distance, metric="cosine", linkage="average"
    )
    labels = np.asarray(model.fit_predict(vectors))
    sizes = np.bincount(labels)
    return np.where(sizes[labels] >= config.min_cluster_size, labels, -1)


def _cluster(index: np.ndarray, texts: Sequence[str], vectors: np.ndarray, config: DiscoveryConfig) -> Cluster | None:
    """The group of rows `index`, trimmed of stragglers; None when too small or not cohesive."""
    for _ in range(2):  # trim against the centroid, then against the trimmed group's centroid
        centroid = vectors[index].mean(axis=0)
        centroid /= max(float(np.linalg.norm(centroid)), 1e-12)
        similarity = vectors[index] @ centroid
        keep = similarity >= similarity.mean() - config.max_spread
        index, similarity = index[keep], similarity[keep]
    if len(index) < config.min_cluster_size or float(similarity.mean()) < config.min_cohesion:
        return None
    order = index[np.argsort(-similarity, kind="stable")]
    typical: list[str] = []
    seen: set[str] = set()
    for row in order:
        key = text_key(texts[row])
        if key not in seen:
            seen.add(key)
            typical.append(texts[row])
        if len(typical) == config.typical:
            break
    return Cluster(members=tuple(int(i) for i in order), typical=tuple(typical), cohesion=float(similarity.mean()))
