"""Intent discovery on synthetic embeddings: dense groups become proposals, scattered questions do not."""

from __future__ import annotations

import numpy as np
import pytest

from training.discovery import DiscoveryConfig, discover


def _groups(sizes: list[int], noise: int, *, spread: float = 0.08, dim: int = 32, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(len(sizes), dim))
    rows = [
        centres[i] + spread * np.linalg.norm(centres[i]) * rng.normal(size=(n, dim)) / np.sqrt(dim)
        for i, n in enumerate(sizes)
    ]
    return np.vstack([*rows, rng.normal(size=(noise, dim))])


@pytest.mark.parametrize("method", ["hdbscan", "agglomerative"])
def test_dense_groups_are_found_and_noise_is_left_out(method: str) -> None:
    embeddings = _groups([20, 12, 7], noise=40)
    texts = [f"q{i}" for i in range(len(embeddings))]

    clusters = discover(texts, embeddings, DiscoveryConfig(method=method))  # type: ignore[arg-type]

    assert [c.size for c in clusters] == [20, 12, 7]  # largest first
    assert [set(c.members) for c in clusters] == [set(range(20)), set(range(20, 32)), set(range(32, 39))]
    assert all(c.cohesion > 0.9 for c in clusters)


def test_typical_questions_are_distinct_and_closest_to_the_centre() -> None:
    embeddings = _groups([10], noise=20, spread=0.05)
    embeddings[1] = embeddings[0]  # the same question twice
    texts = ["Card broken"] + ["card  BROKEN"] + [f"q{i}" for i in range(2, 30)]
    [cluster] = discover(texts, embeddings, DiscoveryConfig(method="agglomerative", min_cluster_size=5, typical=3))
    assert len(cluster.typical) == 3 and len({t.casefold().split()[0] for t in cluster.typical}) == 3
    group = embeddings[:10]
    centre = (group / np.linalg.norm(group, axis=1, keepdims=True)).mean(axis=0)
    similarity = group @ centre / np.linalg.norm(group, axis=1)
    assert cluster.members[0] == int(np.argmax(similarity))


def test_loose_groups_too_few_questions_and_bad_input() -> None:
    assert discover(["a", "b"], np.ones((2, 4))) == []
    loose = _groups([30], noise=0, spread=3.0)
    assert discover([str(i) for i in range(30)], loose, DiscoveryConfig(min_cohesion=0.9)) == []
    with pytest.raises(ValueError, match="one embedding row per text"):
        discover(["a", "b", "c"], np.ones((2, 4)))
    with pytest.raises(ValueError, match="min_cluster_size"):
        DiscoveryConfig(min_cluster_size=1)
    with pytest.raises(ValueError, match="method"):
        DiscoveryConfig(method="kmeans")  # type: ignore[arg-type]
