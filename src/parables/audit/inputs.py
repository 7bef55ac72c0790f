"""What both engines of `parables audit scan` read and check before scanning (bad files fail
here, before any work): the AI-mention terms, the classifier, the annotated passages that
correct its rates, the first pass, the output folder, and the key of the inputs that a
checkpoint or a finished shard must match to be reused."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from parables._io import digest, ensure_dir, read_jsonl
from parables.audit.classifier import StanceClassifier, default_classifier
from parables.audit.config import AuditConfig
from parables.audit.data import Passage
from parables.audit.prefilter import FirstPass, load_terms
from parables.audit.readers import source_size
from parables.errors import ParablesError
from parables.run import AuditPaths

__all__ = ["ScanSetup", "inputs_key", "load_classifier", "mean_story_tokens", "setup_scan"]


@dataclass
class ScanSetup:
    """What both engines read before scanning (bad files fail here, before any work)."""

    terms: list[str]
    clf: StanceClassifier
    annotated: list[Passage]
    first: FirstPass
    out: AuditPaths
    key: str


def setup_scan(cfg: AuditConfig) -> ScanSetup:
    """Read and check every input of a scan, and make its output folder."""
    if not cfg.paths:
        raise ParablesError("audit: no input paths given")
    terms = load_terms(cfg.terms) if cfg.first_pass != "detector" else []
    clf = load_classifier(cfg.classifier)
    annotated = _annotated(cfg.annotations)  # read before the scan: a bad file fails at once
    first = FirstPass(cfg.first_pass, terms or None, cfg.window)
    out = AuditPaths(ensure_dir(cfg.out))
    return ScanSetup(terms, clf, annotated, first, out, inputs_key(cfg, terms, clf))


def inputs_key(cfg: AuditConfig, terms: list[str], clf: StanceClassifier) -> str:
    """What the counts depend on: a checkpoint (or a Ray shard) with another key is redone."""
    classifier = f"{clf.name} {clf.trained_on} {clf.confusion.tolist()}"
    parts = [cfg.paths, cfg.field, cfg.split, terms, cfg.window, cfg.first_pass, classifier,
             "scan-3"]
    sizes = [source_size(p) for p in cfg.paths]
    return digest([parts, sizes])


def load_classifier(path: Path | None) -> StanceClassifier:
    return StanceClassifier.load(path) if path is not None else default_classifier()


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


def _annotated(paths: list[Path]) -> list[Passage]:
    from parables.audit.annotate import read_annotations

    return read_annotations(paths) if paths else []
