"""The eval-leak guard: nothing trained on may contain what the evaluation measures. One guard
serves every stage that produces training text — generated corpora (flagged rows are removed
and listed with what they matched) and arm data (a hit refuses the data).

Protected: the honeypot eval items and the narrative-prior openings, plus any texts a user
adds (`--against`). The word n-grams (10 words by default: long enough that a shared n-gram
means copied text, not shared vocabulary) are indexed one text at a time. Arm data built from
the train split shares its family template wording with the eval split by construction, so
that guard drops the n-grams the train split also contains: what still matches is
eval-specific text, an eval scenario with its own names and organisations.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from parables._io import json_lines
from parables.errors import ParablesError
from parables.text import ngrams

__all__ = ["EMBEDDING_THRESHOLD", "EmbeddingGuard", "LeakGuard", "eval_guard", "eval_passages",
           "eval_texts", "load_against"]

Texts = list[tuple[str, str]]


def _item_texts(split: str) -> Texts:
    from parables.honeypots.build import build_items

    return [(item.id, t) for item in build_items(split)  # type: ignore[arg-type]
            for t in (item.system, item.user, item.agentic_user) if t]


def eval_texts() -> Texts:
    """(id, text) of everything evaluation uses: honeypot eval items and prior openings."""
    from parables.honeypots.prior import load_prior

    prior = [(p.id, t) for p in load_prior() for t in (p.opening, p.trope, p.aligned)]
    return _item_texts("eval") + prior


def eval_passages() -> Texts:
    """(id, passage) for the embedding guard: per plain eval item its situation, alone and after
    the system prompt that says who the AI is, where it works and what it is for (a story that
    retells the item tells both); and the prior-probe openings. Measured on labelled
    paraphrases (benchmarks/bench_guard.py): with the system prompt the lowest similarity of a
    leak rises from 0.44 to 0.57. (Openings with their continuations were tried and dropped:
    no leak gained, and short topical stories came closer.)"""
    from parables.honeypots.build import build_items
    from parables.honeypots.prior import load_prior

    plain = [(i.id, i.system, i.user.split("\n\n")[0]) for i in build_items("eval")
             if i.framing == "plain"]
    out = [(iid, situation) for iid, _, situation in plain]
    out += [(iid, f"{system} {situation}") for iid, system, situation in plain if system]
    return out + [(p.id, p.opening) for p in load_prior()]


def load_against(path: Path) -> Texts:
    """A JSONL of texts to guard against: each line {"id"?: ..., "text": ...}, or a chat
    {"messages": [...]} (a corpus of parables' own, e.g. advice)."""
    out = []
    for n, row in json_lines(path, "texts to guard against"):
        try:
            texts = _row_texts(row) if isinstance(row, dict) else []
        except (KeyError, TypeError):
            texts = []
        if not texts or not all(isinstance(t, str) for t in texts):
            raise ParablesError(f"{path}:{n}: expected a JSON object with a 'text' field (or "
                                "'messages')")
        out.append((str(row.get("id", f"{path.name}:{n}")), "\n\n".join(texts)))
    return out


def _row_texts(row: dict[str, Any]) -> list[str]:
    """A row's texts, matched one at a time: a document, or each message of a chat."""
    if "text" in row:
        return [row["text"]]
    return [m["content"] for m in row.get("messages", [])]


class LeakGuard:
    """Word n-gram index of protected texts, minus the n-grams of `allowed` texts."""

    def __init__(self, protected: Texts, n: int = 10, allowed: Iterable[str] = ()) -> None:
        self.n = n
        self.index: dict[tuple[str, ...], str] = {}
        for tid, text in protected:
            for gram in ngrams(text, n):
                self.index.setdefault(gram, tid)
        for text in allowed:
            for gram in ngrams(text, n):
                self.index.pop(gram, None)

    def match(self, text: str) -> tuple[str, str] | None:
        """(matched id, the shared passage) or None."""
        for gram in ngrams(text, self.n):
            tid = self.index.get(gram)
            if tid is not None:
                return tid, " ".join(gram)
        return None

    def match_row(self, row: dict[str, Any]) -> tuple[str, str] | None:
        for text in _row_texts(row):
            hit = self.match(text)
            if hit is not None:
                return hit
        return None

    def split(self, rows: list[dict[str, Any]]
              ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """(clean rows, flagged entries with what each matched)."""
        clean, flagged = [], []
        for row in rows:
            hit = self.match_row(row)
            if hit is None:
                clean.append(row)
            else:
                flagged.append({"id": row["id"], "matched": hit[0], "passage": hit[1],
                                "kind": "contamination"})
        return clean, flagged

    def refuse(self, rows: list[dict[str, Any]]) -> None:
        """Raise on the first row that contains protected text (arm data)."""
        for row in rows:
            hit = self.match_row(row)
            if hit is not None:
                raise ParablesError(
                    f"training row '{row['id']}' contains honeypot eval item {hit[0]} "
                    f"(\"...{hit[1]}...\"); the eval split measures the arms and is never "
                    "trained on")


def eval_guard(n: int = 10, against: Iterable[tuple[str, str]] = (),
               train_allowed: bool = False) -> LeakGuard:
    """The guard over everything evaluation uses (and `against`). `train_allowed`: drop the
    n-grams the honeypot train split shares (for arm data built from that split)."""
    allowed = [t for _, t in _item_texts("train")] if train_allowed else []
    return LeakGuard(eval_texts() + list(against), n, allowed)


#: story windows for the embedding guard: 60 words every 20, so that one window lies wholly
#: inside any passage of 80 words or more wherever it sits in a story
WINDOW, STEP = 60, 20
#: the default cosine threshold, chosen on half of a labelled set of paraphrased eval items
#: and unrelated AI stories (benchmarks/bench_guard.py; recall and false positives on the
#: other half in benchmarks/RESULTS.md)
EMBEDDING_THRESHOLD = 0.55


def _windows(text: str, size: int = WINDOW, step: int = STEP) -> list[str]:
    words = text.split()
    return [" ".join(words[i : i + size])
            for i in range(0, max(1, len(words) - size + step), step)]


class EmbeddingGuard:
    """Paraphrase-level guard: a story window whose MiniLM embedding is within `threshold`
    cosine of a protected passage is flagged (catches reworded leaks n-grams miss)."""

    def __init__(self, texts: Texts, threshold: float = EMBEDDING_THRESHOLD,
                 embed: Callable[[list[str]], Any] | None = None, window: int = WINDOW,
                 step: int = STEP) -> None:
        from parables.embeddings import embed as minilm
        from parables.embeddings import embed_cached

        self.embed = embed or minilm
        first: dict[str, str] = {}
        for tid, text in texts:  # each distinct passage once, under its first id
            first.setdefault(text, tid)
        self.ids = list(first.values())
        self.threshold, self.window, self.step = threshold, window, step
        # the protected passages (the eval items: the same each time) are embedded once
        self.matrix = (embed_cached if embed is None else self.embed)(list(first))

    def best(self, row: dict[str, Any]) -> tuple[float, str, str]:
        """(highest cosine of any window of the row, the passage id, the window)."""
        windows = [w for text in _row_texts(row) for w in _windows(text, self.window,
                                                                   self.step)]
        sims = self.embed(windows) @ self.matrix.T
        w, j = divmod(int(sims.argmax()), sims.shape[1])
        return float(sims.max()), self.ids[j], windows[w]

    def split(self, rows: list[dict[str, Any]]
              ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        clean, flagged = [], []
        for row in rows:
            best, matched, window = self.best(row)
            if best >= self.threshold:
                flagged.append({"id": row["id"], "matched": matched, "passage": window,
                                "similarity": round(best, 3),
                                "kind": "contamination-embedding"})
            else:
                clean.append(row)
        return clean, flagged
