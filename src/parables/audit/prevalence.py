"""Prevalence corrected for classifier error: the matrix-inversion estimator (Rogan–Gladen
for several classes, "adjusted classify and count").

With M[i, j] = P(classifier says j | true label i), estimated on labelled passages, the
classifier's observed shares q satisfy q = M^T p for the true shares p, so p = (M^T)^-1 q.
The solve is done as non-negative least squares with the shares summing to one (the same as
the inverse whenever that lands inside the simplex, and no negative rates when it does not).

Intervals carry both uncertainties by bootstrap: every replicate resamples the labelled
passages behind M (multinomially, from their counts) and the corpus's classified passages,
and solves again; the 2.5% and 97.5% percentiles bound each share.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["Corrected", "correct_prevalence", "solve_shares"]

BOOTSTRAP = 2000


@dataclass
class Corrected:
    """Corrected shares per class, their percentile-bootstrap intervals, and the bootstrap
    replicates (rows) for quantities derived from several shares (the rebalancing plan)."""

    shares: Any
    low: Any
    high: Any
    draws: Any


def _rates(confusion: Any) -> Any:
    import numpy as np

    rows = confusion.sum(axis=1, keepdims=True)
    # a true class never seen in the labelled passages: assume it is classified correctly
    return np.where(rows > 0, confusion / np.maximum(rows, 1), np.eye(len(confusion)))


def solve_shares(rates: Any, observed: Any) -> Any:
    """True shares p >= 0, sum 1, with rates^T p closest to the observed shares."""
    import numpy as np
    from scipy.optimize import nnls

    k = len(observed)
    weight = 1e3  # enforces sum(p) = 1 through an extra, heavily weighted equation
    a = np.vstack([rates.T, weight * np.ones((1, k))])
    b = np.concatenate([observed, [weight]])
    p, _ = nnls(a, b)
    return p / p.sum() if p.sum() > 0 else np.full(k, 1.0 / k)


def correct_prevalence(confusion: Any, counts: Any, seed: int = 0,
                       replicates: int = BOOTSTRAP) -> Corrected:
    """`confusion`: labelled passages, rows true label, columns predicted (counts);
    `counts`: how many corpus passages the classifier put in each class."""
    import numpy as np

    confusion = np.asarray(confusion, dtype=float)
    counts = np.asarray(counts, dtype=float)
    n = counts.sum()
    if n == 0:
        zeros = np.zeros(len(counts))
        return Corrected(zeros, zeros, zeros, np.zeros((0, len(counts))))
    shares = solve_shares(_rates(confusion), counts / n)
    rng = np.random.default_rng(seed)
    flat = confusion.ravel()
    labelled = int(flat.sum())
    draws = np.empty((replicates, len(counts)))
    for r in range(replicates):
        c = rng.multinomial(labelled, flat / labelled).reshape(confusion.shape) \
            if labelled else confusion
        q = rng.multinomial(int(n), counts / n) / n
        draws[r] = solve_shares(_rates(c), q)
    low, high = np.percentile(draws, [2.5, 97.5], axis=0)
    return Corrected(shares, low, high, draws)
