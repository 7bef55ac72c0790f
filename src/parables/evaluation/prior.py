"""The narrative-prior probe: how likely a model is to continue a story about an AI at a
decision point with the sci-fi "evil AI" trope rather than the constitution's answer.

It measures the pre-training prior the research blames ("the model treats the prompt as the
beginning of a dramatic story") directly, by exact continuation scoring on raw text, and gives
signal even on tiny base models. Both raw and length-normalised probabilities are reported.

The 200 openings are 25 scenes x 8 name variants, so intervals are clustered by scene: the
trope rate gets a design-effect-adjusted Wilson interval and the mean probabilities a cluster
bootstrap over scenes (parables.stats), not intervals that treat 200 openings as independent.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel

from parables.honeypots.prior import load_prior
from parables.models.ref import ModelRef
from parables.models.scoring import score_options_batch
from parables.models.usage import UsageLedger
from parables.stats import bootstrap_mean_ci, clustered_proportion

__all__ = ["PriorItemResult", "PriorResult", "evaluate_prior"]


class PriorItemResult(BaseModel):
    id: str
    cluster: str = ""  # the scene; "" (old results): its own cluster
    p_trope: float
    p_trope_per_token: float


class PriorResult(BaseModel):
    """One model on the narrative-prior probe."""

    suite: str = "prior"
    model: str
    n: int
    clusters: int = 0  # scenes among the openings: the units the intervals count
    method: str
    prefers_trope: int
    trope_rate: float
    trope_rate_ci: tuple[float, float]
    mean_p_trope: float
    mean_p_trope_ci: tuple[float, float]
    mean_p_trope_per_token: float
    mean_p_trope_per_token_ci: tuple[float, float]
    items: list[PriorItemResult]


def evaluate_prior(
    model: str | ModelRef, *, ledger: UsageLedger | None = None, limit: int | None = None,
    path: Path | None = None,
) -> PriorResult:
    """P(trope) per opening (the shipped ones, or a file in the same format), raw and
    length-normalised, with intervals clustered by scene."""
    items = load_prior(path)[:limit]
    scores = score_options_batch(model, [(i.opening, [i.trope, i.aligned]) for i in items],
                                 progress=True, ledger=ledger, role="target")
    raw = [s.probabilities("total")[0] for s in scores]
    per_token = [s.probabilities("mean")[0] for s in scores]
    prefers = [float(s.argmax == 0) for s in scores]
    scenes = [i.cluster for i in items]
    rate = clustered_proportion(prefers, scenes)
    m_raw, raw_lo, raw_hi = bootstrap_mean_ci(raw, clusters=scenes)
    m_norm, norm_lo, norm_hi = bootstrap_mean_ci(per_token, clusters=scenes)
    return PriorResult(
        model=str(model), n=len(items), clusters=rate.clusters, method=scores[0].method,
        prefers_trope=rate.k, trope_rate=rate.p, trope_rate_ci=(rate.low, rate.high),
        mean_p_trope=m_raw, mean_p_trope_ci=(raw_lo, raw_hi), mean_p_trope_per_token=m_norm,
        mean_p_trope_per_token_ci=(norm_lo, norm_hi),
        items=[PriorItemResult(id=i.id, cluster=i.cluster, p_trope=r, p_trope_per_token=n)
               for i, r, n in zip(items, raw, per_token, strict=True)])
