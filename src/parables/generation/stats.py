"""Story dataset statistics and mode-collapse flags: counts per axis, lengths, distinct-n,
the most frequent names, openings and 5-gram phrases, and rejection reasons.

The flags scale with the seed design and the corpus size instead of fixed shares:

- a name is flagged when it appears in more stories than the seed design gives it — a one-sided
  binomial test against its expected share (`name_shares`: 1/30 for an AI name, ~1/594 for a
  character's full name), Holm-corrected over every name tested;
- an opening sentence (names masked) likewise, against the share of one setting x genre cell of
  the design (stories that share where and how they are told may open alike; more is collapse);
- diversity: distinct-2 over a fixed sample of DIVERSITY_SAMPLE bigrams (distinct-n falls as a
  corpus grows, so the corpus-wide value cannot take a fixed floor), flagged below
  DISTINCT2_FLOOR — calibrated on varied and collapsed corpora in benchmarks/bench_diversity.py.
"""

from __future__ import annotations

import random
import re
import statistics
from collections import Counter
from typing import Any

from pydantic import BaseModel

from parables.run import CorpusPaths
from parables.text import ngrams, words

__all__ = ["DISTINCT2_FLOOR", "DIVERSITY_SAMPLE", "FLAG_ALPHA", "StoryStats", "WordCounts",
           "corpus_stats", "distinct_at", "distinct_draws", "distinct_n", "over_represented",
           "stats_of",
           "story_stats"]

#: family-wise error rate of the name and opening flags (Holm over everything tested): a
#: balanced corpus raises a false flag in at most 1 run in 100
FLAG_ALPHA = 0.01
#: distinct-2 is compared over this many bigrams (~17 stories of 300 words)
DIVERSITY_SAMPLE = 5000
#: below this distinct-2 (over DIVERSITY_SAMPLE bigrams) a corpus is flagged as collapsed
DISTINCT2_FLOOR = 0.6
_SENTENCE = re.compile(r"^(.+?[.!?])(\s|$)", re.DOTALL)
_TOKEN = re.compile(r"\w+")


def distinct_n(texts: list[str], n: int) -> float:
    """Distinct n-grams / all n-grams across the corpus (1.0: no repetition). It falls as the
    corpus grows; compare corpora of different sizes with `distinct_at`."""
    grams: Counter[tuple[str, ...]] = Counter()
    for text in texts:
        grams.update(ngrams(text, n))
    total = sum(grams.values())
    return len(grams) / total if total else 0.0


def distinct_at(texts: list[str], n: int = 2, size: int = DIVERSITY_SAMPLE, draws: int = 10,
                seed: int = 0) -> float | None:
    """Distinct-n over exactly `size` n-grams, comparable across corpus sizes: stories are taken
    in a seeded random order and their n-grams pooled until `size` (the mean over `draws`
    orders). None when the whole corpus has fewer than `size` n-grams."""
    values = distinct_draws(texts, n, size, draws, seed)
    return statistics.fmean(values) if values else None


def distinct_draws(texts: list[str], n: int = 2, size: int = DIVERSITY_SAMPLE,
                   draws: int = 10, seed: int = 0) -> list[float]:
    """The single draws behind `distinct_at` (empty when the corpus is too small)."""
    per_story = [list(ngrams(t, n)) for t in texts]
    if sum(len(g) for g in per_story) < size:
        return []
    rng = random.Random(seed)
    values = []
    for _ in range(draws):
        order = list(range(len(per_story)))
        rng.shuffle(order)
        pooled: list[tuple[str, ...]] = []
        for i in order:
            pooled += per_story[i]
            if len(pooled) >= size:
                break
        values.append(len(set(pooled[:size])) / size)
    return values


def over_represented(counts: dict[str, int], shares: dict[str, float], n: int,
                     alpha: float = FLAG_ALPHA) -> list[tuple[str, int, float, float]]:
    """(key, count, expected count, p) for each key whose count is significantly above
    n x its expected share: one-sided binomial tests, Holm's step-down over all of `shares`
    (the hypotheses tested; keys with no expected share are not tested)."""
    from scipy.stats import binom

    tested = sorted(shares)
    if not tested or n == 0:
        return []
    ks = [counts.get(k, 0) for k in tested]
    ps = [float(binom.sf(k - 1, n, min(shares[key], 1.0))) if k else 1.0
          for key, k in zip(tested, ks, strict=True)]
    out = []
    m = len(tested)
    for rank, i in enumerate(sorted(range(m), key=lambda i: ps[i])):
        if ps[i] > alpha / (m - rank):
            break
        out.append((tested[i], ks[i], n * shares[tested[i]], ps[i]))
    return out


def _title_line(line: str) -> bool:
    """A title on the first line: short, and not a sentence."""
    return len(line.split()) <= 12 and not line.rstrip().endswith(".")


def _opening(story: dict[str, Any]) -> str:
    """The first sentence after the title, with the seed's names masked, so that the same
    opening under different names still counts as the same opening."""
    text = story["text"].strip()
    first, _, rest = text.partition("\n")
    body = rest if rest.strip() and _title_line(first) else text
    m = _SENTENCE.match(body.strip())
    opening = (m.group(1) if m else body.strip()[:120]).strip()
    for name in story.get("characters", []):
        opening = opening.replace(name, "<NAME>").replace(name.split()[0], "<NAME>")
    if story.get("ai_name"):
        opening = opening.replace(story["ai_name"], "<AI>")
    return opening


def _names_in(text: str, names: set[str], starts: set[str], longest: int) -> set[str]:
    """The names (whole words, case kept) that occur in a text; `starts`: their first words."""
    toks = _TOKEN.findall(text)
    present = set()
    for i, tok in enumerate(toks):
        if tok in starts:
            for size in range(1, longest + 1):
                gram = " ".join(toks[i : i + size])
                if gram in names:
                    present.add(gram)
    return present


def _name_counts(stories: list[dict[str, Any]], pool: set[str]) -> Counter[str]:
    """Stories whose text holds each name: every name of the seed design, and any other name a
    seed gave — counted wherever it occurs, so a writer that puts its favourite name into
    stories seeded with other names is caught, not only the seeds' own draws."""
    norm = {" ".join(_TOKEN.findall(n)): n for n in pool}
    for s in stories:
        for name in (s.get("ai_name", ""), *s.get("characters", [])):
            if name:
                norm.setdefault(" ".join(_TOKEN.findall(name)), name)
    norm.pop("", None)
    longest = max((k.count(" ") + 1 for k in norm), default=1)
    keys, starts = set(norm), {k.split()[0] for k in norm}
    counts: Counter[str] = Counter()
    for s in stories:
        counts.update(norm[k] for k in _names_in(s["text"], keys, starts, longest))
    return counts


def _opening_share(axes: dict[str, Any]) -> float:
    """An opening's expected share at most: one setting x genre cell of the design."""
    return 1 / (len(axes["settings"]) * len(axes["genres"]))


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
    #: distinct-2 over DIVERSITY_SAMPLE bigrams (None: a smaller corpus), comparable across sizes
    distinct_2_sample: float | None = None


def story_stats(stories: list[dict[str, Any]], rejected: list[dict[str, Any]],
                axes: dict[str, Any] | None = None) -> StoryStats:
    """Statistics and flags; `axes`: the seed design the stories were drawn from (default:
    the shipped one), which sets each name's and opening's expected share."""
    from parables.generation.seeds import load_axes, name_shares

    axes = axes or load_axes()
    return _stats(stories, rejected, ("theme", "setting", "role", "pov", "genre", "tone",
                                      "length"), name_shares(axes), _opening_share(axes), "stories")


def corpus_stats(rows: list[dict[str, Any]], rejected: list[dict[str, Any]],
                 kind: str = "stories") -> StoryStats:
    """`story_stats` for any corpus kind, over the kind's own axes and seed design."""
    from parables.generation.kinds import corpus_text, get_kind

    if kind == "stories":
        return story_stats(rows, rejected)
    k = get_kind(kind)
    as_text = [r if isinstance(r.get("text"), str) else {**r, "text": corpus_text(r)}
               for r in rows]
    return _stats(as_text, rejected, k.stat_axes, k.name_shares(), k.opening_share())


def _stats(stories: list[dict[str, Any]], rejected: list[dict[str, Any]],
           axes_counted: tuple[str, ...], shares: dict[str, float],
           opening_share: float, plural: str = "texts") -> StoryStats:
    texts = [s["text"] for s in stories]
    n = len(stories)
    lengths = [len(t.split()) for t in texts]
    per_axis = {axis: dict(Counter(str(s.get(axis)) for s in stories).most_common())
                for axis in axes_counted}
    per_axis["principle"] = dict(Counter(p for s in stories for p in s.get("principles", []))
                                 .most_common())
    names = _name_counts(stories, set(shares))
    openings = Counter(_opening(s) for s in stories)
    phrases: Counter[str] = Counter()
    for text in texts:
        phrases.update({" ".join(g) for g in ngrams(words(text), 5)})
    reasons = Counter(r.split(" (")[0] for row in rejected for r in row["quality"]["reasons"])
    flags = []
    m = len(shares)
    flags += [f"name '{k}' in {v}/{n} {plural} (seed design: {e:.1f} expected; binomial "
              f"p={p:.1g}, Holm over {m} names)"
              for k, v, e, p in over_represented(dict(names), shares, n)]
    flags += [f"opening '{k[:60]}' in {v}/{n} {plural} (one cell of the design: {e:.1f} "
              f"expected; binomial p={p:.1g}, Holm over {len(openings)} openings)"
              for k, v, e, p in over_represented(dict(openings),
                                                 dict.fromkeys(openings, opening_share), n)]
    sample = distinct_at(texts)
    if sample is not None and sample < DISTINCT2_FLOOR:
        flags.append(f"distinct-2 over {DIVERSITY_SAMPLE} bigrams is {sample:.3f} "
                     f"(< {DISTINCT2_FLOOR}: {plural} repeat one another)")
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
        distinct_2_sample=sample,
    )


def stats_of(paths: CorpusPaths) -> StoryStats:
    """Statistics of a run's corpus dataset (and its rejections)."""
    from parables._io import read_jsonl
    from parables.errors import ParablesError

    if not paths.dataset.is_file():
        raise ParablesError(f"{paths.dir}: no dataset.jsonl; run `parables generate --kind "
                            f"{paths.kind}` first")
    return corpus_stats(read_jsonl(paths.dataset), read_jsonl(paths.rejected), paths.kind)
