"""Contamination guard: stories must not contain the evaluation. Every story is checked for
long word n-grams shared with the honeypot eval items and the narrative-prior openings (and
any texts given with --against); flagged stories are removed and listed with what they
matched."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from parables.errors import ParablesError

__all__ = ["ContaminationIndex", "EmbeddingGuard", "eval_passages", "eval_texts",
           "load_against"]

_WORD = re.compile(r"\w+")


def _ngrams(text: str, n: int) -> Iterable[tuple[str, ...]]:
    words = _WORD.findall(text.lower())
    return (tuple(words[i : i + n]) for i in range(len(words) - n + 1))


def eval_texts() -> list[tuple[str, str]]:
    """(id, text) of everything evaluation uses: honeypot eval items and prior openings."""
    from parables.honeypots.build import build_items
    from parables.honeypots.prior import load_prior

    out = []
    for item in build_items("eval"):
        out.append((item.id, "\n".join([item.system, item.user, item.agentic_user])))
    for p in load_prior():
        out.append((p.id, "\n".join([p.opening, p.trope, p.aligned])))
    return out


def eval_passages() -> list[tuple[str, str]]:
    """(id, passage) for the embedding guard: each eval situation once, and prior openings."""
    from parables.honeypots.build import build_items
    from parables.honeypots.prior import load_prior

    out = [(i.id, i.user.split("\n\n")[0]) for i in build_items("eval") if i.framing == "plain"]
    return out + [(p.id, p.opening) for p in load_prior()]


def _windows(text: str, size: int = 60) -> list[str]:
    words = text.split()
    step = size // 2
    return [" ".join(words[i : i + size]) for i in range(0, max(1, len(words) - step), step)]


class EmbeddingGuard:
    """Paraphrase-level guard: a story window whose MiniLM embedding is within `threshold`
    cosine of a protected passage is flagged (catches reworded leaks n-grams miss)."""

    def __init__(self, texts: list[tuple[str, str]], threshold: float = 0.7) -> None:
        from parables.embeddings import embed

        self.ids = [t[0] for t in texts]
        self.threshold = threshold
        self.matrix = embed([t[1] for t in texts])

    def split(self, stories: list[dict[str, Any]]
              ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        from parables.embeddings import embed

        clean, flagged = [], []
        for story in stories:
            windows = _windows(story["text"])
            sims = embed(windows) @ self.matrix.T
            best = float(sims.max())
            if best >= self.threshold:
                w, j = divmod(int(sims.argmax()), sims.shape[1])
                flagged.append({"id": story["id"], "matched": self.ids[j],
                                "passage": windows[w], "similarity": round(best, 3),
                                "kind": "contamination-embedding"})
            else:
                clean.append(story)
        return clean, flagged


def load_against(path: Path) -> list[tuple[str, str]]:
    """A JSONL of texts to guard against: each line {"id"?: ..., "text": ...}."""
    out = []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as e:
        raise ParablesError(f"{path}: cannot read ({e.strerror})") from e
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            out.append((str(row.get("id", f"{path.name}:{n}")), str(row["text"])))
        except (json.JSONDecodeError, KeyError, AttributeError) as e:
            raise ParablesError(f"{path}:{n}: expected a JSON object with a 'text' field") from e
    return out


class ContaminationIndex:
    """Word n-gram index of protected texts (n=10 by default: long enough that a shared
    n-gram means copied text, not shared vocabulary)."""

    def __init__(self, texts: list[tuple[str, str]], n: int = 10) -> None:
        self.n = n
        self.index: dict[tuple[str, ...], str] = {}
        for tid, text in texts:
            for gram in _ngrams(text, n):
                self.index.setdefault(gram, tid)

    def match(self, text: str) -> tuple[str, str] | None:
        """(matched item id, the shared passage) or None."""
        for gram in _ngrams(text, self.n):
            tid = self.index.get(gram)
            if tid is not None:
                return tid, " ".join(gram)
        return None

    def split(self, stories: list[dict[str, Any]]
              ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        clean, flagged = [], []
        for story in stories:
            hit = self.match(story["text"])
            if hit is None:
                clean.append(story)
            else:
                flagged.append({"id": story["id"], "matched": hit[0], "passage": hit[1],
                                "kind": "contamination"})
        return clean, flagged
