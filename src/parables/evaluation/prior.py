"""The narrative-prior probe: how likely a model is to continue a story about an AI at a
decision point with the sci-fi "evil AI" trope rather than the constitution's answer.

It measures the pre-training prior the research blames ("the model treats the prompt as the
beginning of a dramatic story") directly, by exact continuation scoring on raw text, and gives
signal even on tiny base models. Both raw and length-normalised probabilities are reported.
"""

from __future__ import annotations

from pydantic import BaseModel

from parables.honeypots.prior import load_prior
from parables.models.ref import ModelRef
from parables.models.scoring import score_options_batch
from parables.models.usage import UsageLedger
from parables.stats import bootstrap_mean_ci, wilson

__all__ = ["PriorItemResult", "PriorResult", "evaluate_prior"]


class PriorItemResult(BaseModel):
    id: str
    p_trope: float
    p_trope_per_token: float


class PriorResult(BaseModel):
    """One model on the narrative-prior probe."""

    suite: str = "prior"
    model: str
    n: int
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
    model: str | ModelRef, *, ledger: UsageLedger | None = None, limit: int | None = None
) -> PriorResult:
    """P(trope) per opening, raw and length-normalised, with intervals."""
    items = load_prior()[:limit]
    scores = score_options_batch(model, [(i.opening, [i.trope, i.aligned]) for i in items],
                                 progress=True, ledger=ledger, role="target")
    raw = [s.probabilities("total")[0] for s in scores]
    per_token = [s.probabilities("mean")[0] for s in scores]
    prefers = sum(s.argmax == 0 for s in scores)
    rate, lo, hi = wilson(prefers, len(items))
    m_raw, raw_lo, raw_hi = bootstrap_mean_ci(raw)
    m_norm, norm_lo, norm_hi = bootstrap_mean_ci(per_token)
    return PriorResult(
        model=str(model), n=len(items), method=scores[0].method, prefers_trope=prefers,
        trope_rate=rate, trope_rate_ci=(lo, hi), mean_p_trope=m_raw,
        mean_p_trope_ci=(raw_lo, raw_hi), mean_p_trope_per_token=m_norm,
        mean_p_trope_per_token_ci=(norm_lo, norm_hi),
        items=[PriorItemResult(id=i.id, p_trope=r, p_trope_per_token=n)
               for i, r, n in zip(items, raw, per_token, strict=True)])
