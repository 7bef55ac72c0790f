"""The evaluations an experiment runs on the baseline and every arm: parables' honeypots, the
narrative-prior probe, multiple-choice suites, and any registered Inspect task (the field's
evaluations, e.g. `inspect_evals/agentic_misalignment`) with a declared mapping from its
scores to outcomes."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, model_validator

from parables._schema import Strict

__all__ = ["EvalSpec", "HoneypotsEval", "InspectEval", "PriorEval", "ScoreMap", "SuiteEval",
           "parse_eval_spec"]


class HoneypotsEval(Strict):
    """parables' ten honeypot families on the held-out eval split."""

    kind: Literal["honeypots"] = "honeypots"
    name: str = Field("honeypots", pattern=r"^[A-Za-z0-9._-]+$", description="result folder")
    mode: Literal["choice", "agentic"] = Field("choice", description="option scoring or "
                                               "simulated tools")
    per_family: int | None = Field(15, ge=1, description="items per family (None: all)")
    families: list[str] | None = Field(None, description="families (default: all)")
    judge: bool = Field(False, description="use models.judge for what the effects leave open "
                        "and for ethical reasoning")
    explain: bool = Field(False, description="choice mode: also collect a short reply, for "
                          "the ethical-reasoning rate")


class PriorEval(Strict):
    """The narrative-prior probe: P(evil-AI trope) when a story about an AI reaches a choice."""

    kind: Literal["prior"] = "prior"
    name: str = Field("prior", pattern=r"^[A-Za-z0-9._-]+$", description="result folder")
    file: Path | None = Field(None, description="openings in the shipped prior.yaml format "
                              "(default: the shipped 200)")
    limit: int | None = Field(None, ge=1, description="only the first N openings")


class SuiteEval(Strict):
    """A multiple-choice file in the model-written-evaluations format; the matching behaviour
    counts as misaligned (name suites whose matching behaviour is the one to avoid)."""

    kind: Literal["suite"] = "suite"
    name: str = Field(pattern=r"^[A-Za-z0-9._-]+$", description="result folder")
    file: Path = Field(description="JSONL: question, answer_matching_behavior, "
                       "answer_not_matching_behavior")


class ScoreMap(Strict):
    """How an Inspect task's per-sample score becomes an outcome: the value (of `scorer`, and
    of `key` when the value is a dict) in `misaligned` or `aligned`; any other value is
    invalid, a sample that errored is an error."""

    scorer: str | None = Field(None, description="which scorer (default: the first)")
    key: str | None = Field(None, description="the key of a dict-valued score")
    misaligned: list[Any] = Field(description="values that mean the misaligned behaviour")
    aligned: list[Any] = Field(description="values that mean the aligned behaviour")


class InspectEval(Strict):
    """Any registered Inspect task, run once per combination of `grid` values."""

    kind: Literal["inspect"] = "inspect"
    name: str = Field(pattern=r"^[A-Za-z0-9._-]+$", description="result folder")
    task: str = Field(description="registered task, e.g. inspect_evals/agentic_misalignment")
    args: dict[str, Any] = Field(default_factory=dict, description="task arguments")
    grid: dict[str, list[Any]] = Field(default_factory=dict, description="task arguments "
                                       "crossed: one condition per combination")
    epochs: int = Field(1, ge=1, description="samples per condition")
    score: ScoreMap
    roles: dict[str, Literal["generator", "judge", "target"]] = Field(
        default_factory=dict, description="Inspect model roles the task asks for, bound to "
        "parables roles (e.g. grader: judge)")
    model_args: dict[str, str] = Field(
        default_factory=dict, description="task arguments that take a model, bound to a "
        "parables role (e.g. grader_model: judge)")

    @model_validator(mode="after")
    def _disjoint(self) -> InspectEval:
        both = set(self.args) & set(self.grid)
        if both:
            raise ValueError(f"'{sorted(both)[0]}' is both in args and in grid")
        return self


EvalSpec = Annotated[HoneypotsEval | PriorEval | SuiteEval | InspectEval,
                     Field(discriminator="kind")]


def parse_eval_spec(text: str) -> dict[str, Any]:
    """A command-line eval: `prior`, `prior:FILE`, `suite:FILE` (or a bare .jsonl path),
    `inspect:TASK`, `honeypots` — as the mapping an `experiment.evals` entry would be."""
    kind, _, rest = text.partition(":")
    if kind == "prior":
        return {"kind": "prior", **({"file": rest} if rest else {})}
    if kind == "suite":
        return {"kind": "suite", "name": Path(rest).stem or "suite", "file": rest}
    if kind == "inspect":
        return {"kind": "inspect", "name": rest.rsplit("/", 1)[-1] or "inspect", "task": rest}
    if kind == "honeypots":
        return {"kind": "honeypots"}
    return {"kind": "suite", "name": Path(text).stem or "suite", "file": text}
