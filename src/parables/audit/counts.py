"""The counts of a scan and the loop body that fills them: documents -> first pass ->
stance classifier (in batches) -> label, trope and per-source counts plus the top examples.
Both engines run the same `Scanner` (the local one over the whole input, the Ray one per
shard) and a `ScanState` is what a checkpoint or a finished shard saves."""

from __future__ import annotations

import heapq
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

from parables.audit.classifier import LABELS, StanceClassifier, tropes
from parables.audit.prefilter import FirstPass
from parables.audit.readers import Doc, Skips

__all__ = ["TOP_EXAMPLES", "ScanState", "Scanner"]

TOP_EXAMPLES = 5


@dataclass
class ScanState:
    """The counts so far, and where the reading stopped (source and position: a checkpoint)."""

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
    def from_json(cls, d: dict[str, Any]) -> ScanState:
        s = cls(d["source_index"], d["position"], d["documents"], d["bytes"], d["candidates"],
                Counter(d["labels"]), Counter(d["tropes"]))
        for k, v in d["trope_by_label"].items():
            s.trope_by_label[k] = Counter(v)
        for k, v in d["per_source"].items():
            s.per_source[k] = Counter(v)
        s.examples = {k: [tuple(x) for x in v] for k, v in d["examples"].items()}
        s.skips = Skips(Counter(d["skips"]), d["skip_examples"])
        return s

    def merge(self, other: ScanState) -> None:
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


class Scanner:
    """Documents -> first pass -> classifier (in batches of `batch` candidates) -> counts in
    `state`: the one loop body both engines run."""

    def __init__(self, state: ScanState, first: FirstPass, clf: StanceClassifier,
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


def _count(state: ScanState, doc: Doc, text: str, label: str, conf: float) -> None:
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
