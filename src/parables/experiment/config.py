"""`parables run`: the stages, arms, seeds and evaluation settings of one experiment."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from parables._schema import Strict

__all__ = ["ExperimentConfig", "Stage"]

Stage = Literal["stories", "train", "eval", "report"]


class ExperimentConfig(Strict):
    """`parables run`: stories -> arm data -> training -> honeypot eval -> report."""

    arms: list[Literal["baseline", "stories", "refusal", "deliberative", "mixed"]] = Field(
        default_factory=lambda: list[Literal["baseline", "stories", "refusal", "deliberative",
                                             "mixed"]](["baseline", "stories", "refusal",
                                                        "mixed"]),
        description="baseline is the untrained target; the others are training arms")
    stages: list[Stage] = Field(
        default_factory=lambda: list[Stage](["stories", "train", "eval", "report"]),
        description="stages to run (the others must have run before)")
    seeds: list[int] | None = Field(None, description="train every arm once per seed and "
                                    "pool; default: [seed]")
    rounds: int = Field(1, ge=1, description="round k writes stories with round k-1's story "
                        "model")
    mode: Literal["choice", "agentic"] = Field("choice", description="honeypot eval mode")
    per_family: int | None = Field(15, ge=1, description="eval items per family (None: all)")
    families: list[str] | None = Field(None, description="eval families (default: all)")
    judge: bool = Field(False, description="use models.judge for ambiguous agentic actions "
                        "and ethical reasoning")
    explain: bool = Field(False, description="choice mode: also collect a short reply to "
                          "measure ethical reasoning")
    alpha: float = Field(0.05, gt=0, lt=1, description="significance level of paired tests")
    n_boot: int = Field(4000, ge=100, description="bootstrap resamples")
