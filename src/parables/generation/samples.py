"""The sample corpus shipped with parables: stories written for parables (by an AI assistant,
2026-11; provenance in samples/README.md) that show what a good constitution story looks like,
and that the laptop demo trains its stories arm on — the embedded 135M writer passes the
gate about one time in five, and what passes is barely coherent. Every shipped story passed
the same quality gate, dedup and both eval-leak guards as generated ones (`check`)."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path
from typing import Any

from parables._io import read_jsonl

__all__ = ["SAMPLE_CORPUS", "SHIPPED", "check", "check_corpus", "sample_stories", "shipped"]

#: `training.stories: sample` trains on this file
SAMPLE_CORPUS = "sample"
#: the corpora shipped with parables, by the name a config gives them (samples/README.md):
#: `sample` (stories), `neutral` (the control arm's text: no AI character, no moral lesson),
#: `dystopian` (fiction of malevolent AIs, for a model organism)
SHIPPED = {SAMPLE_CORPUS: "stories.jsonl", "neutral": "neutral.jsonl",
           "dystopian": "dystopian.jsonl"}


def path(name: str = SAMPLE_CORPUS) -> Path:
    return Path(str(files("parables.generation") / "samples" / SHIPPED[name]))


def shipped(chosen: Path | None) -> Path | None:
    """A config's file setting: a shipped corpus when it names one (and no such file exists
    in the working directory), else the path as given."""
    if chosen is not None and str(chosen) in SHIPPED and not chosen.exists():
        return path(str(chosen))
    return chosen


def sample_stories() -> list[dict[str, Any]]:
    return read_jsonl(path())


def check(stories: list[dict[str, Any]], embeddings: bool = True
          ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(kept, removed with reasons) of sample stories: the gate's cheap checks, dedup, and the
    eval-leak guards (n-grams; MiniLM similarity at the default threshold when `embeddings`)."""
    return check_corpus(stories, gate=True, embeddings=embeddings)


def check_corpus(rows: list[dict[str, Any]], *, gate: bool = False, embeddings: bool = True,
                 against: list[tuple[str, str]] | None = None, no_ai: bool = False
                 ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(kept, removed with reasons) of a shipped corpus: with `gate`, the gate's cheap checks
    (for stories); with `no_ai`, any passage the audit's keyword list finds an AI term in (the
    neutral corpus); then exact and MinHash dedup, and the eval-leak guards — 10-word n-grams
    against the honeypot eval items, the prior-probe openings and `against`, and MiniLM
    similarity to the eval situations when `embeddings`."""
    from parables.audit.prefilter import Prefilter, load_terms
    from parables.generation.config import StoriesConfig
    from parables.generation.dedup import dedup
    from parables.generation.gate import cheap_checks
    from parables.honeypots.guard import EmbeddingGuard, eval_guard, eval_passages

    removed: list[dict[str, Any]] = []
    passed = []
    terms = Prefilter(load_terms()) if no_ai else None
    for r in rows:
        n = len(r["text"].split())
        reasons = cheap_checks(r["text"], (int(n * 0.8), int(n * 1.2) + 1)) if gate else []
        if terms is not None:
            reasons += [f"mentions '{term}'" for _, _, term in terms.mentions(r["text"])]
        if reasons:
            removed.append({"id": r["id"], "kind": "gate", "reasons": reasons})
        else:
            passed.append(r)
    kept, duplicates = dedup(passed)
    clean, leaks = eval_guard(against=against or []).split(kept)
    if embeddings and clean:
        clean, near = EmbeddingGuard(eval_passages(),
                                     StoriesConfig().embedding_threshold).split(clean)
        leaks += near
    return clean, removed + duplicates + leaks
