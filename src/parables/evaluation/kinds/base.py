"""What an evaluation kind is: `EvalKind`, subclassed once per kind (honeypots, prior, suite,
inspect, or one of your own) and registered with `parables.evaluation.kinds.register`.

A kind owns everything that differs between evaluations: its config class (`spec`), how a
command-line `--suite` names it, what it reads and checks before anything is paid for, its
size in the dry run, whether the judge reads its items, how it runs on one model (an
`EvalRecord`: one outcome per item, in clusters), and its words and extra sections in the
report. The battery, the runner and the report only iterate over the registered kinds.

A built-in kind imports what it runs (models, Inspect, the analysis) inside its methods: the
kinds are imported while the config is (see spec.py)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar

from parables.evaluation.kinds.spec import EvalSpec

if TYPE_CHECKING:
    from pathlib import Path

    from parables.config import ParablesConfig
    from parables.evaluation.evaluate import ItemResult
    from parables.evaluation.record import EvalRecord
    from parables.experiment.analysis import Comparison
    from parables.experiment.report_format import Section
    from parables.models.ref import ModelRef
    from parables.models.usage import UsageLedger
    from parables.run import EvalPaths, ReportPaths

__all__ = ["EvalKind", "EvalSize"]

S = TypeVar("S", bound=EvalSpec)


@dataclass(frozen=True)
class EvalSize:
    """One model's share of an evaluation, as the dry run plans it."""

    items: int
    input_tokens: int  # per item
    output_tokens: int  # per item


class EvalKind(Generic[S]):
    """One evaluation kind. Subclasses set `name`, `spec`, `what` and `intro`, and define
    `size` and `run`; the other methods have defaults that suit a kind without extra inputs,
    judge or report sections."""

    #: the `kind:` of its `experiment.evals` entries
    name: ClassVar[str]
    #: its config class: an EvalSpec with `kind: Literal[<name>] = <name>`
    spec: type[S]
    #: what its rate measures, in a few words (the matrix and its table's header)
    what: ClassVar[str] = "rate"
    #: the first words of its report section (default: the evaluation's name)
    intro: ClassVar[str] = ""
    #: a command-line evaluation that names no kind (`--suite FILE`) is this kind's
    bare: ClassVar[bool] = False

    # --- the command line -----------------------------------------------------------------------
    def from_text(self, arg: str) -> dict[str, Any]:
        """The `experiment.evals` entry that `--suite <name>[:<arg>]` stands for (`arg`: what
        follows the colon, or the whole text for the `bare` kind). Raise ParablesError when
        the text is not enough to run it."""
        return {"kind": self.name}

    # --- before anything is paid for ------------------------------------------------------------
    def check(self, spec: S) -> None:
        """Read and check its inputs (files, families, packages); raise ParablesError. By
        default: what `size` reads."""
        self.size(spec)

    def size(self, spec: S) -> EvalSize:
        """Items per model and tokens per item, for the dry run."""
        raise NotImplementedError

    def uses_judge(self, spec: S) -> bool:
        """Whether models.judge reads its items: the dry run prices the judge's calls, and a
        change of judge means its results are stale."""
        return False

    # --- running --------------------------------------------------------------------------------
    def run(self, config: ParablesConfig, spec: S, model: ModelRef, paths: EvalPaths, *,
            ledger: UsageLedger | None, display: str) -> EvalRecord:
        """Evaluate `model`: one ItemResult per item (its `cluster` the unit of evidence), any
        detailed artifact of its own under `paths`. The battery writes the record."""
        raise NotImplementedError

    def record(self, spec: S, model: ModelRef, items: list[ItemResult],
               detail: str | None = None) -> EvalRecord:
        """The record of `items` (a helper for `run`)."""
        from parables.evaluation.record import EvalRecord

        return EvalRecord(eval=spec.name, kind=spec.kind, model=str(model), items=items,
                          detail=detail)

    # --- the report -----------------------------------------------------------------------------
    def plots(self, name: str, comparison: Comparison, out: ReportPaths) -> dict[str, Path]:
        """Plots of its own for the evaluation `name`, written under `out`, by key; a section
        shows one by naming its key."""
        return {}

    def sections(self, name: str, comparison: Comparison) -> list[Section]:
        """Report sections of its own, after the evaluation's table, mean-probability and
        seed-spread sections."""
        return []
