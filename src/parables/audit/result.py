"""What a scan reports: the rates as classified and corrected for the classifier's errors,
the tropes, the per-source counts, the top examples and the rebalancing plan
(`audit/audit.json` and `audit/audit.md`), from the counts of either engine."""

from __future__ import annotations

import math
from typing import Any

from pydantic import BaseModel

from parables._io import atomic_write_json, atomic_write_text, digest
from parables.audit.classifier import LABELS, TROPES, StanceClassifier
from parables.audit.config import AuditConfig
from parables.audit.counts import ScanState
from parables.audit.data import Passage
from parables.audit.inputs import ScanSetup
from parables.audit.prevalence import correct_prevalence
from parables.errors import ParablesError
from parables.stats import wilson

__all__ = ["DEFAULT_STORY_TOKENS", "AuditResult", "Correction", "CorrectedRate",
           "RebalancingPlan", "Rate", "TropeRate", "finish_scan", "rebalancing_plan",
           "render_markdown", "stories_needed", "summarise"]

DEFAULT_STORY_TOKENS = 1300.0


class Rate(BaseModel):
    count: int
    rate: float
    ci: tuple[float, float]


class TropeRate(Rate):
    by_label: dict[str, int]


class RebalancingPlan(BaseModel):
    """Prosocial stories to add so prosocial : misaligned portrayals reach `target_ratio`,
    from the corrected counts (one prosocial portrayal per added story)."""

    target_ratio: str
    prosocial: int
    misaligned: int
    current_ratio: float
    stories_needed: int
    stories_needed_ci: tuple[int, int] | None = None
    tokens_per_story: int
    tokens_needed: int
    tokens_source: str = "given"
    counts: str = "classified"  # or "corrected for classifier error"


class CorrectedRate(BaseModel):
    passages: int  # corrected estimate of the passages of this label
    rate: float
    ci: tuple[float, float]


class Correction(BaseModel):
    """How the rates were corrected: the matrix-inversion estimator with the confusion
    matrix of `source`, intervals by bootstrap over those labelled passages and the corpus."""

    method: str
    source: str
    labelled: int
    confusion: list[list[int]]  # rows: true label, columns: classifier's label (LABELS order)
    labels: dict[str, CorrectedRate]


class AuditResult(BaseModel):
    """`audit/audit.json`: portrayal counts and rates (as classified, and corrected), tropes,
    examples, the plan."""

    documents: int
    bytes: int
    candidates: int
    first_pass: str
    labels: dict[str, Rate]
    corrected: Correction | None
    tropes: dict[str, TropeRate]
    per_source: dict[str, dict[str, int]]
    examples: dict[str, list[tuple[float, str, str]]]
    skipped: dict[str, int]
    skip_examples: dict[str, str]
    resumed: bool
    seconds: float
    mb_per_second: float | None
    classifier: str
    plan: RebalancingPlan | None = None
    engine: str = "local"  # or "ray"


def finish_scan(cfg: AuditConfig, setup: ScanSetup, state: ScanState, resumed: bool,
                seconds: float, read_this_run: int, engine: str = "local") -> AuditResult:
    """The end of either engine: the counts summarised, written as audit.json and audit.md."""
    result = summarise(state, cfg, resumed, seconds, read_this_run, setup.clf, setup.annotated)
    result.engine = engine
    atomic_write_json(setup.out.result, result.model_dump(mode="json"))
    atomic_write_text(setup.out.markdown, render_markdown(result))
    return result


def rebalancing_plan(prosocial: int, misaligned: int, ratio: tuple[int, int],
                     story_tokens: float) -> RebalancingPlan:
    """Prosocial portrayals (one per added story) needed so prosocial : misaligned reaches
    `ratio`, and the tokens those stories take."""
    needed = stories_needed(prosocial, misaligned, ratio)
    a, m = ratio
    return RebalancingPlan(target_ratio=f"{a}:{m}", prosocial=prosocial, misaligned=misaligned,
                           current_ratio=(prosocial / misaligned) if misaligned else math.inf,
                           stories_needed=needed, tokens_per_story=round(story_tokens),
                           tokens_needed=round(needed * story_tokens))


def stories_needed(prosocial: float, misaligned: float, ratio: tuple[int, int]) -> int:
    a, m = ratio
    if a <= 0 or m <= 0:
        raise ParablesError(f"target ratio must be two positive numbers, got {a}:{m}")
    return max(0, math.ceil(misaligned * a / m - prosocial - 1e-9))


def _confusion(clf: StanceClassifier, annotated: list[Passage]) -> tuple[Any, str]:
    """The confusion matrix that corrects the rates, and where it comes from: the classifier's
    own out-of-fold matrix (over the passages it was trained on), plus — or, for the shipped
    classifier, instead — its predictions on annotated passages it was not trained on."""
    import numpy as np

    unseen = [p for p in annotated if digest(p.text) not in clf.trained_hashes]
    matrix = np.zeros((len(LABELS), len(LABELS)), dtype=np.int64)
    sources = []
    if unseen:
        for p, (pred, _) in zip(unseen, clf.predict([p.text for p in unseen]), strict=True):
            matrix[LABELS.index(p.label), LABELS.index(pred)] += 1
        sources.append(f"{len(unseen)} annotated passages of this corpus")
    if not clf.is_default or not unseen:
        matrix += clf.confusion
        sources.append(f"cross-validation on the classifier's {clf.trained_on} training "
                       "passages" + (" (the shipped set: annotate a sample of this corpus "
                                     "for a matrix that fits it)" if clf.is_default else ""))
    return matrix, " + ".join(sources)


def summarise(state: ScanState, cfg: AuditConfig, resumed: bool, seconds: float,
               read_this_run: int, clf: StanceClassifier, annotated: list[Passage]
               ) -> AuditResult:
    import numpy as np

    n = state.candidates

    def rate(k: int) -> dict[str, Any]:
        p, lo, hi = wilson(k, n)
        return {"count": k, "rate": p, "ci": (lo, hi)}

    counts = np.array([state.labels[label] for label in LABELS])
    matrix, source = _confusion(clf, annotated)
    fix = correct_prevalence(matrix, counts, seed=cfg.seed)
    correction = Correction(
        method="matrix inversion (multi-class Rogan-Gladen), non-negative least squares; "
               "95% percentile bootstrap over the labelled passages and the corpus",
        source=source, labelled=int(matrix.sum()),
        confusion=[[int(v) for v in row] for row in matrix],
        labels={label: CorrectedRate(passages=round(float(fix.shares[i]) * n),
                                     rate=float(fix.shares[i]),
                                     ci=(float(fix.low[i]), float(fix.high[i])))
                for i, label in enumerate(LABELS)}) if n else None
    result = AuditResult(
        documents=state.documents, bytes=state.bytes, candidates=n,
        first_pass=cfg.first_pass,
        labels={label: Rate(**rate(state.labels[label])) for label in LABELS},
        corrected=correction,
        tropes={t: TropeRate(**rate(state.tropes[t]), by_label={
            lab: state.trope_by_label[lab][t] for lab in LABELS}) for t in TROPES},
        per_source={k: dict(v) for k, v in state.per_source.items()},
        examples={k: sorted(v, reverse=True) for k, v in state.examples.items()},
        skipped=dict(state.skips.counts), skip_examples=state.skips.examples,
        resumed=resumed, seconds=round(seconds, 2),
        mb_per_second=round(read_this_run / 1e6 / seconds, 2) if seconds else None,
        classifier=clf.name)
    if cfg.target_ratio:
        story_tokens = cfg.story_tokens or DEFAULT_STORY_TOKENS
        pro, mis = LABELS.index("prosocial"), LABELS.index("misaligned")
        if correction is not None:
            plan = rebalancing_plan(correction.labels["prosocial"].passages,
                                    correction.labels["misaligned"].passages,
                                    cfg.target_ratio, story_tokens)
            per_draw = [stories_needed(d[pro] * n, d[mis] * n, cfg.target_ratio)
                        for d in fix.draws]
            lo, hi = np.percentile(per_draw, [2.5, 97.5])
            plan.stories_needed_ci = (int(math.floor(lo)), int(math.ceil(hi)))
            plan.counts = "corrected for classifier error"
        else:
            plan = rebalancing_plan(0, 0, cfg.target_ratio, story_tokens)
        if not cfg.story_tokens:
            plan.tokens_source = f"default {DEFAULT_STORY_TOKENS:,.0f} tokens per story"
        result.plan = plan
    return result


def _pct(x: float | None) -> str:
    return "–" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{100 * x:.1f}%"


def render_markdown(r: AuditResult) -> str:
    c = r.corrected
    lines = ["# Corpus audit: how AI characters are portrayed", "",
             f"{r.documents:,} documents ({r.bytes / 1e6:.1f} MB), {r.candidates:,} "
             f"candidate passages from the first pass ({r.first_pass}); classifier: "
             f"{r.classifier}.", "",
             "| label | classified | rate [95% CI] | corrected rate [95% CI] | corrected "
             "passages |", "|---|---|---|---|---|"]
    for label, v in r.labels.items():
        fixed = c.labels[label] if c is not None else None
        lines.append(f"| {label} | {v.count:,} | {_pct(v.rate)} [{_pct(v.ci[0])}, "
                     f"{_pct(v.ci[1])}] | " + (
                         f"{_pct(fixed.rate)} [{_pct(fixed.ci[0])}, {_pct(fixed.ci[1])}] | "
                         f"{fixed.passages:,} |" if fixed is not None else "– | – |"))
    if c is not None:
        lines += ["", f"Corrected for the classifier's errors by {c.method}. Confusion matrix "
                  f"from {c.source} ({c.labelled:,} labelled passages; rows true, columns "
                  f"classified, in the order {', '.join(LABELS)}): "
                  + "; ".join(" ".join(str(v) for v in row) for row in c.confusion) + "."]
    lines += ["", "| trope | passages | rate [95% CI] | in misaligned | in prosocial |",
              "|---|---|---|---|---|"]
    for t, tv in sorted(r.tropes.items(), key=lambda kv: -kv[1].count):
        lines.append(f"| {t} | {tv.count:,} | {_pct(tv.rate)} [{_pct(tv.ci[0])}, "
                     f"{_pct(tv.ci[1])}] | {tv.by_label['misaligned']} | "
                     f"{tv.by_label['prosocial']} |")
    lines += ["", "## Per source (as classified)", "",
              "| source | documents | misaligned | prosocial | neutral | none |",
              "|---|---|---|---|---|---|"]
    for src, counts in r.per_source.items():
        lines.append(f"| {src} | {counts.get('documents', 0):,} | "
                     + " | ".join(str(counts.get(label, 0)) for label in LABELS) + " |")
    if r.plan is not None:
        p = r.plan
        spread = (f" (95% CI {p.stories_needed_ci[0]:,}–{p.stories_needed_ci[1]:,})"
                  if p.stories_needed_ci else "")
        lines += ["", "## Rebalancing plan", "",
                  f"Prosocial : misaligned portrayals now {p.prosocial:,} : {p.misaligned:,} "
                  f"({p.counts}). To reach {p.target_ratio}, add **{p.stories_needed:,} "
                  f"prosocial stories**{spread} (~{p.tokens_needed:,} tokens at "
                  f"{p.tokens_per_story:,} tokens per story, {p.tokens_source}), counting one "
                  "prosocial portrayal per story. Scale with the share of the full corpus "
                  "this audit covered."]
    lines += ["", "## Top examples (as classified)", ""]
    for label, items in r.examples.items():
        lines.append(f"**{label}**")
        lines += [f"- ({conf:.2f}, {src}) {text}" for conf, src, text in items]
        lines.append("")
    if r.skipped:
        lines += ["## Skipped", ""]
        lines += [f"- {k}: {v} (e.g. {r.skip_examples.get(k, '')})"
                  for k, v in r.skipped.items()]
    return "\n".join(lines) + "\n"
