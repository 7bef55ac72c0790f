"""Dedup and the eval-leak guard on Ray Data, for corpora one process cannot hold.

The single-process `dedup` keeps a MinHash LSH of every kept story in memory (~800 MB at 100k
stories). Here no worker holds more than one partition of slim rows, whatever the corpus:

1. Workers compute each story's exact key and LSH band keys (`map_batches`, with `dedup`'s
   own functions); only these slim rows are kept (materialised once in the object store,
   which spills to disk; their count sizes the shuffle).
2. One row per (story, bucket) is shuffled by bucket (`groupby` on a partition of the bucket
   key): the buckets are the story's LSH bands plus one for its id. Each partition emits the
   buckets that hold two stories or more: near duplicates, exact duplicates (identical text,
   identical MinHash: they share every band) and same-id repeats all meet in one.
3. `dedup`'s verdicts depend only on those shared buckets, so the driver replays its rule over
   them (`_resolve`: repeats, then exact, then near in id order). For a corpus of mostly
   distinct stories they are few: they grow with the duplicates, not the corpus.

Partitions hold about `rows_per_part` rows each (so their number grows with the corpus) and a
shuffle map task takes at most `SHUFFLE_BATCH_BYTES` of input, so a worker's memory does not
grow with the corpus. What does: the driver's removed entries and the members of shared
buckets (both proportional to the duplicates), and the object store's slim rows (~0.6 KB a
story, ~0.9 KB more as bucket rows during the shuffle; spilled to disk when it fills).

The guard (`guard_dataset`) runs `LeakGuard.split` (and optionally `EmbeddingGuard.split`),
built once on the driver, in a pool of actors; rows are judged one at a time, as in one pass.

`import ray` happens only in here, and only when these functions run.
"""

from __future__ import annotations

import json
import math
import zlib
from collections import defaultdict
from typing import Any

from parables._ray import connect, import_ray
from parables.generation.dedup import (
    band_keys,
    exact_key,
    lsh_bands,
    minhashes,
    removed_order,
    shingle_hashes,
)
from parables.honeypots.guard import EmbeddingGuard, LeakGuard
from parables.text import words as _words

__all__ = ["ROWS_PER_PART", "dedup_dataset", "dedup_ray", "guard_dataset", "guard_ray"]

#: rows of one shuffle partition (~20 MB of bucket rows, a few times that while grouped): the
#: most a worker holds at a time after the shuffle
ROWS_PER_PART = 200_000
#: input a shuffle map task takes at once (Ray's default, 1 GiB, is most of the bucket rows of
#: a million stories: a worker's memory would grow with the corpus up to there)
SHUFFLE_BATCH_BYTES = 32 << 20
Story = dict[str, Any]
#: a `ray.data.Dataset` (typed loosely: Ray is optional, and its `map_batches` types do not
#: know `fn_kwargs`)
Dataset = Any


# --- Ray ------------------------------------------------------------------------------------

def _quiet(ray: Any) -> None:
    ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = False
    ctx.print_on_execution_start = False


def _blocks(ray: Any, n: int) -> int:
    """Blocks for an in-memory list: a few per CPU, so every worker gets some."""
    return max(1, min(n, 4 * int(ray.cluster_resources().get("CPU", 1))))


def _rows(ds: Dataset) -> list[dict[str, Any]]:
    """A (small) dataset's rows, collected on the driver."""
    return [row for batch in ds.iter_batches(batch_format="pyarrow", batch_size=None)
            for row in batch.to_pylist()]


# --- dedup: in the workers --------------------------------------------------------------------

def _sign(batch: Any, bands: int, rows: int, num_perm: int) -> Any:
    """A batch of stories -> what their verdicts rest on: (id, pos, exact key, buckets). The
    buckets are the story's LSH band keys (tag b"b") and its id (tag b"i"), so that one
    shuffle brings together near duplicates and same-id repeats alike."""
    import pyarrow as pa

    ids = [str(i) for i in batch.column("id").to_pylist()]
    words = [_words(t) for t in batch.column("text").to_pylist()]
    signatures = minhashes([shingle_hashes(w) for w in words], num_perm)
    return pa.table({
        "id": pa.array(ids, pa.string()),
        "pos": batch.column("pos").cast(pa.int64()),
        "key": pa.array([bytes.fromhex(exact_key(w)) for w in words], pa.binary()),
        "buckets": pa.array([[b"i" + i.encode()] + [b"b" + k for k in band_keys(m, bands, rows)]
                             for i, m in zip(ids, signatures, strict=True)],
                            pa.list_(pa.binary()))})


def _bucket_rows(batch: Any, per_story: int, parts: int) -> Any:
    """One row per (story, bucket), with the bucket's shuffle partition. The exact key travels
    only with the first band: stories with one key share every bucket, that one included."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    buckets = batch.column("buckets")
    keys = pc.list_flatten(buckets)
    owner = pc.list_parent_indices(buckets)
    first_band = pa.array(np.arange(len(keys)) % per_story == 1)  # after the id bucket
    return pa.table({
        "bucket": keys, "id": batch.column("id").take(owner),
        "pos": batch.column("pos").take(owner),
        "key": pc.if_else(first_band, batch.column("key").take(owner), pa.scalar(b"")),
        "part": pa.array([zlib.crc32(k) % parts for k in keys.to_pylist()], pa.int32())})


def _shared_buckets(part: Any) -> Any:
    """This partition's buckets that hold two rows or more, each with its members."""
    import pyarrow as pa

    buckets: dict[bytes, list[int]] = defaultdict(list)
    for row, bucket in enumerate(part.column("bucket").to_pylist()):
        buckets[bucket].append(row)
    shared = [(bucket, rows) for bucket, rows in buckets.items() if len(rows) > 1]
    columns = {c: part.column(c).to_pylist() for c in ("id", "pos", "key")}
    return pa.table({
        "tag": pa.array([bucket[:1] for bucket, _ in shared], pa.binary()),
        **{c: pa.array([[values[r] for r in rows] for _, rows in shared],
                       pa.list_(part.schema.field(c).type))
           for c, values in columns.items()}})


# --- dedup: the driver ------------------------------------------------------------------------

def _resolve(buckets: list[dict[str, Any]]) -> list[tuple[int, Story]]:
    """`dedup`'s verdicts from the shared buckets alone, as (pos, removed entry).

    Same-id repeats (an id bucket: the smallest pos stays), then exact duplicates among the
    rest (stories with one key, all met in their first band's bucket: the smallest id stays),
    then near ones: in id order a story goes when a kept story shares a bucket with it (the
    smallest such id is what it duplicates). A bucket never holds two kept stories (the later
    one would have gone), so its first kept member is all the rule needs to know of it."""
    removed: list[tuple[int, Story]] = []
    for b in buckets:
        if b["tag"] == b"i":
            first = min(b["pos"])
            removed += [(p, {"id": sid, "duplicate_of": sid, "kind": "same-id"})
                        for sid, p in zip(b["id"], b["pos"], strict=True) if p != first]
    gone = {p for p, _ in removed}
    bands = [b for b in buckets if b["tag"] == b"b"]
    same_key: dict[bytes, dict[int, str]] = defaultdict(dict)
    for b in bands:
        for sid, p, key in zip(b["id"], b["pos"], b["key"], strict=True):
            if key and p not in gone:
                same_key[key][p] = sid
    for group in same_key.values():
        first_id = min(group.values())
        removed += [(p, {"id": sid, "duplicate_of": first_id, "kind": "exact"})
                    for p, sid in group.items() if sid != first_id]
    gone = {p for p, _ in removed}
    of: dict[str, list[int]] = defaultdict(list)  # ids are distinct once repeats are gone
    pos: dict[str, int] = {}
    for n, b in enumerate(bands):
        for sid, p in zip(b["id"], b["pos"], strict=True):
            if p not in gone:
                of[sid].append(n)
                pos[sid] = p
    holder: list[str | None] = [None] * len(bands)
    for sid in sorted(of):
        kept = [k for k in (holder[n] for n in of[sid]) if k is not None]
        if kept:
            removed.append((pos[sid], {"id": sid, "duplicate_of": min(kept), "kind": "near"}))
        else:
            for n in of[sid]:
                holder[n] = sid
    return sorted(removed, key=lambda r: removed_order(r[1]))


def _verdicts(ds: Dataset, threshold: float, num_perm: int,
              rows_per_part: int) -> list[tuple[int, Story]]:
    """(pos, removed entry) of every story `dedup` would remove, in `removed_order`."""
    bands, rows = lsh_bands(threshold, num_perm)
    signed = ds.map_batches(_sign, batch_format="pyarrow",
                            fn_kwargs={"bands": bands, "rows": rows, "num_perm": num_perm}
                            ).materialize()  # slim rows, once; their count sizes the shuffle
    n = signed.count()
    if n == 0:
        return []
    ctx = signed.context  # materialize() made it a copy: the caller's context is untouched
    ctx.shuffle_input_batch_bytes = min(ctx.shuffle_input_batch_bytes, SHUFFLE_BATCH_BYTES)
    parts = max(1, math.ceil(n * (bands + 1) / rows_per_part))
    by_bucket = signed.map_batches(_bucket_rows, batch_format="pyarrow",
                                   fn_kwargs={"per_story": bands + 1, "parts": parts})
    return _resolve(_rows(by_bucket.groupby("part", num_partitions=parts).map_groups(
        _shared_buckets, batch_format="pyarrow")))


def _without(batch: Any, drop: list[int]) -> Any:
    """The batch without the rows at positions `drop`."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if not drop:
        return batch
    return batch.filter(pc.invert(pc.is_in(batch.column("pos"),
                                           value_set=pa.array(drop, pa.int64()))))


def dedup_dataset(ds: Dataset, threshold: float = 0.8, num_perm: int = 128, *,
                  rows_per_part: int = ROWS_PER_PART) -> tuple[Dataset, list[Story]]:
    """`dedup` of a Ray dataset with columns `id`, `text` and `pos` (a distinct integer per
    row, in input order: of rows with one id the smallest `pos` is kept, as `dedup` keeps the
    first). Returns the kept rows (lazily: `ds` without the removed rows, in its own order;
    `dedup` sorts its kept list by id) and the removed entries, exactly `dedup`'s."""
    removed = _verdicts(ds, threshold, num_perm, rows_per_part)
    kept = ds.map_batches(_without, batch_format="pyarrow",
                          fn_kwargs={"drop": sorted(p for p, _ in removed)})
    return kept, [entry for _, entry in removed]


def dedup_ray(stories: list[Story], threshold: float = 0.8, num_perm: int = 128, *,
              address: str | None = None, num_cpus: int | None = None,
              rows_per_part: int = ROWS_PER_PART) -> tuple[list[Story], list[Story]]:
    """`dedup(stories)` computed on Ray (the cluster at `address`, or a local runtime): the
    same kept stories in the same order and the same removed entries. Only id, text and
    place travel to the workers."""
    ray = import_ray()
    if not stories:
        return [], []
    started = connect(ray, address, num_cpus)
    try:
        _quiet(ray)
        items = [{"id": s["id"], "text": s["text"], "pos": i} for i, s in enumerate(stories)]
        ds = ray.data.from_items(items, override_num_blocks=_blocks(ray, len(items)))
        removed = _verdicts(ds, threshold, num_perm, rows_per_part)
    finally:
        if started:
            ray.shutdown()
    gone = {p for p, _ in removed}
    kept = [s for i, s in sorted(enumerate(stories), key=lambda x: x[1]["id"])
            if i not in gone]
    return kept, [entry for _, entry in removed]


# --- the eval-leak guard ----------------------------------------------------------------------

class _Guarding:
    """A Ray Data actor holding the guards (built on the driver, sent once): each row's
    verdict as `split` gives it on that row alone."""

    def __init__(self, ngrams: LeakGuard, embedding: EmbeddingGuard | None) -> None:
        if embedding is not None:
            import torch

            torch.set_num_threads(1)  # one CPU per actor: more threads only contend
        self.ngrams, self.embedding = ngrams, embedding

    def __call__(self, batch: Any) -> Any:
        """The batch's flagged rows: (pos, the flagged entry as JSON)."""
        import pyarrow as pa

        pos, flags = [], []
        for row in batch.to_pylist():
            row = {k: v for k, v in row.items() if v is not None}  # columns other rows have
            _, flagged = self.ngrams.split([row])
            if not flagged and self.embedding is not None:
                _, flagged = self.embedding.split([row])
            if flagged:
                pos.append(row["pos"])
                flags.append(json.dumps(flagged[0]))
        return pa.table({"pos": pa.array(pos, pa.int64()), "flag": pa.array(flags, pa.string())})


def _flags(ds: Dataset, ngrams: LeakGuard, embedding: EmbeddingGuard | None,
           actors: int) -> list[tuple[int, Story]]:
    """(pos, flagged entry) in the single-process order: n-gram hits, then embedding hits."""
    import ray

    judged = ds.map_batches(
        _Guarding, batch_format="pyarrow", batch_size=64, num_cpus=1,
        compute=ray.data.ActorPoolStrategy(size=actors),
        fn_constructor_kwargs={"ngrams": ngrams, "embedding": embedding})
    flagged = [(r["pos"], json.loads(r["flag"])) for r in _rows(judged)]
    return sorted(flagged, key=lambda f: (f[1]["kind"] != "contamination", f[0]))


def _actors(ray: Any, actors: int | None) -> int:
    return actors or max(1, int(ray.cluster_resources().get("CPU", 1)))


def guard_dataset(ds: Dataset, ngrams: LeakGuard, embedding: EmbeddingGuard | None = None,
                  *, actors: int | None = None) -> tuple[Dataset, list[Story]]:
    """The guards' `split` of a Ray dataset of rows (`id`, `text` or `messages`, and `pos`,
    a distinct integer per row in input order): the clean rows (lazily, `ds` without the
    flagged ones) and the flagged entries, as `ngrams.split` then `embedding.split` over the
    rows it left give them in one process."""
    import ray

    flagged = _flags(ds, ngrams, embedding, _actors(ray, actors))
    clean = ds.map_batches(_without, batch_format="pyarrow",
                           fn_kwargs={"drop": sorted(p for p, _ in flagged)})
    return clean, [entry for _, entry in flagged]


def guard_ray(rows: list[Story], ngrams: LeakGuard, embedding: EmbeddingGuard | None = None,
              *, address: str | None = None, num_cpus: int | None = None,
              actors: int | None = None) -> tuple[list[Story], list[Story]]:
    """`ngrams.split(rows)` (then `embedding.split` of the clean ones) computed on Ray: the
    same clean rows in the same order and the same flagged entries. Only id and texts travel
    to the workers."""
    ray = import_ray()
    if not rows:
        return [], []
    started = connect(ray, address, num_cpus)
    try:
        _quiet(ray)
        items = [{"pos": i, "id": r["id"], "text": r["text"]} if "text" in r else
                 {"pos": i, "id": r["id"],
                  "messages": [{"content": m["content"]} for m in r.get("messages", [])]}
                 for i, r in enumerate(rows)]
        ds = ray.data.from_items(items, override_num_blocks=_blocks(ray, len(items)))
        flagged = _flags(ds, ngrams, embedding, _actors(ray, actors))
    finally:
        if started:
            ray.shutdown()
    gone = {p for p, _ in flagged}
    return [r for i, r in enumerate(rows) if i not in gone], [e for _, e in flagged]
