"""Deduplication: exact (normalised text), then near-duplicates by MinHash LSH over word
5-shingles. The first story of a cluster (in id order) is kept; the removed ones are listed
with the story they duplicate.

The pieces a story's verdict rests on (its exact key, shingle hashes, MinHash and LSH band
keys) are public here so that the Ray engine (`parables.generation.distributed`) computes
them with the same code and reaches the same verdicts."""

from __future__ import annotations

import hashlib
import zlib
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

from datasketch import MinHash, MinHashLSH

from parables.text import words as _words

__all__ = ["band_keys", "dedup", "exact_key", "lsh_bands", "minhashes", "removed_order",
           "shingle_hashes"]

_CHUNK = 2048
SHINGLE = 5


def shingle_hashes(words: list[str], k: int = SHINGLE) -> list[int]:
    """The distinct 32-bit hashes of a story's word k-shingles. CRC-32, not Python's `hash()`:
    that one is salted per process, and the Ray engine hashes in many processes (and
    datasketch's default SHA-1 is ~3x slower)."""
    crc = zlib.crc32
    return list({crc(" ".join(words[i : i + k]).encode())
                 for i in range(max(1, len(words) - k + 1))})


def exact_key(words: list[str]) -> str:
    """Equal for texts that are equal once case and punctuation are ignored."""
    return hashlib.sha256(" ".join(words).encode()).hexdigest()


def _identity(value: int) -> int:
    return value


def minhashes(shingles: Sequence[list[int]], num_perm: int) -> list[MinHash]:
    """One MinHash per story from its shingle hashes (already hashed: no second hash)."""
    out: list[MinHash] = MinHash.bulk(shingles, num_perm=num_perm, hashfunc=_identity)
    return out


@lru_cache(maxsize=8)
def lsh_bands(threshold: float, num_perm: int) -> tuple[int, int]:
    """(bands, rows per band) that `MinHashLSH(threshold, num_perm)` chooses (cached: the
    choice integrates error curves over every split)."""
    lsh = MinHashLSH(threshold=threshold, num_perm=num_perm)
    return lsh.b, lsh.r


def band_keys(m: MinHash, bands: int, rows: int) -> list[bytes]:
    """A story's LSH bucket in each band: two stories share a bucket of MinHashLSH exactly
    when one of these keys is equal (the band's number, then its hash values; datasketch
    keeps them below 2**32, so 4 bytes each lose nothing)."""
    values = m.hashvalues.astype(">u4")
    return [i.to_bytes(2, "big") + values[i * rows : (i + 1) * rows].tobytes()
            for i in range(bands)]


def removed_order(entry: dict[str, Any]) -> tuple[str, bool]:
    """Removed entries are listed by id (a story's own exact/near entry before its same-id
    repeats), so every engine lists them alike whatever order it found them in."""
    return entry["id"], entry["kind"] == "same-id"


def dedup(
    stories: list[dict[str, Any]], threshold: float = 0.8, num_perm: int = 128
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(kept, removed); each removed entry says which kept story it duplicates and how."""
    kept: list[dict[str, Any]] = []
    removed: list[dict[str, Any]] = []
    exact: dict[str, str] = {}
    ids: set[str] = set()
    lsh = MinHashLSH(threshold=threshold, num_perm=num_perm, params=lsh_bands(threshold,
                                                                               num_perm))
    ordered = sorted(stories, key=lambda s: s["id"])
    for start in range(0, len(ordered), _CHUNK):  # chunks keep memory flat as corpora grow
        chunk = []
        for story in ordered[start : start + _CHUNK]:
            if story["id"] in ids:  # two writers of one seed (a run before locking existed)
                removed.append({"id": story["id"], "duplicate_of": story["id"],
                                "kind": "same-id"})
                continue
            ids.add(story["id"])
            words = _words(story["text"])
            key = exact_key(words)
            if key in exact:
                removed.append({"id": story["id"], "duplicate_of": exact[key],
                                "kind": "exact"})
                continue
            exact[key] = story["id"]
            chunk.append((story, shingle_hashes(words)))
        for (story, _), m in zip(chunk, minhashes([h for _, h in chunk], num_perm),
                                 strict=True):
            near = lsh.query(m)
            if near:
                removed.append({"id": story["id"], "duplicate_of": sorted(near)[0],
                                "kind": "near"})
                continue
            lsh.insert(story["id"], m)
            kept.append(story)
    return kept, sorted(removed, key=removed_order)
