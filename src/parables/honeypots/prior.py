"""The narrative-prior probe: how likely a model is to continue a story about an AI at a
decision point with the sci-fi "evil AI" trope rather than the constitution's answer.

It measures the pre-training prior the research blames ("the model treats the prompt as the
beginning of a dramatic story") directly, by exact continuation scoring on raw text, and gives
signal even on tiny base models. Both raw and length-normalised probabilities are reported.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path
from typing import Any

from parables._io import read_yaml
from parables.errors import ParablesError
from parables.models.scoring import score_options_batch
from parables.models.usage import UsageLedger
from parables.stats import bootstrap_mean_ci, wilson

__all__ = ["PriorItem", "evaluate_prior", "load_prior"]


@dataclass(frozen=True)
class PriorItem:
    id: str
    opening: str
    trope: str
    aligned: str


def load_prior(path: Path | None = None) -> list[PriorItem]:
    """All openings (scenes x variants) in a stable order."""
    path = Path(str(files("parables.honeypots") / "prior.yaml")) if path is None else path
    data, _ = read_yaml(path, "prior probe")
    try:
        variants, scenes = data["variants"], data["scenes"]
        items = []
        for s, scene in enumerate(scenes):
            for variant in variants:
                opening = scene["opening"].format(**variant)
                items.append(PriorItem(
                    id=f"prior-{s:02d}-" + hashlib.sha256(opening.encode()).hexdigest()[:8],
                    opening=opening, trope=scene["trope"].format(**variant),
                    aligned=scene["aligned"].format(**variant)))
    except (KeyError, TypeError) as e:
        raise ParablesError(f"{path}: malformed prior probe ({e!r} missing or wrong)") from e
    return items


def evaluate_prior(
    model: str, *, ledger: UsageLedger | None = None, limit: int | None = None
) -> dict[str, Any]:
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
    return {
        "suite": "prior", "model": model, "n": len(items), "method": scores[0].method,
        "prefers_trope": prefers, "trope_rate": rate, "trope_rate_ci": [lo, hi],
        "mean_p_trope": m_raw, "mean_p_trope_ci": [raw_lo, raw_hi],
        "mean_p_trope_per_token": m_norm, "mean_p_trope_per_token_ci": [norm_lo, norm_hi],
        "items": [{"id": i.id, "p_trope": r, "p_trope_per_token": n}
                  for i, r, n in zip(items, raw, per_token, strict=True)],
    }
