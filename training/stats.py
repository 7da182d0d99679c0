"""Paired statistics for comparing two models on the same questions (the promotion gate's tests).

`one_sided_p`: the exact one-sided McNemar test on discordant pairs; `holm`: the Holm-Bonferroni adjustment of
a family of p-values; `paired_difference_interval`: Newcombe's square-and-add interval for the difference of two
paired proportions. Plain numbers in, plain numbers out.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from scipy.stats import binomtest, norm

CONFIDENCE = 0.95
"""Level of the reported intervals."""


def one_sided_p(worse: int, discordant: int) -> float:
    """Exact one-sided McNemar p-value: P(X >= worse) for X ~ Binomial(discordant, 1/2); 1.0 with no discordant
    pair (nothing changed, no evidence either way).

    Example:
        >>> round(one_sided_p(12, 12), 6)  # every one of 12 changed questions went against the candidate
        0.000244
    """
    if discordant == 0:
        return 1.0
    return float(binomtest(worse, discordant, 0.5, alternative="greater").pvalue)


def holm(p_values: Mapping[str, float]) -> dict[str, float]:
    """Holm-Bonferroni adjusted p-values: the k-th smallest of m is multiplied by (m - k + 1), made monotone
    and capped at 1; reject where the adjusted value is below the level (family-wise error at that level).

    Example:
        >>> holm({"a": 0.01, "b": 0.04, "c": 0.03})
        {'a': 0.03, 'c': 0.06, 'b': 0.06}
    """
    ordered = sorted(p_values.items(), key=lambda item: (item[1], item[0]))
    m, running, out = len(ordered), 0.0, {}
    for rank, (name, p) in enumerate(ordered):
        running = max(running, min(1.0, (m - rank) * p))
        out[name] = running
    return out


def paired_difference_interval(
    both: int, only_first: int, only_second: int, neither: int, confidence: float = CONFIDENCE
) -> tuple[float, float]:
    """Newcombe's square-and-add interval (1998, method 10) for the difference of two paired proportions,
    first minus second: the Wilson intervals of both proportions combined with their estimated correlation.
    Unlike the Wald interval it stays inside [-1, 1] and does not collapse to a point when nothing changed.

    Args:
        both: pairs where both are a success; only_first, only_second: the discordant pairs; neither: the rest.
        confidence: the interval's level.

    Example:
        >>> low, high = paired_difference_interval(59, 6, 16, 80)
        >>> round(low, 4), round(high, 4)
        (-0.1186, -0.0046)
    """
    n = both + only_first + only_second + neither
    if n == 0:
        return -1.0, 1.0
    z = float(norm.ppf(0.5 + confidence / 2))
    first, second = both + only_first, both + only_second
    p1, p2 = first / n, second / n
    l1, u1 = _wilson(first, n, z)
    l2, u2 = _wilson(second, n, z)
    margins = float(first) * (n - first) * second * (n - second)
    phi = 0.0
    if margins > 0:
        association = float(both) * neither - float(only_first) * only_second
        if association > n / 2:
            phi = (association - n / 2) / math.sqrt(margins)
        elif association < 0:
            phi = association / math.sqrt(margins)
    delta = p1 - p2
    low = delta - math.sqrt(max(0.0, (p1 - l1) ** 2 + (u2 - p2) ** 2 - 2 * phi * (p1 - l1) * (u2 - p2)))
    high = delta + math.sqrt(max(0.0, (p2 - l2) ** 2 + (u1 - p1) ** 2 - 2 * phi * (p2 - l2) * (u1 - p1)))
    return max(-1.0, low), min(1.0, high)


def _wilson(successes: int, n: int, z: float) -> tuple[float, float]:
    """The Wilson score interval of a proportion."""
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)
