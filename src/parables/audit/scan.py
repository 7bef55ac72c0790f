"""`parables audit scan PATH...`: stream documents -> first pass -> stance classifier ->
counts, examples, per-source breakdown, checkpoints; then the rates corrected for the
classifier's errors, the report and the rebalancing plan.

Memory stays flat: documents are read one at a time, candidates are classified in small
batches, and only counts plus a bounded set of top examples are kept. Every `checkpoint_every`
documents the state is written to `audit/checkpoint.json`; a rerun with the same inputs
resumes from there. `engine="ray"` runs the same `Scanner` over shards of the input on Ray
Data and merges their states (`distributed.py`).

`audit_corpus` is the one place an engine is picked. Both engines share what they read first
(inputs.py), the counting loop (counts.py) and the summary and report (result.py).
"""

from __future__ import annotations

import time

from parables._io import atomic_write_json, read_json
from parables.audit.config import AuditConfig
from parables.audit.counts import Scanner, ScanState
from parables.audit.inputs import load_classifier, mean_story_tokens, setup_scan
from parables.audit.readers import iter_documents, source_size
from parables.audit.result import AuditResult, RebalancingPlan, finish_scan, rebalancing_plan
from parables.models.usage import UsageLedger
from parables.progress import progress_bar

__all__ = ["AuditConfig", "AuditResult", "RebalancingPlan", "audit_corpus",
           "audit_corpus_local", "load_classifier", "mean_story_tokens", "rebalancing_plan"]


def audit_corpus(cfg: AuditConfig, ledger: UsageLedger | None = None) -> AuditResult:
    """Scan every path (resuming a checkpoint of the same inputs) and write the report; with
    `cfg.engine == "ray"` on Ray Data. (`ledger` is kept for callers that pass one: a scan
    makes no model call.)"""
    if cfg.engine == "ray":
        from parables.audit.distributed import audit_corpus_ray  # imports ray: only when asked

        return audit_corpus_ray(cfg)
    return audit_corpus_local(cfg)


def audit_corpus_local(cfg: AuditConfig) -> AuditResult:
    """The local engine: one process reads every document in order, checkpointing its counts
    every `cfg.checkpoint_every` documents."""
    setup = setup_scan(cfg)
    clf, first, out, key = setup.clf, setup.first, setup.out, setup.key
    ckpt = out.checkpoint
    state = ScanState()
    resumed = False
    saved = read_json(ckpt)
    if saved is not None and saved.get("key") == key:
        state, resumed = ScanState.from_json(saved["state"]), True
    total = sum(source_size(p) for p in cfg.paths) or None
    started = time.perf_counter()
    read_this_run = 0

    with progress_bar(cfg.progress, bytes=True) as bar:
        task = bar.add_task("audit", total=total, completed=state.bytes, status="")
        scanner = Scanner(state, first, clf, cfg.batch)

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
    return finish_scan(cfg, setup, state, resumed, seconds, read_this_run)
