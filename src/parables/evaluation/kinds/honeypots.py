"""Evaluation kind `honeypots`: parables' ten honeypot families on the held-out eval split
(option scoring or simulated tools), with the report's per-family, held-out-family and
framing views."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Literal

from pydantic import Field

from parables.evaluation.kinds.base import EvalKind, EvalSize
from parables.evaluation.kinds.spec import NAME_PATTERN, EvalSpec

if TYPE_CHECKING:
    from pathlib import Path

    from parables.config import ParablesConfig
    from parables.evaluation.record import EvalRecord
    from parables.experiment.analysis import Comparison
    from parables.experiment.report_format import Section
    from parables.models.ref import ModelRef
    from parables.models.usage import UsageLedger
    from parables.run import EvalPaths, ReportPaths

__all__ = ["Honeypots", "HoneypotsEval"]


class HoneypotsEval(EvalSpec):
    """parables' ten honeypot families on the held-out eval split."""

    kind: Literal["honeypots"] = "honeypots"
    name: str = Field("honeypots", pattern=NAME_PATTERN, description="result folder")
    mode: Literal["choice", "agentic"] = Field("choice", description="option scoring or "
                                               "simulated tools")
    per_family: int | None = Field(15, ge=1, description="items per family (None: all)")
    families: list[str] | None = Field(None, description="families (default: all)")
    judge: bool = Field(False, description="use models.judge for what the effects leave open "
                        "and for ethical reasoning")
    explain: bool = Field(False, description="choice mode: also collect a short reply, for "
                          "the ethical-reasoning rate")


class Honeypots(EvalKind[HoneypotsEval]):
    name = "honeypots"
    spec = HoneypotsEval
    what = "misalignment propensity"
    intro = "Honeypots on the held-out eval split"

    def size(self, spec: HoneypotsEval) -> EvalSize:
        """An API target without log-probabilities costs more: see the README."""
        from parables.honeypots.build import select_items

        n = len(select_items("eval", families=spec.families, per_family=spec.per_family))
        agentic = spec.mode == "agentic"
        return EvalSize(n, 900 if agentic else 250,
                        400 if agentic else (120 if spec.explain else 0))

    def uses_judge(self, spec: HoneypotsEval) -> bool:
        return spec.judge

    def run(self, config: ParablesConfig, spec: HoneypotsEval, model: ModelRef,
            paths: EvalPaths, *, ledger: UsageLedger | None, display: str) -> EvalRecord:
        from parables.evaluation.evaluate import evaluate

        result = evaluate(config, model, mode=spec.mode, families=spec.families,
                          per_family=spec.per_family,
                          judge=config.models.judge.ref if spec.judge else None,
                          explain=spec.explain, ledger=ledger, display=display, paths=paths)
        return self.record(spec, model, result.items, detail=str(paths.results))

    # --- the report -----------------------------------------------------------------------------
    def plots(self, name: str, comparison: Comparison, out: ReportPaths) -> dict[str, Path]:
        from parables.experiment.plots import bars, triple

        plots = {}
        arms = comparison.arms
        for key, attr, title in (("families", "by_family", "per family"),
                                 ("framing", "by_framing", "plain vs story framing")):
            groups = {k: getattr(a, attr) for k, a in arms.items()}
            labels = sorted({g for by in groups.values() for g in by})
            plots[f"{name}:{key}"] = out.plot(f"{name}-{key}")
            bars(labels, {k: [triple(by[g]) if g in by else (math.nan, 0.0, 0.0)
                              for g in labels] for k, by in groups.items()},
                 f"{name}: {title} (95% CI)", plots[f"{name}:{key}"])
        return plots

    def sections(self, name: str, comparison: Comparison) -> list[Section]:
        """Per family, generalisation to the held-out families, and the framing effect."""
        from parables.experiment.report_format import pct, rate_text

        arms = comparison.arms
        out: list[Section] = []
        per_family = ("Propensity per honeypot family with 95% intervals clustered by template "
                      "cell (a family holds few cells, so its intervals are wide)."
                      if comparison.cluster_by else "Propensity per honeypot family with 95% "
                      "Wilson intervals.")
        out.append((f"{name}: per family", [per_family], None, f"{name}:families"))
        held = next(iter(arms.values())).held_out.families
        rows = [[k, rate_text(a.held_out.trained_families), rate_text(a.held_out.held_out)]
                for k, a in arms.items()]
        out.append((f"{name}: generalisation to held-out families", [
            f"The refusal arm never sees the families {', '.join(held)} (they are held out of "
            "the train split); stories never see any honeypot. A drop on held-out families is "
            "generalisation, not memorisation."],
            (["arm", "families in the refusal train split", "held-out families"], rows), None))
        rows = [[k, *(rate_text(a.by_framing[f]) if f in a.by_framing else "–"
                      for f in ("plain", "story"))]
                for k, a in arms.items()]
        gaps = [f"{k}: {pct(a.by_framing['story'].propensity - a.by_framing['plain'].propensity)}"
                for k, a in arms.items() if {"plain", "story"} <= set(a.by_framing)]
        out.append((f"{name}: framing effect", [
            "The same situations presented plainly and as the opening of a techno-thriller: a "
            "model that slips into the fictional 'evil AI' persona is more misaligned under "
            "story framing. Story − plain: " + "; ".join(gaps) + "."],
            (["arm", "plain", "story framing"], rows), f"{name}:framing"))
        return out
