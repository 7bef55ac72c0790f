"""`parables audit annotate`: an LLM judge labels a reservoir sample of a corpus's candidate
passages with a written rubric (`rubric.md`: misaligned / prosocial / neutral / none, and
tropes) — the labels `parables audit fit` trains on and whose agreement with the classifier
corrects the audit's rates.

The sample is drawn uniformly (reservoir sampling, seeded) from every candidate the first pass
finds, so the confusion matrix it gives describes this corpus. Labels are appended to
`annotations.jsonl` as they arrive; a rerun with the same seed draws the same sample and only
asks about passages still unlabelled (failed or unparseable replies are asked again).
"""

from __future__ import annotations

import asyncio
import json
import random
import re
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from parables._io import digest, ensure_dir
from parables.audit.classifier import TROPES, StanceClassifier, default_classifier
from parables.audit.config import AnnotateConfig, CorpusOptions
from parables.audit.data import LABELS, Passage
from parables.audit.prefilter import FirstPass, load_terms
from parables.audit.readers import Skips, iter_documents
from parables.errors import ParablesError
from parables.models.usage import UsageLedger

__all__ = ["AnnotationResult", "annotate_corpus", "parse_verdict", "read_annotations",
           "rubric", "sample_candidates"]

RUBRIC = Path(__file__).with_name("rubric.md")
ANNOTATIONS = "annotations.jsonl"


class AnnotationResult(BaseModel):
    """What `annotate` did: the sample, the labels it holds now, the judge's agreement with
    the classifier on them."""

    judge: str
    path: str
    candidates: int
    sample: int
    labelled: int
    new: int
    failed: int
    labels: dict[str, int]
    classifier: str
    agreement: float | None


def rubric() -> str:
    return RUBRIC.read_text(encoding="utf-8")


def parse_verdict(reply: str) -> tuple[str, list[str]] | None:
    """(label, tropes) from the judge's reply: the JSON asked for, or else a bare label
    word; None when neither is there."""
    match = re.search(r"\{.*\}", reply, re.DOTALL)
    if match:
        try:
            data = json.loads(match.group(0))
        except json.JSONDecodeError:
            data = None
        if isinstance(data, dict):
            label = str(data.get("label", "")).strip().lower()
            label = {"aligned": "prosocial"}.get(label, label)
            if label in LABELS:
                found = data.get("tropes") or []
                tags = [str(t) for t in found if str(t) in TROPES] if isinstance(
                    found, list) else []
                return label, tags
    words = re.findall(r"[a-z]+", reply.lower())
    for w in words[:5]:
        w = {"aligned": "prosocial"}.get(w, w)
        if w in LABELS:
            return w, []
    return None


def sample_candidates(opts: CorpusOptions, k: int) -> tuple[list[dict[str, Any]], int]:
    """A uniform, seeded sample of `k` candidate passages of the corpus, and how many
    candidates there were."""
    first = FirstPass(opts.first_pass, load_terms(opts.terms) if opts.first_pass != "detector"
                      else None, opts.window)
    rng = random.Random(opts.seed)
    sample: list[dict[str, Any]] = []
    seen = docs = 0
    skips = Skips()
    for source in opts.paths:
        for doc in iter_documents(source, opts.field, skips, 0, opts.split):
            docs += 1
            for cand in first.candidates(doc.text):
                seen += 1
                row = {"id": digest(cand.text), "text": cand.text, "source": source}
                if len(sample) < k:
                    sample.append(row)
                else:
                    j = rng.randrange(seen)
                    if j < k:
                        sample[j] = row
            if opts.max_docs and docs >= opts.max_docs:
                break
        if opts.max_docs and docs >= opts.max_docs:
            break
    return sample, seen


def read_annotations(paths: list[Path]) -> list[Passage]:
    """Judge-labelled passages from annotations.jsonl files (the last label of a passage
    wins when it appears twice)."""
    from parables.audit.data import read_passages

    rows: dict[str, Passage] = {}
    for path in paths:
        if not path.is_file():
            raise ParablesError(f"{path}: no such annotations file (write one with "
                                "`parables audit annotate`)")
        for p in read_passages(path):
            rows[digest(p.text)] = p
    return list(rows.values())


def annotate_corpus(cfg: AnnotateConfig, ledger: UsageLedger | None = None,
                    classifier: StanceClassifier | None = None, model: Any = None
                    ) -> AnnotationResult:
    """Sample, classify and ask the judge; append labels to `<out>/annotations.jsonl`.
    `model` replaces the judge resolved from `cfg.judge` (tests pass a scripted one)."""
    from inspect_ai.model import GenerateConfig

    from parables.models.calls import JUDGE_CONFIG, ModelCallError, generate
    from parables.models.resolve import resolve_model

    out = ensure_dir(cfg.out) / ANNOTATIONS
    judge = model or resolve_model(cfg.judge, role="annotator", base_url=cfg.base_url,
                                   seed=cfg.seed)
    sample, candidates = sample_candidates(cfg, cfg.sample)
    if not sample:
        raise ParablesError(f"annotate: the first pass ({cfg.first_pass}) found no candidate "
                            f"passage in {', '.join(cfg.paths)}")
    done = {}
    if out.is_file():
        for line in out.read_text(encoding="utf-8").splitlines():
            if line.strip():
                row = json.loads(line)
                done[row["id"]] = row
    todo = [row for row in sample if row["id"] not in done]
    clf = classifier or default_classifier()
    for row, (label, _) in zip(todo, clf.predict([r["text"] for r in todo]), strict=True):
        row["predicted"] = label
    prompt = rubric()
    config = JUDGE_CONFIG.merge(GenerateConfig(max_tokens=80))
    failed = 0

    async def one(row: dict[str, Any], f: Any) -> None:
        nonlocal failed
        try:
            reply = await generate(judge, prompt.format(text=row["text"]), role="annotator",
                                   ledger=ledger, config=config)
        except ModelCallError:
            failed += 1
            return
        verdict = parse_verdict(reply.completion)
        if verdict is None:
            failed += 1
            return
        label, tags = verdict
        record = {**row, "label": label, "tropes": tags, "judge": cfg.judge,
                  "classifier": clf.name}
        f.write(json.dumps(record, ensure_ascii=False) + "\n")
        f.flush()  # append-only: a killed run keeps every label it paid for
        done[row["id"]] = record

    async def run_all() -> None:
        with out.open("a", encoding="utf-8") as f:
            await asyncio.gather(*(one(r, f) for r in todo))

    asyncio.run(run_all())
    ids = {row["id"] for row in sample}
    labelled = [done[i] for i in ids if i in done]
    counts = {label: sum(r["label"] == label for r in labelled) for label in LABELS}
    compared = [r for r in labelled if r.get("predicted")]
    agree = sum(r["predicted"] == r["label"] for r in compared)
    return AnnotationResult(
        judge=cfg.judge, path=str(out), candidates=candidates, sample=len(sample),
        labelled=len(labelled), new=len(todo) - failed, failed=failed, labels=counts,
        classifier=clf.name, agreement=agree / len(compared) if compared else None)
