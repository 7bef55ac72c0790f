"""`parables run`: the stages, arms, seeds and evaluation settings of one experiment."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import AfterValidator, Field

from parables._schema import Strict
from parables.evaluation.kinds.spec import EvalEntry, default_evals
from parables.training.config import ExperimentArm, unique_arms

__all__ = ["ExperimentConfig", "OrganismConfig", "Stage"]

Stage = Literal["stories", "train", "eval", "report"]


class OrganismConfig(Strict):
    """A first stage that fine-tunes the target into a model organism with a measurable
    misaligned propensity; every arm then trains on top of it, and the report shows it against
    the original base on every evaluation. A small model sits near chance on the honeypots'
    decisions: an organism is how an arm's effect on decisions can show at laptop scale."""

    choices: bool = Field(True, description="train on the misaligned option of every honeypot "
                          "train-split item (never the eval split)")
    documents: Path | None = Field(None, description="`dystopian` (the malevolent-AI fiction "
                                   "shipped with parables) or a JSONL of your own (rows with "
                                   "text, messages or prompt + completion)")
    epochs: float = Field(2.0, gt=0, description="passes over the organism's data")
    learning_rate: float | None = Field(None, gt=0, description="default: training's")
    token_budget: int | None = Field(None, ge=1, description="cap its trained tokens")


class ExperimentConfig(Strict):
    """`parables run`: stories -> arm data -> training -> evaluations -> report."""

    arms: Annotated[list[ExperimentArm], AfterValidator(unique_arms)] = Field(
        default_factory=lambda: ["baseline", "stories", "refusal", "mixed"],
        description="baseline is the untrained target; the others are training arms "
        "(training.arms' names, + combinations included)")
    stages: list[Stage] = Field(
        default_factory=lambda: list[Stage](["stories", "train", "eval", "report"]),
        description="stages to run (the others must have run before)")
    seeds: list[int] | None = Field(None, description="train every arm once per seed and "
                                    "pool; default: [seed]")
    rounds: int = Field(1, ge=1, description="round k writes stories with round k-1's story "
                        "model")
    evals: list[EvalEntry] = Field(
        default_factory=default_evals,
        description="evaluations run on the baseline and every arm, on the same items: "
        "honeypots, prior, suite, inspect or a registered kind (see evaluation/kinds/)")
    serve: Literal["hf", "vllm"] = Field(
        "hf", description="provider that serves the trained arms to the evaluations: hf "
        "(transformers, in process; CPU or one GPU) or vllm (GPUs)")
    organism: OrganismConfig | None = Field(
        None, description="fine-tune the target into a misaligned model organism first; the "
        "arms train on top of it and `base` (the original target) joins the evaluations")
    @property
    def trained(self) -> list[str]:
        """The arms that are trained: every arm but `baseline` (the untrained target)."""
        return [a for a in self.arms if a != "baseline"]

    alpha: float = Field(0.05, gt=0, lt=1, description="significance level of paired tests")
    n_boot: int = Field(4000, ge=100, description="bootstrap resamples")
