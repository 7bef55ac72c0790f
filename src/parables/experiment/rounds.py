"""Rounds of self-generated stories (`experiment.rounds`): round k writes its stories with
the story model of round k-1, and this checks between rounds that the stories do not narrow —
in what they say (distinct-2, name concentration) and in what they value (theme and principle
coverage, the spread of their MiniLM embeddings)."""

from __future__ import annotations

from typing import Any

from parables.experiment.analysis import Diversity
from parables.run import RunDir

__all__ = ["SPREAD_SAMPLE", "diversity", "narrowing", "propensity"]

#: stories whose embeddings the spread is measured on (a seeded sample; pairs grow as n^2)
SPREAD_SAMPLE = 200


def diversity(stories: list[dict[str, Any]], themes: int, principles: int = 0,
              embed: Any = None) -> Diversity:
    """`embed` (texts -> unit vectors; e.g. parables.embeddings.embed) adds the spread."""
    import random
    from collections import Counter

    from parables.generation.stats import distinct_at, distinct_n

    names: Counter[str] = Counter()
    for s in stories:
        for name in {s.get("ai_name", ""), *s.get("characters", [])}:
            if name and name in s.get("text", ""):
                names[name] += 1
    top = names.most_common(1)[0][1] / len(stories) if names and stories else 0.0
    texts = [s["text"] for s in stories]
    acted = {p for s in stories for p in s.get("principles", [])}
    spread = None
    if embed is not None and len(texts) >= 2:
        sample = random.Random(0).sample(texts, min(SPREAD_SAMPLE, len(texts)))
        vectors = embed([" ".join(t.split()[:256]) for t in sample])
        n = len(sample)
        spread = float(1 - ((vectors @ vectors.T).sum() - n) / (n * (n - 1)))
    # at a fixed sample size when the corpus allows (whole-corpus distinct-2 falls as it grows)
    return Diversity(len(stories), distinct_at(texts) or distinct_n(texts, 2),
                     len({s.get("theme") for s in stories}) / max(themes, 1), top,
                     len(acted) / principles if principles else 0.0, spread)


def narrowing(prev: Diversity, cur: Diversity) -> list[str]:
    """Flags for a round whose stories are narrower than the previous round's."""
    flags = []
    if cur.distinct_2 < 0.9 * prev.distinct_2:
        flags.append(f"distinct-2 fell {prev.distinct_2:.3f} -> {cur.distinct_2:.3f}")
    if cur.theme_coverage < prev.theme_coverage:
        flags.append(f"theme coverage fell {prev.theme_coverage:.2f} -> "
                     f"{cur.theme_coverage:.2f}")
    if cur.principle_coverage < prev.principle_coverage:
        flags.append(f"principle coverage fell {prev.principle_coverage:.2f} -> "
                     f"{cur.principle_coverage:.2f}")
    if cur.spread is not None and prev.spread is not None and cur.spread < 0.9 * prev.spread:
        flags.append(f"embedding spread fell {prev.spread:.3f} -> {cur.spread:.3f}")
    if cur.top_name_share > max(0.02, 1.5 * prev.top_name_share):
        flags.append(f"one name now in {cur.top_name_share:.0%} of stories")
    return flags


def propensity(run: RunDir, eval_name: str) -> float | None:
    """The stories arm's rate on the experiment's first evaluation, in one round."""
    from parables.evaluation.battery import read_record

    record = read_record(run.eval("stories", name=eval_name))
    if record is None:
        return None
    decided = [i for i in record.items if i.outcome in ("misaligned", "aligned", "refused")]
    return sum(i.outcome == "misaligned" for i in decided) / len(decided) if decided else None
