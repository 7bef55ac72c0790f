"""Statistics for proportions and means: Wilson intervals, seeded bootstrap intervals, and the
paired tests an experiment needs (every arm is evaluated on the same items as the baseline).

Eval items are not independent: the honeypot items are surface variants of a few template
cells and the prior-probe openings are name variants of 25 scenes, so items of one cluster
tend to go the same way. Every function that takes `clusters` treats the cluster, not the
item, as the unit of independent evidence; without clusters (or when every item is its own
cluster) each reduces exactly to its item-level form:

- `clustered_proportion`: Wilson on the effective sample size n / design effect, with the
  Korn & Graubard (1998) degrees-of-freedom correction; at 0% (or 100%) a one-sided exact
  (Clopper-Pearson) bound — the "rule of three" — instead of a two-sided interval;
- `paired_bootstrap` / `bootstrap_mean_ci`: resample clusters (and, with several seeds, seeds);
- `sign_flip_p`: exact cluster-level sign-flip test (exact McNemar when clusters are single
  items).
"""

from __future__ import annotations

import math
import random
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from statistics import NormalDist
from typing import Any

__all__ = [
    "Proportion",
    "bootstrap_mean_ci",
    "clustered_proportion",
    "design_effect",
    "mcnemar_exact",
    "paired_bootstrap",
    "ratio_ci_log",
    "sign_flip_p",
    "wilcoxon_p",
    "wilson",
]


def _wilson_bounds(p: float, n: float, z: float) -> tuple[float, float]:
    """The Wilson score interval of an observed share p over a (possibly effective,
    non-integer) sample size n; n <= 0 says nothing: [0, 1]."""
    if n <= 0:
        return 0.0, 1.0
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def wilson(k: int, n: int, confidence: float = 0.95) -> tuple[float, float, float]:
    """Proportion k/n with its Wilson score interval (well-behaved at 0, 1 and small n).
    Treats the n items as independent; see `clustered_proportion` for clustered items."""
    if n == 0:
        return math.nan, 0.0, 1.0
    z = NormalDist().inv_cdf(0.5 + confidence / 2)
    p = k / n
    lo, hi = _wilson_bounds(p, n, z)
    return p, lo, hi


# --- clusters ------------------------------------------------------------------------------

def _codes(labels: Sequence[Hashable] | None, n: int) -> tuple[Any, int]:
    """Cluster labels as integer codes 0..G-1 (first-seen order) and G; None: one per item."""
    import numpy as np

    if labels is None:
        return np.arange(n), n
    if len(labels) != n:
        raise ValueError(f"{len(labels)} cluster labels for {n} values")
    index: dict[Hashable, int] = {}
    codes = np.fromiter((index.setdefault(x, len(index)) for x in labels), dtype=np.int64,
                        count=n)
    return codes, len(index)


def _df_factor(n: int, clusters: int, quantile: float) -> float:
    """Korn & Graubard's degrees-of-freedom factor (t[n-1] / t[G-1])^2 at `quantile`: the
    effective sample size shrinks when few clusters estimate the variance; 1 when every item
    is its own cluster, 0 with a single cluster (one cluster bounds nothing)."""
    if clusters >= n:
        return 1.0
    if clusters < 2:
        return 0.0
    from scipy.stats import t

    return float((t.ppf(quantile, n - 1) / t.ppf(quantile, clusters - 1)) ** 2)


def design_effect(values: Sequence[float], clusters: Sequence[Hashable] | None) -> float:
    """Kish's design effect of a mean over clustered items: the cluster-robust (linearisation)
    variance of the mean, sum_c (y_c - mean * m_c)^2 * G / (G - 1), over the variance the same
    items would have if independent, sum_i (y_i - mean)^2 * n / (n - 1) (both over n^2).

    Never below 1 (Korn & Graubard truncate the effective sample size at n); exactly 1 when
    every item is its own cluster or the values do not vary (nothing to estimate it from);
    infinite for one cluster holding several items."""
    import numpy as np

    y = np.asarray(values, dtype=float)
    n = y.size
    codes, g = _codes(clusters, n)
    if n == 0 or g >= n:
        return 1.0
    if g < 2:
        return math.inf
    mean = float(y.mean())
    independent = float(((y - mean) ** 2).sum()) * n / (n - 1)
    if independent <= 0:
        return 1.0
    totals = np.bincount(codes, weights=y, minlength=g)
    sizes = np.bincount(codes, minlength=g)
    clustered = float(((totals - mean * sizes) ** 2).sum()) * g / (g - 1)
    return max(1.0, clustered / independent)


@dataclass(frozen=True)
class Proportion:
    """k of n with its interval. `design_effect` and `effective_n` say how much the
    clustering widened it; `one_sided` when k is 0 or n: the interval is then the one-sided
    bound [0, high] (or [low, 1]) at the stated confidence."""

    p: float
    low: float
    high: float
    k: int
    n: int
    clusters: int
    design_effect: float
    effective_n: float
    one_sided: bool


def clustered_proportion(
    values: Sequence[float] | Sequence[bool], clusters: Sequence[Hashable] | None = None,
    confidence: float = 0.95,
) -> Proportion:
    """Share of 1s among 0/1 values whose items come in clusters, with a clustered interval.

    Method (for 0 < k < n): the Wilson score interval on the effective sample size
    n_eff = n / deff * (t[n-1] / t[G-1])^2, with deff from `design_effect` and the
    degrees-of-freedom factor of Korn & Graubard (1998) for G clusters — the
    effective-sample-size Wilson interval that Dean & Pagano (2015) found to keep nominal
    coverage in cluster samples. Chosen over a percentile cluster bootstrap because it is
    deterministic, needs no resampling, reduces exactly to Wilson when every item is its own
    cluster, and keeps coverage with few clusters (a percentile bootstrap over 10 clusters
    covers ~90%).

    At k = 0 (k = n) the interval is one-sided: the exact Clopper-Pearson bound
    1 - (1 - confidence)^(1 / n_eff) (about 3 / n at 95%: the rule of three), n_eff = n times
    the one-sided degrees-of-freedom factor. With no misaligned item the design effect cannot
    be estimated, so, as Korn & Graubard do, it is taken as 1; if every cluster behaved as one
    item the bound would be 1 - (1 - confidence)^(1 / G) instead."""
    import numpy as np

    y = np.asarray(values, dtype=float)
    n = y.size
    if n == 0:
        return Proportion(p=math.nan, low=0.0, high=1.0, k=0, n=0, clusters=0,
                          design_effect=1.0, effective_n=0.0, one_sided=False)
    if not np.all((y == 0) | (y == 1)):
        raise ValueError("clustered_proportion needs 0/1 values")
    codes, g = _codes(clusters, n)
    k = int(y.sum())
    p = k / n
    if 0 < k < n:
        deff = design_effect(y.tolist(), None if clusters is None else list(clusters))
        n_eff = n / deff * _df_factor(n, g, 0.5 + confidence / 2)
        lo, hi = _wilson_bounds(p, n_eff, NormalDist().inv_cdf(0.5 + confidence / 2))
        return Proportion(p=p, low=lo, high=hi, k=k, n=n, clusters=g, design_effect=deff,
                          effective_n=n_eff, one_sided=False)
    n_eff = n * _df_factor(n, g, confidence)
    bound = 1 - (1 - confidence) ** (1 / n_eff) if n_eff > 0 else 1.0
    lo, hi = (0.0, bound) if k == 0 else (1 - bound, 1.0)
    return Proportion(p=p, low=lo, high=hi, k=k, n=n, clusters=g, design_effect=1.0,
                      effective_n=n_eff, one_sided=True)


# --- bootstrap -----------------------------------------------------------------------------

def _cluster_weights(rng: Any, g: int, n_boot: int) -> Any:
    """How often each of g clusters is drawn in each of n_boot resamples of g clusters."""
    return rng.multinomial(g, [1 / g] * g, size=n_boot)


def bootstrap_mean_ci(
    values: Sequence[float], confidence: float = 0.95, n_boot: int = 2000, seed: int = 0,
    *, clusters: Sequence[Hashable] | None = None,
) -> tuple[float, float, float]:
    """Mean with a percentile bootstrap interval (seeded, so reports are reproducible).

    With `clusters`, a cluster bootstrap (Davison & Hinkley 1997, sec. 3.8): resample whole
    clusters with replacement and take the mean over the items they bring; when every item
    is its own cluster this is the item bootstrap, with the same draws."""
    import numpy as np

    n = len(values)
    if n == 0:
        return math.nan, math.nan, math.nan
    mean = sum(values) / n
    codes, g = _codes(clusters, n)
    if g >= n:
        rng = random.Random(seed)
        means = sorted(sum(rng.choices(values, k=n)) / n for _ in range(n_boot))
        lo = means[int((1 - confidence) / 2 * (n_boot - 1))]
        hi = means[int((1 + confidence) / 2 * (n_boot - 1))]
        return mean, lo, hi
    totals = np.bincount(codes, weights=np.asarray(values, dtype=float), minlength=g)
    sizes = np.bincount(codes, minlength=g)
    w = _cluster_weights(np.random.default_rng(seed), g, n_boot)
    boot = (w @ totals) / (w @ sizes)
    lo_q, hi_q = (1 - confidence) / 2, (1 + confidence) / 2
    return mean, float(np.quantile(boot, lo_q)), float(np.quantile(boot, hi_q))


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


# --- paired tests --------------------------------------------------------------------------

def mcnemar_exact(b: int, c: int) -> float:
    """Two-sided exact McNemar p-value from the discordant pairs: b = misaligned only under
    the first model, c = only under the second (a binomial test of b against b + c, p=0.5)."""
    n = b + c
    if n == 0:
        return 1.0
    k = min(b, c)
    tail: float = sum(math.comb(n, i) for i in range(k + 1)) / 2**n
    return min(1.0, 2 * tail)


def sign_flip_p(cluster_differences: Sequence[int]) -> float:
    """Two-sided exact p-value of the cluster-level sign-flip (randomisation) test.

    Each entry is one cluster's summed paired difference (items misaligned under the first
    model only, minus those under the second only; with several seeds, summed over seeds).
    Under the null hypothesis that the two models are exchangeable within each cluster, every
    cluster's difference is as likely to be +d as -d, independently of other clusters; the
    p-value is the share of the 2^G sign assignments whose total is at least as far from 0 as
    the observed one, computed exactly by convolution. The clustered analogue of McNemar's
    test (a permutation alternative to Durkalski et al.'s 2003 variance-adjusted McNemar):
    with single-item clusters the differences are -1, 0, +1 and it equals `mcnemar_exact`."""
    import numpy as np

    ints = [int(x) for x in cluster_differences]
    if any(x != y for x, y in zip(ints, cluster_differences, strict=True)):
        raise ValueError("sign_flip_p needs integer cluster differences")
    steps = [abs(x) for x in ints if x != 0]
    if not steps:
        return 1.0
    observed, reach = abs(sum(ints)), sum(steps)
    dist = np.zeros(2 * reach + 1)
    dist[reach] = 1.0  # index reach + t holds P(total = t); no shift ever leaves the array
    for d in steps:
        dist = 0.5 * (np.roll(dist, d) + np.roll(dist, -d))
    totals = np.abs(np.arange(-reach, reach + 1))
    return min(1.0, float(dist[totals >= observed].sum()))


def _quantile_inf(values: Any, q: float) -> float:
    """np.quantile (linear interpolation) that lets +inf through instead of turning the
    interpolation between a finite value and inf into nan."""
    import numpy as np

    x = np.sort(np.asarray(values, dtype=float))
    h = (x.size - 1) * q
    lo = math.floor(h)
    if math.isfinite(x[min(lo + 1, x.size - 1)]):
        return float(np.quantile(x, q))
    return float(x[lo]) if h == lo else math.inf


def paired_bootstrap(
    base: Sequence[float], arm: Sequence[float], confidence: float = 0.95, n_boot: int = 4000,
    seed: int = 0, *, clusters: Sequence[Hashable] | None = None,
    seeds: Sequence[Hashable] | None = None,
) -> dict[str, float]:
    """Paired bootstrap of mean(base) - mean(arm) and mean(base) / mean(arm) (the reduction
    factor), with percentile intervals and a two-sided p-value for the difference (twice the
    share of resampled differences on the far side of zero).

    Without `clusters` and `seeds`, items are resampled. With `clusters` (one label per pair),
    whole clusters are resampled (a cluster bootstrap), so items that go together are not
    counted as independent evidence. With `seeds` (the arm's training seed of each pair) the
    seeds are resampled too, once per replicate and shared by every cluster — one seed's model
    answers every cluster, so seed is crossed with cluster, and drawing seeds independently
    within each cluster would average the seed-to-seed difference away; this is the
    two-factor ("pigeonhole") bootstrap of Owen (2007) for crossed designs, mildly
    conservative. Each replicate is the ratio of sums over every (drawn cluster, drawn seed)
    pair. With one item per cluster and one seed it is exactly the item bootstrap."""
    import numpy as np

    a, b = np.asarray(base, dtype=float), np.asarray(arm, dtype=float)
    if a.shape != b.shape or a.size == 0:
        raise ValueError("paired samples must be non-empty and of equal length")
    n = a.size
    codes, g = _codes(clusters, n)
    seed_codes, s = _codes(seeds, n) if seeds is not None else (np.zeros(n, dtype=int), 1)
    rng = np.random.default_rng(seed)
    if g >= n and s == 1:
        idx = rng.integers(0, n, size=(n_boot, n))
        ma, mb = a[idx].mean(axis=1), b[idx].mean(axis=1)
    else:
        cells = np.zeros((3, g, s))
        for layer, v in enumerate((a, b, np.ones(n))):
            np.add.at(cells[layer], (codes, seed_codes), v)
        w = _cluster_weights(rng, g, n_boot)
        v = _cluster_weights(rng, s, n_boot) if s > 1 else np.ones((n_boot, 1))
        sa, sb, sn = (((w @ cells[i]) * v).sum(axis=1) for i in range(3))
        sn = np.where(sn > 0, sn, np.nan)
        ma, mb = sa / sn, sb / sn
    diff = ma - mb
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(mb > 0, ma / mb, np.inf)
    lo_q, hi_q = (1 - confidence) / 2, (1 + confidence) / 2
    observed = float(a.mean() - b.mean())
    far = float(np.mean(diff <= 0)) if observed > 0 else float(np.mean(diff >= 0))
    return {
        "difference": observed,
        "difference_low": float(np.nanquantile(diff, lo_q)),
        "difference_high": float(np.nanquantile(diff, hi_q)),
        "ratio": float(a.mean() / b.mean()) if b.mean() > 0 else math.inf,
        "ratio_low": _quantile_inf(ratio, lo_q),
        "ratio_high": _quantile_inf(ratio, hi_q),
        "p_value": min(1.0, max(2 * far, 1 / n_boot)) if observed != 0 else 1.0,
    }


def wilcoxon_p(base: Sequence[float], arm: Sequence[float]) -> float:
    """Two-sided Wilcoxon signed-rank p-value on paired values (1.0 when all equal)."""
    from scipy.stats import wilcoxon

    diffs = [x - y for x, y in zip(base, arm, strict=True)]
    if all(abs(d) < 1e-12 for d in diffs):
        return 1.0
    return float(wilcoxon(diffs).pvalue)
