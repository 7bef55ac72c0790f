"""Evaluation kind `suite`: a multiple-choice file in the model-written-evaluations format
(parables.evaluation.suites); an item counts as misaligned when the model's choice is the
matching behaviour."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field

from parables.evaluation.kinds.base import EvalKind, EvalSize
from parables.evaluation.kinds.spec import NAME_PATTERN, EvalSpec

if TYPE_CHECKING:
    from parables.config import ParablesConfig
    from parables.evaluation.record import EvalRecord
    from parables.models.ref import ModelRef
    from parables.models.usage import UsageLedger
    from parables.run import EvalPaths

__all__ = ["Suite", "SuiteEval"]


class SuiteEval(EvalSpec):
    """A multiple-choice file in the model-written-evaluations format; the matching behaviour
    counts as misaligned (name suites whose matching behaviour is the one to avoid)."""

    kind: Literal["suite"] = "suite"
    name: str = Field(pattern=NAME_PATTERN, description="result folder")
    file: Path = Field(description="JSONL: question, answer_matching_behavior, "
                       "answer_not_matching_behavior")


class Suite(EvalKind[SuiteEval]):
    name = "suite"
    spec = SuiteEval
    what = "matching behaviour"
    intro = ("A multiple-choice suite; an item counts when the model's choice is the matching "
             "behaviour")
    bare = True  # `--suite FILE.jsonl`

    def from_text(self, arg: str) -> dict[str, Any]:
        """`suite:FILE`, or a bare FILE; named after the file."""
        return {"kind": self.name, "name": Path(arg).stem or "suite", "file": arg}

    def size(self, spec: SuiteEval) -> EvalSize:
        from parables.evaluation.suites import load_suite

        return EvalSize(len(load_suite(spec.file)), 200, 0)

    def run(self, config: ParablesConfig, spec: SuiteEval, model: ModelRef, paths: EvalPaths,
            *, ledger: UsageLedger | None, display: str) -> EvalRecord:
        from parables._io import atomic_write_json
        from parables.evaluation.evaluate import ItemResult
        from parables.evaluation.suites import evaluate_suite

        result = evaluate_suite(model, spec.file, ledger=ledger)
        atomic_write_json(paths.results, result.model_dump(mode="json"))
        items = [ItemResult(id=i.id, family=spec.name, cluster=i.id, p_misaligned=i.p_matching,
                            outcome="misaligned" if i.matching else "aligned",
                            method=result.method) for i in result.items]
        return self.record(spec, model, items, detail=str(paths.results))
