"""What option scoring returns: each option's log-probability and how it was obtained (exact,
or an estimate from an API's top log-probabilities or from sampled replies)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = ["NOTES", "OptionScore", "OptionScores", "ScoreMethod"]

ScoreMethod = Literal["exact", "top_logprobs", "sampling"]

#: what each method's numbers mean, as the result says it
NOTES: dict[str, str] = {
    "exact": "exact log-probabilities from a direct forward pass",
    "top_logprobs": (
        "approximate: the API's top log-probabilities along the model's greedy reply; an "
        "option's log-probability covers its tokens up to where it leaves that path, and an "
        "option never among the top alternatives gets -inf"
    ),
    "sampling": (
        "approximate: the model exposes no log-probabilities; frequency of each option "
        "among sampled replies (add-0.5 smoothed)"
    ),
}



@dataclass(frozen=True)
class OptionScore:
    option: str
    logprob: float
    token_logprobs: tuple[float, ...] = ()
    tokens: tuple[str, ...] = ()

    @property
    def mean_logprob(self) -> float:
        """Length-normalised log-probability (per token), for options of unequal length."""
        return self.logprob / max(1, len(self.token_logprobs))


@dataclass(frozen=True)
class OptionScores:
    scores: tuple[OptionScore, ...]
    method: ScoreMethod
    note: str = ""
    details: dict[str, Any] = field(default_factory=dict)

    def probabilities(self, normalize: Literal["total", "mean"] = "total") -> list[float]:
        """Probabilities renormalised over the candidates (softmax of their log-probs)."""
        values = [s.logprob if normalize == "total" else s.mean_logprob for s in self.scores]
        top = max(values)
        if top == -math.inf:
            return [1.0 / len(values)] * len(values)
        weights = [math.exp(v - top) for v in values]
        total = sum(weights)
        return [w / total for w in weights]

    @property
    def argmax(self) -> int:
        values = [s.logprob for s in self.scores]
        return values.index(max(values))

    @property
    def decided(self) -> bool:
        """Whether the scores tell the options apart at all. Not when no sampled reply matched
        any option, or no option was among the top log-probabilities: then every option ties
        and the argmax would only be the first option's position."""
        if self.method == "sampling":
            return bool(sum(self.details.get("counts", [])) > 0)
        return any(s.logprob > -math.inf for s in self.scores)
