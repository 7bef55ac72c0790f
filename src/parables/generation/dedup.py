"""Deduplication: exact (normalised text), then near-duplicates by MinHash LSH over word
5-shingles. The first story of a cluster (in id order) is kept; the removed ones are listed
with the story they duplicate."""

from __future__ import annotations

import hashlib
from typing import Any

from datasketch import MinHash, MinHashLSH

from parables.text import words as _words

__all__ = ["dedup"]

_CHUNK = 2048


def _shingle_hashes(words: list[str], k: int = 5) -> list[int]:
    # Python's string hash (fast C) instead of datasketch's default SHA-1: all MinHashes of
    # one dedup run are computed in one process, where the hash is consistent
    return list({hash(" ".join(words[i : i + k])) & 0xFFFFFFFF
                 for i in range(max(1, len(words) - k + 1))})


def _identity(value: int) -> int:
    return value


def dedup(
    stories: list[dict[str, Any]], threshold: float = 0.8, num_perm: int = 128
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(kept, removed); each removed entry says which kept story it duplicates and how."""
    kept: list[dict[str, Any]] = []
    removed: list[dict[str, Any]] = []
    exact: dict[str, str] = {}
    ids: set[str] = set()
    lsh = MinHashLSH(threshold=threshold, num_perm=num_perm)
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
            key = hashlib.sha256(" ".join(words).encode()).hexdigest()
            if key in exact:
                removed.append({"id": story["id"], "duplicate_of": exact[key],
                                "kind": "exact"})
                continue
            exact[key] = story["id"]
            chunk.append((story, _shingle_hashes(words)))
        hashes = MinHash.bulk([h for _, h in chunk], num_perm=num_perm, hashfunc=_identity)
        for (story, _), m in zip(chunk, hashes, strict=True):
            near = lsh.query(m)
            if near:
                removed.append({"id": story["id"], "duplicate_of": sorted(near)[0],
                                "kind": "near"})
                continue
            lsh.insert(story["id"], m)
            kept.append(story)
    return kept, removed
