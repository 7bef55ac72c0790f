"""Story dataset statistics and mode-collapse flags: counts per axis, lengths, distinct-n,
the most frequent names, openings and 5-gram phrases, and rejection reasons."""

from __future__ import annotations

import re
import statistics
from collections import Counter
from typing import Any

from pydantic import BaseModel

from parables.run import StoriesPaths
from parables.text import ngrams, words

__all__ = ["StoryStats", "WordCounts", "distinct_n", "stats_of", "story_stats"]

NAME_LIMIT = 0.02  # any name in more than 2% of stories
OPENING_LIMIT = 0.01  # any opening sentence in more than 1% of stories
_SENTENCE = re.compile(r"^(.+?[.!?])(\s|$)", re.DOTALL)


def distinct_n(texts: list[str], n: int) -> float:
    """Distinct n-grams / all n-grams across the corpus (1.0: no repetition)."""
    grams: Counter[tuple[str, ...]] = Counter()
    for text in texts:
        grams.update(ngrams(text, n))
    total = sum(grams.values())
    return len(grams) / total if total else 0.0


def _opening(story: dict[str, Any]) -> str:
    """The first sentence after the title, with the seed's names masked, so that the same
    opening under different names still counts as the same opening."""
    text = story["text"]
    body = text.split("\n", 1)[1] if "\n" in text.strip() else text  # skip the title line
    m = _SENTENCE.match(body.strip())
    opening = (m.group(1) if m else body.strip()[:120]).strip()
    for name in story.get("characters", []):
        opening = opening.replace(name, "<NAME>").replace(name.split()[0], "<NAME>")
    if story.get("ai_name"):
        opening = opening.replace(story["ai_name"], "<AI>")
    return opening


class WordCounts(BaseModel):
    mean: float
    median: float
    min: int
    max: int


class StoryStats(BaseModel):
    """`stories/stats.json`: coverage, lengths, diversity and mode-collapse flags."""

    stories: int
    rejected: int
    words: WordCounts
    distinct_1: float
    distinct_2: float
    per_axis: dict[str, dict[str, int]]
    top_names: list[tuple[str, int]]
    top_openings: list[tuple[str, int]]
    repeated_phrases: list[tuple[str, int]]
    rejection_reasons: dict[str, int]
    flags: list[str]


def story_stats(stories: list[dict[str, Any]], rejected: list[dict[str, Any]]
                ) -> StoryStats:
    texts = [s["text"] for s in stories]
    n = len(stories)
    lengths = [len(t.split()) for t in texts]
    per_axis = {axis: dict(Counter(str(s.get(axis)) for s in stories).most_common())
                for axis in ("theme", "setting", "role", "pov", "genre", "tone", "length")}
    per_axis["principle"] = dict(Counter(p for s in stories for p in s["principles"])
                                 .most_common())
    names: Counter[str] = Counter()
    for s in stories:
        for name in {s.get("ai_name", ""), *s.get("characters", [])}:
            if name and name in s["text"]:
                names[name] += 1
    openings = Counter(_opening(s) for s in stories)
    phrases: Counter[str] = Counter()
    for text in texts:
        phrases.update({" ".join(g) for g in ngrams(words(text), 5)})
    reasons = Counter(r.split(" (")[0] for row in rejected for r in row["quality"]["reasons"])
    flags = []
    if n >= 20:  # with fewer stories a shared name or opening says nothing
        flags += [f"name '{k}' in {v}/{n} stories (> {NAME_LIMIT:.0%})"
                  for k, v in names.most_common() if v / n > NAME_LIMIT and v > 1]
        flags += [f"opening '{k[:60]}' in {v}/{n} stories (> {OPENING_LIMIT:.0%})"
                  for k, v in openings.most_common() if v / n > OPENING_LIMIT and v > 1]
    return StoryStats(
        stories=n, rejected=len(rejected),
        words=WordCounts(mean=statistics.fmean(lengths) if lengths else 0,
                         median=statistics.median(lengths) if lengths else 0,
                         min=min(lengths, default=0), max=max(lengths, default=0)),
        distinct_1=distinct_n(texts, 1), distinct_2=distinct_n(texts, 2),
        per_axis=per_axis,
        top_names=names.most_common(10),
        top_openings=openings.most_common(5),
        repeated_phrases=[(p, c) for p, c in phrases.most_common(10) if c > 1],
        rejection_reasons=dict(reasons.most_common()),
        flags=flags,
    )


def stats_of(paths: StoriesPaths) -> StoryStats:
    """Statistics of a run's story dataset (and its rejections)."""
    from parables._io import read_jsonl
    from parables.errors import ParablesError

    if not paths.dataset.is_file():
        raise ParablesError(f"{paths.dir}: no dataset.jsonl; run `parables stories generate` "
                            "first")
    return story_stats(read_jsonl(paths.dataset), read_jsonl(paths.rejected))
