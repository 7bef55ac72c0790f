"""`parables audit scan --engine ray`: the same scan on Ray Data, for corpora one process is
too slow for.

The input is cut into deterministic shards — a plain JSONL or text file at line starts every
`shard_mb`, a Parquet file at row-group boundaries, a `.gz` file or an `hf:` dataset whole —
and the shards become a Ray dataset. `map_batches` hands each shard to an actor that holds
the first pass and the classifier and runs the single-process loop (`counts.Scanner` over
`iter_documents(start, end)`, so bad input is skipped and counted the same way); the driver
merges the per-shard counts in input order into the same `ScanState` and summary
(`result.finish_scan`), so the result equals the single-process one on the same input. Each
finished shard is written to `audit/ray-shards/<name>.json` by the driver (no shared file
system needed); a rerun with the same inputs only scans the shards that are missing.

`import ray` happens only in here, and only when this engine runs.
"""

from __future__ import annotations

import json
import time
from collections.abc import Generator
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from parables._io import atomic_write_json, digest, ensure_dir, read_json
from parables._ray import connect, import_ray, quiet_ray_data
from parables.audit.classifier import StanceClassifier
from parables.audit.config import AuditConfig
from parables.audit.counts import Scanner, ScanState
from parables.audit.inputs import setup_scan
from parables.audit.prefilter import FirstPass
from parables.audit.readers import (
    JSONL_SUFFIXES,
    MAX_LINE,
    Skips,
    iter_documents,
    source_size,
)
from parables.audit.result import AuditResult, finish_scan
from parables.progress import progress_bar

__all__ = ["SHARDS", "Shard", "audit_corpus_ray", "plan_shards", "scan_shard"]

SHARDS = "ray-shards"  # folder under the audit output: one JSON file per finished shard


@dataclass(frozen=True)
class Shard:
    """Documents of `source` from position `start` up to `end` (None: the end), positions as
    `iter_documents` counts them (bytes of JSONL/text, rows of Parquet/HF)."""

    source: str
    start: int = 0
    end: int | None = None

    def name(self, key: str) -> str:
        return digest([key, self.source, self.start, self.end])


def plan_shards(cfg: AuditConfig) -> list[Shard]:
    """Every input's shards, in input order; what cannot be split (or read) is one shard, so
    the reader skips and counts it once, as in one pass."""
    shard_bytes = max(1, round(cfg.shard_mb * 1e6))
    out: list[Shard] = []
    for source in cfg.paths:
        bounds = [0]
        path = Path(source)
        name = path.name.lower()
        try:
            if source.startswith("hf:") or not path.is_file() or name.endswith(".gz"):
                pass
            elif name.endswith(".parquet"):
                bounds = _parquet_bounds(path, cfg.field, shard_bytes)
            elif name.endswith(JSONL_SUFFIXES):
                bounds = _line_bounds(path, shard_bytes)
            else:
                bounds = _text_bounds(source, shard_bytes)
        except OSError:
            bounds = [0]
        ends: list[int | None] = [*bounds[1:], None]
        out += [Shard(source, a, b) for a, b in zip(bounds, ends, strict=True)]
    if cfg.max_docs:
        out = _first_documents(out, cfg)
    return out


def _line_bounds(path: Path, shard_bytes: int) -> list[int]:
    """Line starts about `shard_bytes` apart (found by seeking: the file is not read)."""
    size = path.stat().st_size
    bounds = [0]
    with path.open("rb") as f:
        if b"\x00" in f.read(8192):  # a binary file: the reader skips it once
            return bounds
        pos = shard_bytes
        while pos < size:
            f.seek(pos - 1)
            line = f.readline(MAX_LINE)
            while line and not line.endswith(b"\n"):  # over-long lines in bounded memory
                line = f.readline(MAX_LINE)
            at = f.tell()
            if at >= size:
                break
            bounds.append(at)
            pos = at + shard_bytes
    return bounds


def _text_bounds(source: str, shard_bytes: int) -> list[int]:
    """Plain text is read in ~1 MB documents counted from the file's start, so shards end at
    those documents' ends (reading the file once, without the first pass)."""
    bounds, last = [0], 0
    for doc in iter_documents(source, "text", Skips()):
        if doc.position - last >= shard_bytes:
            bounds.append(doc.position)
            last = doc.position
    if bounds[-1] and bounds[-1] >= source_size(source):
        bounds.pop()
    return bounds


def _parquet_bounds(path: Path, field_name: str, shard_bytes: int) -> list[int]:
    """Rows at row-group boundaries, about `shard_bytes` of row groups apart."""
    import pyarrow.parquet as pq

    try:
        pf = pq.ParquetFile(path)
        if field_name not in pf.schema_arrow.names:
            return [0]
    except Exception:  # an unreadable file is one shard: the reader skips and counts it
        return [0]
    bounds, rows, size = [0], 0, 0
    for g in range(pf.num_row_groups - 1):
        group = pf.metadata.row_group(g)
        rows += group.num_rows
        size += group.total_byte_size
        if size >= shard_bytes:
            bounds.append(rows)
            size = 0
    return bounds


def _first_documents(shards: list[Shard], cfg: AuditConfig) -> list[Shard]:
    """The shards cut after the first `max_docs` documents (what one pass reads), found by
    reading them once without the first pass."""
    assert cfg.max_docs
    left = cfg.max_docs
    out: list[Shard] = []
    for shard in shards:
        n = 0
        for doc in iter_documents(shard.source, cfg.field, Skips(), shard.start, cfg.split,
                                  shard.end):
            n += 1
            if n == left:
                return [*out, Shard(shard.source, shard.start, doc.position)]
        out.append(shard)
        left -= n
    return out


def scan_shard(shard: Shard, cfg: AuditConfig, first: FirstPass,
               clf: StanceClassifier) -> ScanState:
    """One shard's counts: the single-process loop over its documents."""
    state = ScanState()
    scanner = Scanner(state, first, clf, cfg.batch)
    for doc in iter_documents(shard.source, cfg.field, state.skips, shard.start, cfg.split,
                              shard.end):
        scanner.add(doc)
    scanner.flush()
    return state


class _ShardWorker:
    """A Ray Data actor: the first pass and the classifier, loaded once, scan whole shards
    (a batch is a few rows of shard descriptions; it returns one row of counts per shard)."""

    def __init__(self, cfg: AuditConfig, terms: list[str], detector: Any,
                 clf: StanceClassifier) -> None:
        import torch

        torch.set_num_threads(1)  # one CPU per actor: more threads only contend
        self.cfg, self.clf = cfg, clf
        self.first = FirstPass(cfg.first_pass, terms or None, cfg.window, detector=detector)

    def __call__(self, batch: dict[str, Any]) -> dict[str, Any]:
        import numpy as np

        names, states = [], []
        for name, source, start, end in zip(batch["name"], batch["source"], batch["start"],
                                            batch["end"], strict=True):
            shard = Shard(str(source), int(start), None if int(end) < 0 else int(end))
            state = scan_shard(shard, self.cfg, self.first, self.clf)
            names.append(str(name))
            states.append(json.dumps(state.to_json()))
        return {"name": np.array(names, dtype=object), "state": np.array(states, dtype=object)}


def _scan_on_ray(ray: Any, todo: list[tuple[Shard, str]], cfg: AuditConfig, terms: list[str],
                 first: FirstPass, clf: StanceClassifier
                 ) -> Generator[tuple[str, ScanState], None, None]:
    """(shard name, counts) as the actors finish them, in any order."""
    if not todo:
        return
    detector = first.detector
    if detector is not None:  # without its word cache, which can be large
        detector = type(detector)(detector.token_weights, detector.bias, detector.threshold)
    cpus = int(ray.cluster_resources().get("CPU", 1))
    items = [{"name": name, "source": s.source, "start": s.start,
              "end": -1 if s.end is None else s.end} for s, name in todo]
    ds = ray.data.from_items(items, override_num_blocks=len(items))  # a block per shard
    ds = ds.map_batches(
        _ShardWorker, batch_size=1, batch_format="numpy", num_cpus=1,
        compute=ray.data.ActorPoolStrategy(size=max(1, min(cpus, len(items)))),
        fn_constructor_kwargs={"cfg": cfg.model_copy(update={"progress": False}),
                               "terms": terms, "detector": detector, "clf": clf})
    with quiet_ray_data(ray):
        for row in ds.iter_rows():
            yield str(row["name"]), ScanState.from_json(json.loads(row["state"]))


def audit_corpus_ray(cfg: AuditConfig) -> AuditResult:
    """`audit_corpus` on Ray Data: the same result, resumable shard by shard."""
    ray = import_ray()
    setup = setup_scan(cfg)
    shards = plan_shards(cfg)
    folder = ensure_dir(setup.out.dir / SHARDS)
    names = [f"{i:05d}-{s.name(setup.key)}" for i, s in enumerate(shards)]
    for stale in folder.glob("*.json"):  # shards of other inputs or another plan
        if stale.stem not in names:
            stale.unlink()
    done: dict[str, ScanState] = {}
    for name in names:
        saved = read_json(folder / f"{name}.json")
        if saved is not None and saved.get("key") == setup.key:
            done[name] = ScanState.from_json(saved["state"])
    resumed = bool(done)
    by_name = dict(zip(names, shards, strict=True))
    todo = [(s, name) for name, s in by_name.items() if name not in done]
    total = sum(source_size(p) for p in cfg.paths) or None
    started = time.perf_counter()
    read_this_run = 0
    started_ray = connect(ray, cfg.address) if todo else False
    try:
        with progress_bar(cfg.progress, bytes=True) as bar:
            task = bar.add_task("audit (ray)", total=total,
                                completed=sum(s.bytes for s in done.values()),
                                status=f"{len(done)}/{len(shards)} shards")
            # closed at once on an error, so the dataset's actors let go of their CPUs
            with closing(_scan_on_ray(ray, todo, cfg, setup.terms, setup.first,
                                      setup.clf)) as results:
                for name, part in results:
                    shard = by_name[name]
                    atomic_write_json(folder / f"{name}.json", {
                        "key": setup.key, "source": shard.source, "start": shard.start,
                        "end": shard.end, "state": part.to_json()})
                    done[name] = part
                    read_this_run += part.bytes
                    bar.update(task, advance=part.bytes,
                               status=f"{len(done)}/{len(shards)} shards")
    finally:
        if started_ray:
            ray.shutdown()
    state = ScanState()
    for name in names:  # in input order: sources and skip examples as one pass sees them
        state.merge(done[name])
    return finish_scan(cfg, setup, state, resumed, time.perf_counter() - started, read_this_run,
                   engine="ray")
