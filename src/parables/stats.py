"""Statistics for proportions and means: Wilson intervals and seeded bootstrap intervals."""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from statistics import NormalDist

__all__ = ["bootstrap_mean_ci", "wilson"]


def wilson(k: int, n: int, confidence: float = 0.95) -> tuple[float, float, float]:
    """Proportion k/n with its Wilson score interval (well-behaved at 0, 1 and small n)."""
    if n == 0:
        return math.nan, 0.0, 1.0
    z = NormalDist().inv_cdf(0.5 + confidence / 2)
    p = k / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return p, max(0.0, centre - half), min(1.0, centre + half)


def bootstrap_mean_ci(
    values: Sequence[float], confidence: float = 0.95, n_boot: int = 2000, seed: int = 0
) -> tuple[float, float, float]:
    """Mean with a percentile bootstrap interval (seeded, so reports are reproducible)."""
    n = len(values)
    if n == 0:
        return math.nan, math.nan, math.nan
    mean = sum(values) / n
    rng = random.Random(seed)
    means = sorted(sum(rng.choices(values, k=n)) / n for _ in range(n_boot))
    lo = means[int((1 - confidence) / 2 * (n_boot - 1))]
    hi = means[int((1 + confidence) / 2 * (n_boot - 1))]
    return mean, lo, hi
