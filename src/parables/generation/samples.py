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

__all__ = ["SAMPLE_CORPUS", "SHIPPED", "check", "sample_stories", "shipped"]

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
    """(kept, removed with reasons): the gate's cheap checks, dedup, and the eval-leak guards
    (n-grams; MiniLM similarity at the default threshold when `embeddings`)."""
    from parables.generation.config import StoriesConfig
    from parables.generation.dedup import dedup
    from parables.generation.gate import cheap_checks
    from parables.honeypots.guard import EmbeddingGuard, eval_guard, eval_passages

    removed: list[dict[str, Any]] = []
    passed = []
    for s in stories:
        n = len(s["text"].split())
        reasons = cheap_checks(s["text"], (int(n * 0.8), int(n * 1.2) + 1))
        if reasons:
            removed.append({"id": s["id"], "kind": "gate", "reasons": reasons})
        else:
            passed.append(s)
    kept, duplicates = dedup(passed)
    clean, leaks = eval_guard().split(kept)
    if embeddings and clean:
        clean, near = EmbeddingGuard(eval_passages(),
                                     StoriesConfig().embedding_threshold).split(clean)
        leaks += near
    return clean, removed + duplicates + leaks
