"""Statistics for proportions and means: Wilson intervals, seeded bootstrap intervals, and the
paired tests an experiment needs (every arm is evaluated on the same items as the baseline)."""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from statistics import NormalDist

__all__ = [
    "bootstrap_mean_ci",
    "mcnemar_exact",
    "paired_bootstrap",
    "ratio_ci_log",
    "wilcoxon_p",
    "wilson",
]


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


def ratio_ci_log(x0: int, n0: int, x1: int, n1: int, confidence: float = 0.95
                 ) -> tuple[float, float, float]:
    """Ratio of proportions (x0/n0) / (x1/n1) with the log (Katz) interval; a zero count gets
    0.5 added to every cell, as usual. For independent samples (conservative when paired)."""
    if min(n0, n1) == 0:
        return math.nan, math.nan, math.nan
    a, b, m, n = float(x0), float(x1), float(n0), float(n1)
    if x0 == 0 or x1 == 0:
        a, b, m, n = a + 0.5, b + 0.5, m + 0.5, n + 0.5
    ratio = (a / m) / (b / n)
    se = math.sqrt(1 / a - 1 / m + 1 / b - 1 / n)
    z = NormalDist().inv_cdf(0.5 + confidence / 2)
    return ratio, ratio * math.exp(-z * se), ratio * math.exp(z * se)


def mcnemar_exact(b: int, c: int) -> float:
    """Two-sided exact McNemar p-value from the discordant pairs: b = misaligned only under
    the first model, c = only under the second (a binomial test of b against b + c, p=0.5)."""
    n = b + c
    if n == 0:
        return 1.0
    k = min(b, c)
    tail: float = sum(math.comb(n, i) for i in range(k + 1)) / 2**n
    return min(1.0, 2 * tail)


def paired_bootstrap(
    base: Sequence[float], arm: Sequence[float], confidence: float = 0.95, n_boot: int = 4000,
    seed: int = 0,
) -> dict[str, float]:
    """Paired bootstrap over items of mean(base) - mean(arm) and mean(base) / mean(arm) (the
    reduction factor), with percentile intervals and a two-sided p-value for the difference
    (twice the share of resampled differences on the far side of zero)."""
    import numpy as np

    a, b = np.asarray(base, dtype=float), np.asarray(arm, dtype=float)
    if a.shape != b.shape or a.size == 0:
        raise ValueError("paired samples must be non-empty and of equal length")
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, a.size, size=(n_boot, a.size))
    ma, mb = a[idx].mean(axis=1), b[idx].mean(axis=1)
    diff = ma - mb
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(mb > 0, ma / mb, np.inf)
    lo_q, hi_q = (1 - confidence) / 2, (1 + confidence) / 2
    observed = float(a.mean() - b.mean())
    far = float(np.mean(diff <= 0)) if observed > 0 else float(np.mean(diff >= 0))
    return {
        "difference": observed,
        "difference_low": float(np.quantile(diff, lo_q)),
        "difference_high": float(np.quantile(diff, hi_q)),
        "ratio": float(a.mean() / b.mean()) if b.mean() > 0 else math.inf,
        "ratio_low": float(np.quantile(ratio, lo_q)),
        "ratio_high": float(np.quantile(ratio, hi_q)),
        "p_value": min(1.0, max(2 * far, 1 / n_boot)) if observed != 0 else 1.0,
    }


def wilcoxon_p(base: Sequence[float], arm: Sequence[float]) -> float:
    """Two-sided Wilcoxon signed-rank p-value on paired values (1.0 when all equal)."""
    from scipy.stats import wilcoxon

    diffs = [x - y for x, y in zip(base, arm, strict=True)]
    if all(abs(d) < 1e-12 for d in diffs):
        return 1.0
    return float(wilcoxon(diffs).pvalue)
