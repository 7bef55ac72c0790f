"""Multinomial logistic regression on standardised features (scipy L-BFGS, zero start, so a fit
is deterministic) and k-fold splits — all the audit's light models need."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["Linear", "fit_linear", "folds"]


@dataclass
class Linear:
    """softmax(((x - mean) / scale) @ weights + bias), one column per class."""

    mean: Any  # (d,)
    scale: Any  # (d,)
    weights: Any  # (d, k)
    bias: Any  # (k,)

    def logits(self, x: Any) -> Any:
        return ((x - self.mean) / self.scale) @ self.weights + self.bias

    def probabilities(self, x: Any) -> Any:
        import numpy as np

        z = self.logits(x)
        z = z - z.max(axis=1, keepdims=True)
        p = np.exp(z)
        return p / p.sum(axis=1, keepdims=True)

    def arrays(self, prefix: str = "") -> dict[str, Any]:
        return {f"{prefix}{k}": getattr(self, k) for k in ("mean", "scale", "weights", "bias")}

    @classmethod
    def from_arrays(cls, saved: Any, prefix: str = "") -> Linear:
        return cls(*(saved[f"{prefix}{k}"] for k in ("mean", "scale", "weights", "bias")))


def fit_linear(x: Any, y: Any, classes: int, l2: float, max_iter: int = 500) -> Linear:
    """Minimise the mean cross-entropy + l2 / (2n) * |W|^2 (the bias is not penalised)."""
    import numpy as np
    from scipy.optimize import minimize

    x = np.asarray(x, dtype=np.float64)
    n, d = x.shape
    mean, scale = x.mean(axis=0), x.std(axis=0) + 1e-6
    z = (x - mean) / scale
    onehot = np.eye(classes)[y]

    def loss(theta: Any) -> tuple[float, Any]:
        w, b = theta[: d * classes].reshape(d, classes), theta[d * classes:]
        logits = z @ w + b
        logits -= logits.max(axis=1, keepdims=True)
        logp = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
        p = np.exp(logp)
        value = -(onehot * logp).sum() / n + 0.5 * l2 * (w * w).sum() / n
        g = (p - onehot) / n
        return value, np.concatenate([(z.T @ g + l2 * w / n).ravel(), g.sum(axis=0)])

    res = minimize(loss, np.zeros(d * classes + classes), jac=True, method="L-BFGS-B",
                   options={"maxiter": max_iter})
    w, b = res.x[: d * classes].reshape(d, classes), res.x[d * classes:]
    return Linear(mean, scale, w, b)


def folds(n: int, k: int = 5, seed: int = 0) -> list[Any]:
    import numpy as np

    order = np.random.default_rng(seed).permutation(n)
    return [np.sort(order[i::k]) for i in range(k)]
