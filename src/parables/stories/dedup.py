"""Deduplication: exact (normalised text), then near-duplicates by MinHash LSH over word
5-shingles. The first story of a cluster (in id order) is kept; the removed ones are listed
with the story they duplicate."""

from __future__ import annotations

import hashlib
import re
from typing import Any

from datasketch import MinHash, MinHashLSH

__all__ = ["dedup"]

_WORD = re.compile(r"\w+")


def _words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def _minhash(words: list[str], num_perm: int, k: int = 5) -> MinHash:
    m = MinHash(num_perm=num_perm)
    shingles = {" ".join(words[i : i + k]) for i in range(max(1, len(words) - k + 1))}
    m.update_batch([s.encode() for s in shingles])
    return m


def dedup(
    stories: list[dict[str, Any]], threshold: float = 0.8, num_perm: int = 128
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(kept, removed); each removed entry says which kept story it duplicates and how."""
    kept: list[dict[str, Any]] = []
    removed: list[dict[str, Any]] = []
    exact: dict[str, str] = {}
    lsh = MinHashLSH(threshold=threshold, num_perm=num_perm)
    for story in sorted(stories, key=lambda s: s["id"]):
        words = _words(story["text"])
        key = hashlib.sha256(" ".join(words).encode()).hexdigest()
        if key in exact:
            removed.append({"id": story["id"], "duplicate_of": exact[key], "kind": "exact"})
            continue
        m = _minhash(words, num_perm)
        near = lsh.query(m)
        if near:
            removed.append({"id": story["id"], "duplicate_of": sorted(near)[0],
                            "kind": "near"})
            continue
        exact[key] = story["id"]
        lsh.insert(story["id"], m)
        kept.append(story)
    return kept, removed
