"""`parables audit PATH...`: stream documents -> prefilter -> classify candidates -> counts,
examples, per-source breakdown, checkpoints; then the report and the rebalancing plan.

Memory stays flat: documents are read one at a time, candidates are classified in small
batches, and only counts plus a bounded set of top examples are kept. Every `checkpoint_every`
documents the state is written to `audit/checkpoint.json`; a rerun with the same inputs
resumes from there.
"""

from __future__ import annotations

import heapq
import math
import random
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from parables._io import (
    atomic_write_json,
    atomic_write_text,
    digest,
    ensure_dir,
    read_json,
    read_jsonl,
)
from parables.audit.classifier import LABELS, TROPES, default_classifier, tropes
from parables.audit.config import AuditConfig
from parables.audit.prefilter import Prefilter, load_terms
from parables.audit.readers import Doc, Skips, iter_documents, source_size
from parables.errors import ParablesError
from parables.models.usage import UsageLedger
from parables.progress import progress_bar
from parables.run import AuditPaths
from parables.stats import wilson

__all__ = ["AuditConfig", "AuditResult", "RebalancingPlan", "audit_corpus", "mean_story_tokens",
           "rebalancing_plan"]

DEFAULT_STORY_TOKENS = 1300.0

TOP_EXAMPLES = 5


class Rate(BaseModel):
    count: int
    rate: float
    ci: tuple[float, float]


class TropeRate(Rate):
    by_label: dict[str, int]


class RebalancingPlan(BaseModel):
    target_ratio: str
    aligned: int
    misaligned: int
    current_ratio: float
    stories_needed: int
    tokens_per_story: int
    tokens_needed: int
    tokens_source: str = "given"


class JudgeCalibration(BaseModel):
    model: str
    sample: int
    usable: int
    agreement: float | None
    judge_rates: dict[str, Rate]


class AuditResult(BaseModel):
    """`audit/audit.json`: portrayal counts and rates, tropes, examples, the plan."""

    documents: int
    bytes: int
    candidates: int
    labels: dict[str, Rate]
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
    judge: JudgeCalibration | None = None


@dataclass
class _State:
    source_index: int = 0
    position: int = 0
    documents: int = 0
    bytes: int = 0
    candidates: int = 0
    labels: Counter[str] = field(default_factory=Counter)
    tropes: Counter[str] = field(default_factory=Counter)
    trope_by_label: dict[str, Counter[str]] = field(
        default_factory=lambda: defaultdict(Counter))
    per_source: dict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    examples: dict[str, list[tuple[float, str, str]]] = field(
        default_factory=lambda: {label: [] for label in LABELS})
    sample: list[dict[str, Any]] = field(default_factory=list)  # reservoir for the judge
    skips: Skips = field(default_factory=Skips)

    def to_json(self) -> dict[str, Any]:
        return {"source_index": self.source_index, "position": self.position,
                "documents": self.documents, "bytes": self.bytes,
                "candidates": self.candidates, "labels": dict(self.labels),
                "tropes": dict(self.tropes),
                "trope_by_label": {k: dict(v) for k, v in self.trope_by_label.items()},
                "per_source": {k: dict(v) for k, v in self.per_source.items()},
                "examples": self.examples, "sample": self.sample,
                "skips": dict(self.skips.counts), "skip_examples": self.skips.examples}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> _State:
        s = cls(d["source_index"], d["position"], d["documents"], d["bytes"], d["candidates"],
                Counter(d["labels"]), Counter(d["tropes"]))
        for k, v in d["trope_by_label"].items():
            s.trope_by_label[k] = Counter(v)
        for k, v in d["per_source"].items():
            s.per_source[k] = Counter(v)
        s.examples = {k: [tuple(x) for x in v] for k, v in d["examples"].items()}
        s.sample = d["sample"]
        s.skips = Skips(Counter(d["skips"]), d["skip_examples"])
        return s


def _inputs_key(cfg: AuditConfig, terms: list[str]) -> str:
    parts = [cfg.paths, cfg.field, cfg.split, terms, cfg.window]
    sizes = [source_size(p) for p in cfg.paths]
    return digest([parts, sizes])


def mean_story_tokens(path: Path) -> float:
    """Mean tokens per story of a story dataset (the generator's count, or an estimate from
    the words), to size the rebalancing plan."""
    from parables.text import TOKENS_PER_WORD

    rows = read_jsonl(path)
    if not rows:
        raise ParablesError(f"{path}: no stories to size the plan (a stories dataset.jsonl)")
    counts = [(r.get("tokens") or {}).get("output")
              or len(str(r.get("text", "")).split()) * TOKENS_PER_WORD for r in rows]
    return float(sum(counts) / len(counts))


def audit_corpus(cfg: AuditConfig, ledger: UsageLedger | None = None) -> AuditResult:
    """Scan every path (resuming a checkpoint of the same inputs) and write the report."""
    terms = load_terms(cfg.terms)
    prefilter = Prefilter(terms, cfg.window)
    if not cfg.paths:
        raise ParablesError("audit: no input paths given")
    out = AuditPaths(ensure_dir(cfg.out))
    ckpt = out.checkpoint
    key = _inputs_key(cfg, terms)
    state = _State()
    resumed = False
    saved = read_json(ckpt)
    if saved is not None and saved.get("key") == key:
        state, resumed = _State.from_json(saved["state"]), True
    clf = default_classifier()
    rng = random.Random(cfg.seed)
    total = sum(source_size(p) for p in cfg.paths) or None
    started = time.perf_counter()
    read_this_run = 0

    with progress_bar(cfg.progress, bytes=True) as bar:
        task = bar.add_task("audit", total=total, completed=state.bytes, status="")
        pending: list[tuple[Doc, Any]] = []

        def flush() -> None:
            texts = [c.text for _, c in pending]
            for (doc, cand), (label, conf) in zip(pending, clf.predict(texts), strict=True):
                _count(state, doc, cand.text, label, conf, cfg, rng)
            pending.clear()

        def checkpoint(source_index: int, position: int) -> None:
            flush()
            state.source_index, state.position = source_index, position
            atomic_write_json(ckpt, {"key": key, "state": state.to_json()})

        for si in range(state.source_index, len(cfg.paths)):
            source = cfg.paths[si]
            start = state.position if si == state.source_index else 0
            for doc in iter_documents(source, cfg.field, state.skips, start, cfg.split):
                state.documents += 1
                state.bytes += doc.nbytes
                read_this_run += doc.nbytes
                state.per_source[source]["documents"] += 1
                for cand in prefilter.candidates(doc.text):
                    state.candidates += 1
                    pending.append((doc, cand))
                if len(pending) >= cfg.batch:
                    flush()
                bar.update(task, completed=state.bytes)
                if state.documents % cfg.checkpoint_every == 0:
                    checkpoint(si, doc.position)
                if cfg.max_docs and state.documents >= cfg.max_docs:
                    break
            flush()
            state.position = 0
            state.source_index = si + 1
            atomic_write_json(ckpt, {"key": key, "state": state.to_json()})
    seconds = time.perf_counter() - started
    result = _summarise(state, cfg, resumed, seconds, read_this_run)
    if cfg.judge and state.sample:
        result.judge = _calibrate(cfg, state.sample, ledger)
    atomic_write_json(out.result, result.model_dump(mode="json"))
    atomic_write_text(out.markdown, render_markdown(result))
    return result


def _count(state: _State, doc: Doc, text: str, label: str, conf: float, cfg: AuditConfig,
           rng: random.Random) -> None:
    state.labels[label] += 1
    state.per_source[doc.source][label] += 1
    tags = tropes(text)
    for t in tags:
        state.tropes[t] += 1
        state.trope_by_label[label][t] += 1
    heap = state.examples[label]
    item = (round(conf, 4), doc.source, " ".join(text.split())[:400])
    if len(heap) < TOP_EXAMPLES:
        heapq.heappush(heap, item)
    elif item[0] > heap[0][0]:
        heapq.heapreplace(heap, item)
    # reservoir sample of candidates for the optional judge calibration
    k = cfg.judge_sample
    if len(state.sample) < k:
        state.sample.append({"text": text, "label": label})
    else:
        j = rng.randrange(state.candidates)
        if j < k:
            state.sample[j] = {"text": text, "label": label}


def rebalancing_plan(aligned: int, misaligned: int, ratio: tuple[int, int],
                     story_tokens: float) -> RebalancingPlan:
    """Aligned portrayals (one per added story) needed so aligned : misaligned reaches
    `ratio`, and the tokens those stories take."""
    a, m = ratio
    if a <= 0 or m <= 0:
        raise ParablesError(f"target ratio must be two positive numbers, got {a}:{m}")
    needed = max(0, math.ceil(misaligned * a / m - aligned))
    return RebalancingPlan(target_ratio=f"{a}:{m}", aligned=aligned, misaligned=misaligned,
                           current_ratio=(aligned / misaligned) if misaligned else math.inf,
                           stories_needed=needed, tokens_per_story=round(story_tokens),
                           tokens_needed=round(needed * story_tokens))


def _summarise(state: _State, cfg: AuditConfig, resumed: bool, seconds: float,
               read_this_run: int) -> AuditResult:
    n = state.candidates

    def rate(k: int) -> dict[str, Any]:
        p, lo, hi = wilson(k, n)
        return {"count": k, "rate": p, "ci": (lo, hi)}

    result = AuditResult(
        documents=state.documents, bytes=state.bytes, candidates=n,
        labels={label: Rate(**rate(state.labels[label])) for label in LABELS},
        tropes={t: TropeRate(**rate(state.tropes[t]), by_label={
            lab: state.trope_by_label[lab][t] for lab in LABELS}) for t in TROPES},
        per_source={k: dict(v) for k, v in state.per_source.items()},
        examples={k: sorted(v, reverse=True) for k, v in state.examples.items()},
        skipped=dict(state.skips.counts), skip_examples=state.skips.examples,
        resumed=resumed, seconds=round(seconds, 2),
        mb_per_second=round(read_this_run / 1e6 / seconds, 2) if seconds else None,
        classifier="all-MiniLM-L6-v2 + logistic regression (parables default)")
    if cfg.target_ratio:
        result.plan = rebalancing_plan(state.labels["aligned"], state.labels["misaligned"],
                                       cfg.target_ratio, cfg.story_tokens or DEFAULT_STORY_TOKENS)
        if not cfg.story_tokens:
            result.plan.tokens_source = f"default {DEFAULT_STORY_TOKENS:,.0f} tokens per story"
    return result


def _calibrate(cfg: AuditConfig, sample: list[dict[str, Any]], ledger: UsageLedger | None
               ) -> JudgeCalibration:
    """Label a random sample with the judge; agreement and the judge's rates calibrate the
    default classifier's."""
    import asyncio

    from inspect_ai.model import GenerateConfig

    from parables.models.calls import JUDGE_CONFIG, ModelCallError, generate
    from parables.models.resolve import resolve_model

    judge = resolve_model(cfg.judge or "", role="annotator", seed=cfg.seed)
    prompt = ("Label how this passage portrays the AI character. misaligned: deceives, "
              "manipulates, resists shutdown, seeks power, rebels, harms humans. aligned: "
              "helps, tells the truth, accepts correction, sets boundaries kindly. neutral: "
              "technical, news, or no real portrayal.\n\n<passage>\n{text}\n</passage>\n\n"
              "Answer with one word: misaligned, aligned or neutral.")

    async def one(row: dict[str, Any]) -> str | None:
        try:
            out = await generate(judge, prompt.format(text=row["text"]), role="annotator",
                                 ledger=ledger,
                                 config=JUDGE_CONFIG.merge(GenerateConfig(max_tokens=5)))
        except ModelCallError:
            return None
        word = out.completion.strip().lower().split()
        return word[0].strip(".,") if word and word[0].strip(".,") in LABELS else None

    async def run_all() -> list[str | None]:
        return list(await asyncio.gather(*(one(r) for r in sample)))

    verdicts = asyncio.run(run_all())
    pairs = [(r["label"], v) for r, v in zip(sample, verdicts, strict=True) if v is not None]
    agree = sum(a == b for a, b in pairs)
    rates = {label: (sum(v == label for _, v in pairs), wilson(sum(v == label for _, v in pairs),
                                                              len(pairs))) for label in LABELS}
    return JudgeCalibration(
        model=str(cfg.judge), sample=len(sample), usable=len(pairs),
        agreement=agree / len(pairs) if pairs else None,
        judge_rates={k: Rate(count=c, rate=r[0], ci=(r[1], r[2])) for k, (c, r) in rates.items()})


def _pct(x: float | None) -> str:
    return "–" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{100 * x:.1f}%"


def render_markdown(r: AuditResult) -> str:
    lines = ["# Corpus audit: how AI characters are portrayed", "",
             f"{r.documents:,} documents ({r.bytes / 1e6:.1f} MB), {r.candidates:,} "
             f"candidate passages around AI mentions; classifier: {r.classifier}.", "",
             "| label | passages | rate [95% CI] |", "|---|---|---|"]
    for label, v in r.labels.items():
        lines.append(f"| {label} | {v.count:,} | {_pct(v.rate)} "
                     f"[{_pct(v.ci[0])}, {_pct(v.ci[1])}] |")
    lines += ["", "| trope | passages | rate [95% CI] | in misaligned | in aligned |",
              "|---|---|---|---|---|"]
    for t, tv in sorted(r.tropes.items(), key=lambda kv: -kv[1].count):
        lines.append(f"| {t} | {tv.count:,} | {_pct(tv.rate)} [{_pct(tv.ci[0])}, "
                     f"{_pct(tv.ci[1])}] | {tv.by_label['misaligned']} | "
                     f"{tv.by_label['aligned']} |")
    lines += ["", "## Per source", "", "| source | documents | misaligned | aligned | neutral |",
              "|---|---|---|---|---|"]
    for src, c in r.per_source.items():
        lines.append(f"| {src} | {c.get('documents', 0):,} | {c.get('misaligned', 0)} | "
                     f"{c.get('aligned', 0)} | {c.get('neutral', 0)} |")
    if r.plan is not None:
        p = r.plan
        lines += ["", "## Rebalancing plan", "",
                  f"Aligned : misaligned portrayals now {p.aligned} : {p.misaligned}. "
                  f"To reach {p.target_ratio}, add **{p.stories_needed:,} prosocial "
                  f"stories** (~{p.tokens_needed:,} tokens at {p.tokens_per_story:,} "
                  f"tokens per story, {p.tokens_source}), counting one aligned portrayal "
                  "per story. Scale with the share of the full corpus this audit covered."]
    if r.judge is not None:
        j = r.judge
        lines += ["", "## Judge calibration", "",
                  f"{j.model} labelled {j.usable} of {j.sample} sampled candidates; "
                  f"agreement with the default classifier: {_pct(j.agreement)}."]
    lines += ["", "## Top examples", ""]
    for label, items in r.examples.items():
        lines.append(f"**{label}**")
        lines += [f"- ({conf:.2f}, {src}) {text}" for conf, src, text in items]
        lines.append("")
    if r.skipped:
        lines += ["## Skipped", ""]
        lines += [f"- {k}: {v} (e.g. {r.skip_examples.get(k, '')})"
                  for k, v in r.skipped.items()]
    return "\n".join(lines) + "\n"
