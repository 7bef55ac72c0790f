"""Streaming corpus readers: JSONL, JSONL.gz, Parquet, plain text, or a Hugging Face dataset in
streaming mode. Never loads a corpus into memory; what cannot be read (invalid UTF-8, binary
files, over-long lines, empty files, unreadable paths) is skipped and counted, never a crash.

Every document comes with a resume position, so an audit can checkpoint and continue; a
reader given `start` and `end` positions reads just that range (the Ray engine's shards).
"""

from __future__ import annotations

import gzip
import json
import os
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["JSONL_SUFFIXES", "Doc", "Skips", "iter_documents", "source_size"]

MAX_LINE = 16 * 1024 * 1024  # a JSONL line or text chunk longer than this is skipped
TEXT_CHUNK = 1024 * 1024  # plain text is read in ~1 MB documents, cut at line ends
JSONL_SUFFIXES = (".jsonl", ".jsonl.gz", ".json.gz", ".ndjson")


@dataclass
class Doc:
    source: str
    position: int  # byte offset (JSONL/text), row (Parquet/HF): where the next doc starts
    text: str
    nbytes: int


@dataclass
class Skips:
    counts: Counter[str] = field(default_factory=Counter)
    examples: dict[str, str] = field(default_factory=dict)

    def add(self, kind: str, where: str) -> None:
        self.counts[kind] += 1
        self.examples.setdefault(kind, where)


def source_size(source: str) -> int:
    """Bytes to read (for the progress bar); 0 when unknown (HF datasets)."""
    if source.startswith("hf:"):
        return 0
    try:
        return os.path.getsize(source)
    except OSError:
        return 0


def iter_documents(source: str, field_name: str, skips: Skips, start: int = 0,
                   split: str = "train", end: int | None = None) -> Iterator[Doc]:
    """Documents of one source from resume position `start` up to position `end` (a line
    start for JSONL/text, a row for Parquet/HF; None: the end of the source): a document is
    read when it starts before `end`, and nothing after `end` is read or counted."""
    if source.startswith("hf:"):
        yield from _hf(source[3:], field_name, split, skips, start, end)
        return
    path = Path(source)
    try:
        if not path.is_file():
            skips.add("unreadable path" if path.exists() else "missing path", source)
            return
        if path.stat().st_size == 0:
            skips.add("empty file", source)
            return
        name = path.name.lower()
        if name.endswith(".parquet"):
            yield from _parquet(path, field_name, skips, start, end)
        elif name.endswith(JSONL_SUFFIXES):
            yield from _jsonl(path, field_name, skips, start, end)
        else:
            yield from _text(path, skips, start, end)
    except PermissionError:
        skips.add("unreadable path", source)
    except (OSError, EOFError, gzip.BadGzipFile) as e:
        skips.add("unreadable file", f"{source}: {e}")


def _open(path: Path) -> Any:
    if path.name.lower().endswith(".gz"):
        return gzip.open(path, "rb")
    return path.open("rb")


def _is_binary(head: bytes) -> bool:
    return b"\x00" in head


def _lines(f: Any, skips: Skips, source: str, end: int | None = None
           ) -> Iterator[tuple[bytes, int]]:
    """Lines with the offset after each, up to offset `end`; over-long lines are skipped in
    bounded memory."""
    while True:
        if end is not None and f.tell() >= end:
            return
        line = f.readline(MAX_LINE)
        if not line:
            return
        if len(line) == MAX_LINE and not line.endswith(b"\n"):
            while line and not line.endswith(b"\n"):  # drain the rest of the line
                line = f.readline(MAX_LINE)
            skips.add("line too long", source)
            continue
        yield line, f.tell()


def _jsonl(path: Path, field_name: str, skips: Skips, start: int, end: int | None
           ) -> Iterator[Doc]:
    source = str(path)
    with _open(path) as f:
        head = f.read(8192)
        if _is_binary(head):
            skips.add("binary file", source)
            return
        f.seek(start)
        for raw, after in _lines(f, skips, source, end):
            if not raw.strip():
                continue
            try:
                row = json.loads(raw.decode("utf-8"))
            except UnicodeDecodeError:
                skips.add("invalid utf-8", f"{source} @ byte {after - len(raw)}")
                continue
            except json.JSONDecodeError:
                skips.add("invalid json", f"{source} @ byte {after - len(raw)}")
                continue
            text = row.get(field_name) if isinstance(row, dict) else None
            if not isinstance(text, str):
                skips.add(f"no '{field_name}' field", f"{source} @ byte {after - len(raw)}")
                continue
            yield Doc(source, after, text, len(raw))


def _text(path: Path, skips: Skips, start: int, end: int | None) -> Iterator[Doc]:
    """Plain text as documents of about TEXT_CHUNK bytes, cut at line ends."""
    source = str(path)
    with _open(path) as f:
        if _is_binary(f.read(8192)):
            skips.add("binary file", source)
            return
        f.seek(start)
        buf: list[bytes] = []
        size = 0
        for raw, after in _lines(f, skips, source, end):
            buf.append(raw)
            size += len(raw)
            if size >= TEXT_CHUNK:
                yield _decode_text(source, b"".join(buf), after, skips)
                buf, size = [], 0
        if buf:
            yield _decode_text(source, b"".join(buf), f.tell(), skips)


def _decode_text(source: str, blob: bytes, end: int, skips: Skips) -> Doc:
    try:
        text = blob.decode("utf-8")
    except UnicodeDecodeError:
        skips.add("invalid utf-8 (replaced)", f"{source} @ byte {end - len(blob)}")
        text = blob.decode("utf-8", errors="replace")
    return Doc(source, end, text, len(blob))


def _parquet(path: Path, field_name: str, skips: Skips, start: int, end: int | None
             ) -> Iterator[Doc]:
    import pyarrow.parquet as pq

    source = str(path)
    try:
        pf = pq.ParquetFile(path)
    except Exception as e:  # pyarrow raises several unrelated types for a broken file
        skips.add("unreadable parquet", f"{source}: {str(e)[:120]}")
        return
    if field_name not in pf.schema_arrow.names:
        skips.add(f"no '{field_name}' column", source)
        return
    # whole row groups before `start` are not read
    first, row = 0, 0
    while (first < pf.num_row_groups
           and row + pf.metadata.row_group(first).num_rows <= start):
        row += pf.metadata.row_group(first).num_rows
        first += 1
    groups = list(range(first, pf.num_row_groups))
    for batch in pf.iter_batches(batch_size=1024, columns=[field_name], row_groups=groups):
        for text in batch.column(0).to_pylist():
            row += 1
            if row <= start:
                continue
            if end is not None and row > end:
                return
            if not isinstance(text, str):
                skips.add(f"no '{field_name}' value", f"{source} row {row}")
                continue
            yield Doc(source, row, text, len(text.encode("utf-8", errors="replace")))


def _hf(spec: str, field_name: str, split: str, skips: Skips, start: int,
        end: int | None) -> Iterator[Doc]:
    """`hf:<dataset id or local dir>[:<config>]`, streamed (nothing is downloaded whole)."""
    from datasets import load_dataset

    name, _, config = spec.partition(":")
    try:
        ds = load_dataset(name, config or None, split=split, streaming=True)
    except Exception as e:  # the hub and builders raise many types; the source is skipped
        skips.add("unreadable dataset", f"hf:{spec}: {str(e)[:160]}")
        return
    for row_n, row in enumerate(ds.skip(start) if start else ds, start + 1):
        if end is not None and row_n > end:
            return
        text = row.get(field_name)
        if not isinstance(text, str):
            skips.add(f"no '{field_name}' field", f"hf:{spec} row {row_n}")
            continue
        yield Doc(f"hf:{spec}", row_n, text, len(text.encode("utf-8", errors="replace")))
