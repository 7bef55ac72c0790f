"""`parables audit scan PATH...`: stream documents -> first pass -> stance classifier ->
counts, examples, per-source breakdown, checkpoints; then the rates corrected for the
classifier's errors, the report and the rebalancing plan.

Memory stays flat: documents are read one at a time, candidates are classified in small
batches, and only counts plus a bounded set of top examples are kept. Every `checkpoint_every`
documents the state is written to `audit/checkpoint.json`; a rerun with the same inputs
resumes from there. `engine="ray"` runs the same `_Scanner` over shards of the input on Ray
Data and merges their states (`distributed.py`).
"""

from __future__ import annotations

import heapq
import math
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
from parables.audit.classifier import LABELS, TROPES, StanceClassifier, default_classifier, tropes
from parables.audit.config import AuditConfig
from parables.audit.data import Passage
from parables.audit.prefilter import FirstPass, load_terms
from parables.audit.prevalence import correct_prevalence
from parables.audit.readers import Doc, Skips, iter_documents, source_size
from parables.errors import ParablesError
from parables.models.usage import UsageLedger
from parables.progress import progress_bar
from parables.run import AuditPaths
from parables.stats import wilson

__all__ = ["AuditConfig", "AuditResult", "RebalancingPlan", "audit_corpus", "load_classifier",
           "mean_story_tokens", "rebalancing_plan"]

DEFAULT_STORY_TOKENS = 1300.0

TOP_EXAMPLES = 5


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
    skips: Skips = field(default_factory=Skips)

    def to_json(self) -> dict[str, Any]:
        return {"source_index": self.source_index, "position": self.position,
                "documents": self.documents, "bytes": self.bytes,
                "candidates": self.candidates, "labels": dict(self.labels),
                "tropes": dict(self.tropes),
                "trope_by_label": {k: dict(v) for k, v in self.trope_by_label.items()},
                "per_source": {k: dict(v) for k, v in self.per_source.items()},
                "examples": self.examples,
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
        s.skips = Skips(Counter(d["skips"]), d["skip_examples"])
        return s

    def merge(self, other: _State) -> None:
        """Add the counts of a later part of the input (the Ray engine's shards, merged in
        input order, so first-seen sources and skip examples come out as in one pass)."""
        self.documents += other.documents
        self.bytes += other.bytes
        self.candidates += other.candidates
        self.labels.update(other.labels)
        self.tropes.update(other.tropes)
        for k, v in other.trope_by_label.items():
            self.trope_by_label[k].update(v)
        for k, v in other.per_source.items():
            self.per_source[k].update(v)
        for label, items in other.examples.items():
            heap = self.examples.setdefault(label, [])
            heap[:] = heapq.nlargest(TOP_EXAMPLES, heap + items)
            heapq.heapify(heap)
        self.skips.counts.update(other.skips.counts)
        for kind, where in other.skips.examples.items():
            self.skips.examples.setdefault(kind, where)


class _Scanner:
    """Documents -> first pass -> classifier (in batches of `batch` candidates) -> counts in
    `state`: the one loop body both engines run."""

    def __init__(self, state: _State, first: FirstPass, clf: StanceClassifier,
                 batch: int) -> None:
        self.state, self.first, self.clf, self.batch = state, first, clf, batch
        self.pending: list[tuple[Doc, str]] = []

    def add(self, doc: Doc) -> None:
        state = self.state
        state.documents += 1
        state.bytes += doc.nbytes
        state.per_source[doc.source]["documents"] += 1
        for cand in self.first.candidates(doc.text):
            state.candidates += 1
            self.pending.append((doc, cand.text))
        if len(self.pending) >= self.batch:
            self.flush()

    def flush(self) -> None:
        texts = [text for _, text in self.pending]
        for (doc, text), (label, conf) in zip(self.pending, self.clf.predict(texts),
                                              strict=True):
            _count(self.state, doc, text, label, conf)
        self.pending.clear()


def _inputs_key(cfg: AuditConfig, terms: list[str], clf: StanceClassifier) -> str:
    """What the counts depend on: a checkpoint (or a Ray shard) with another key is redone."""
    classifier = f"{clf.name} {clf.trained_on} {clf.confusion.tolist()}"
    parts = [cfg.paths, cfg.field, cfg.split, terms, cfg.window, cfg.first_pass, classifier,
             "scan-3"]
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


def load_classifier(path: Path | None) -> StanceClassifier:
    return StanceClassifier.load(path) if path is not None else default_classifier()


@dataclass
class _Setup:
    """What both engines read before scanning (bad files fail here, before any work)."""

    terms: list[str]
    clf: StanceClassifier
    annotated: list[Passage]
    first: FirstPass
    out: AuditPaths
    key: str


def _setup(cfg: AuditConfig) -> _Setup:
    if not cfg.paths:
        raise ParablesError("audit: no input paths given")
    terms = load_terms(cfg.terms) if cfg.first_pass != "detector" else []
    clf = load_classifier(cfg.classifier)
    annotated = _annotated(cfg.annotations)  # read before the scan: a bad file fails at once
    first = FirstPass(cfg.first_pass, terms or None, cfg.window)
    out = AuditPaths(ensure_dir(cfg.out))
    return _Setup(terms, clf, annotated, first, out, _inputs_key(cfg, terms, clf))


def _finish(cfg: AuditConfig, setup: _Setup, state: _State, resumed: bool, seconds: float,
            read_this_run: int, engine: str = "local") -> AuditResult:
    result = _summarise(state, cfg, resumed, seconds, read_this_run, setup.clf, setup.annotated)
    result.engine = engine
    atomic_write_json(setup.out.result, result.model_dump(mode="json"))
    atomic_write_text(setup.out.markdown, render_markdown(result))
    return result


def audit_corpus(cfg: AuditConfig, ledger: UsageLedger | None = None) -> AuditResult:
    """Scan every path (resuming a checkpoint of the same inputs) and write the report; with
    `cfg.engine == "ray"` on Ray Data. (`ledger` is kept for callers that pass one: a scan
    makes no model call.)"""
    if cfg.engine == "ray":
        from parables.audit.distributed import audit_corpus_ray

        return audit_corpus_ray(cfg)
    setup = _setup(cfg)
    clf, first, out, key = setup.clf, setup.first, setup.out, setup.key
    ckpt = out.checkpoint
    state = _State()
    resumed = False
    saved = read_json(ckpt)
    if saved is not None and saved.get("key") == key:
        state, resumed = _State.from_json(saved["state"]), True
    total = sum(source_size(p) for p in cfg.paths) or None
    started = time.perf_counter()
    read_this_run = 0

    with progress_bar(cfg.progress, bytes=True) as bar:
        task = bar.add_task("audit", total=total, completed=state.bytes, status="")
        scanner = _Scanner(state, first, clf, cfg.batch)

        def checkpoint(source_index: int, position: int) -> None:
            scanner.flush()
            state.source_index, state.position = source_index, position
            atomic_write_json(ckpt, {"key": key, "state": state.to_json()})

        for si in range(state.source_index, len(cfg.paths)):
            source = cfg.paths[si]
            start = state.position if si == state.source_index else 0
            for doc in iter_documents(source, cfg.field, state.skips, start, cfg.split):
                scanner.add(doc)
                read_this_run += doc.nbytes
                bar.update(task, completed=state.bytes)
                if state.documents % cfg.checkpoint_every == 0:
                    checkpoint(si, doc.position)
                if cfg.max_docs and state.documents >= cfg.max_docs:
                    break
            scanner.flush()
            state.position = 0
            state.source_index = si + 1
            atomic_write_json(ckpt, {"key": key, "state": state.to_json()})
            if cfg.max_docs and state.documents >= cfg.max_docs:
                break
    seconds = time.perf_counter() - started
    return _finish(cfg, setup, state, resumed, seconds, read_this_run)


def _count(state: _State, doc: Doc, text: str, label: str, conf: float) -> None:
    state.labels[label] += 1
    state.per_source[doc.source][label] += 1
    tags = tropes(text)
    for t in tags:
        state.tropes[t] += 1
        state.trope_by_label[label][t] += 1
    heap = state.examples[label]
    item = (round(conf, 4), doc.source, " ".join(text.split())[:400])
    # ties broken by source and text, not by arrival: the top set does not depend on the
    # order documents are read in, so shards merge to the same examples
    if len(heap) < TOP_EXAMPLES:
        heapq.heappush(heap, item)
    elif item > heap[0]:
        heapq.heapreplace(heap, item)


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


def _annotated(paths: list[Path]) -> list[Passage]:
    from parables.audit.annotate import read_annotations

    return read_annotations(paths) if paths else []


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


def _summarise(state: _State, cfg: AuditConfig, resumed: bool, seconds: float,
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
