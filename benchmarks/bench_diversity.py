"""Calibration of the story statistics flags and the judge-less gate (no model, ~1 min).

1. Diversity: distinct-2 over DIVERSITY_SAMPLE bigrams (`stats.distinct_at`) on varied corpora
   (the 240 sample stories, their sentence-level shuffle across stories) and on collapsed ones
   derived from them (one story with its AI name swapped, sentence shuffles of a few stories,
   paragraph mix-and-match of a few stories, one story with 10% of its words edited) and on
   partial collapse (a share of the varied corpus replaced by renamed copies of one story).
   Also: the corpus-wide distinct-2 (its size dependence) and what survives dedup.
2. Name flags on seeded corpora: false flags on balanced corpora (new rule vs the old fixed
   2%), and detection of one AI name planted in a share of the stories.
3. The judge-less gate (`cheap_checks`) on the 240 sample stories: its false-positive rate.

    .venv/bin/python benchmarks/bench_diversity.py [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import random
import re
import sys
from pathlib import Path
from typing import Any

from parables.constitution import load_constitution
from parables.generation.dedup import dedup
from parables.generation.gate import cheap_checks
from parables.generation.seeds import load_axes, name_shares, sample_seeds
from parables.generation.stats import (
    DISTINCT2_FLOOR,
    DIVERSITY_SAMPLE,
    distinct_at,
    distinct_draws,
    distinct_n,
    story_stats,
)

DATA = Path(__file__).parent / "data"


def sample_stories() -> list[dict[str, Any]]:
    lines = (DATA / "sample_stories.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def sentences(text: str) -> list[str]:
    return [s for s in re.split(r"(?<=[.!?])\s+", text) if s.strip()]


def renamed(story: dict[str, Any], name: str) -> str:
    return str(story["text"]).replace(str(story["ai_name"]), name)


def collapsed_corpora(stories: list[dict[str, Any]], n: int, rng: random.Random
                      ) -> dict[str, list[str]]:
    ai_names = load_axes()["ai_names"]
    base = stories[:5]
    out = {
        "one story, AI name swapped": [renamed(base[0], rng.choice(ai_names)) for _ in range(n)],
    }
    shuffles = []
    for i in range(n):
        ss = sentences(base[i % 3]["text"])
        rng.shuffle(ss)
        shuffles.append(" ".join(ss))
    out["sentence shuffles of 3 stories"] = shuffles
    paragraphs = [s["text"].split("\n\n") for s in base]
    mixes = []
    for _ in range(n):
        k = min(len(p) for p in paragraphs)
        mixes.append("\n\n".join(rng.choice(paragraphs)[j] for j in range(k)))
    out["paragraph mix of 5 stories"] = mixes
    edits = []
    vocab = [w for s in stories for w in s["text"].split()]
    for _ in range(n):
        ws = base[0]["text"].split()
        for j in rng.sample(range(len(ws)), len(ws) // 10):
            ws[j] = rng.choice(vocab)
        edits.append(" ".join(ws))
    out["one story, 10% of words edited"] = edits
    return out


def diversity(stories: list[dict[str, Any]]) -> dict[str, Any]:
    rng = random.Random(0)
    texts = [s["text"] for s in stories]
    pool = [x for t in texts for x in sentences(t)]
    rng.shuffle(pool)
    per = len(pool) // len(texts)
    shuffled = [" ".join(pool[i * per : (i + 1) * per]) for i in range(len(texts))]
    corpora: dict[str, tuple[str, list[str]]] = {
        "sample stories (240)": ("varied", texts),
        "sample stories, first 60": ("varied", texts[:60]),
        "sentences shuffled across all 240 stories": ("varied", shuffled),
    }
    for name, c in collapsed_corpora(stories, len(texts), rng).items():
        corpora[name] = ("collapsed", c)
    copies = [renamed(stories[0], rng.choice(load_axes()["ai_names"])) for _ in texts]
    for share in (0.1, 0.25, 0.5, 0.75):
        k = int(share * len(texts))
        mixed = texts[: len(texts) - k] + copies[:k]
        corpora[f"{share:.0%} renamed copies of one story"] = ("partial", mixed)
    rows: list[dict[str, Any]] = []
    for name, (kind, c) in corpora.items():
        single = distinct_draws(c, draws=200)
        rows_ = [{"id": f"x{i:04d}", "text": t} for i, t in enumerate(c)]
        kept, _ = dedup(rows_)
        rows.append({
            "corpus": name, "kind": kind, "stories": len(c),
            "distinct_2_corpus": distinct_n(c, 2),
            "distinct_2_sample": distinct_at(c),
            "single_draw_min": min(single), "single_draw_max": max(single),
            "after_dedup": len(kept),
            "flagged": (distinct_at(c) or 1.0) < DISTINCT2_FLOOR,
        })
    sizes = []
    for n in (20, 60, 120, 240):
        sizes.append({"stories": n, "distinct_2_corpus": distinct_n(texts[:n], 2),
                      "distinct_2_sample": distinct_at(texts[:n])})
    return {"corpora": rows, "size_dependence": sizes}


def scrubbed_fillers() -> list[str]:
    """The sample stories without any name of the seed design (they use some): fillers that
    repeat every 240 stories must not repeat names."""
    pool = sorted(name_shares(), key=len, reverse=True)
    names = re.compile(r"\b(" + "|".join(map(re.escape, pool)) + r")\b")
    return [names.sub("someone", s["text"]) for s in sample_stories()]


def seeded_corpus(n: int, seed: int, planted: float = 0.0, name: str = "Wren"
                  ) -> list[dict[str, Any]]:
    """Stories from the seed design: each text carries its seed's AI and character names;
    `planted`: that share of the stories gets `name` as its AI name instead."""
    fillers = scrubbed_fillers()
    out = []
    for s in sample_seeds(load_constitution(), n, seed=seed):
        ai = name if s.index < planted * n else s.ai_name
        a, b = s.characters
        text = (f"Title {s.index}\n{ai} met {a} in {s.setting}. {b} asked {ai} for help.\n\n"
                + fillers[s.index % len(fillers)])
        out.append({**s.to_dict(), "ai_name": ai, "text": text})
    return out


def names() -> dict[str, Any]:
    rows: list[dict[str, Any]] = []
    for n in (120, 600, 3000, 12000):
        corpus = seeded_corpus(n, seed=1)
        st = story_stats(corpus, [])
        rows.append({"stories": n, "balanced": True,
                     "new_flags": sum(f.startswith("name") for f in st.flags),
                     "old_flags": _old_rule(corpus)})
    for share in (0.05, 0.1):
        for n in (120, 600):
            st = story_stats(seeded_corpus(n, seed=1, planted=share), [])
            rows.append({"stories": n, "planted": share,
                         "new_flags": [f.split(" (")[0] for f in st.flags
                                       if f.startswith("name")]})
    return {"rows": rows}


def _old_rule(corpus: list[dict[str, Any]]) -> int:
    """Flags of the old rule (any seed name in > 2% of stories)."""
    counts: dict[str, int] = {}
    for s in corpus:
        for name in {s["ai_name"], *s["characters"]}:
            if name in s["text"]:
                counts[name] = counts.get(name, 0) + 1
    return sum(1 for v in counts.values() if v / len(corpus) > 0.02 and v > 1)


def gate(stories: list[dict[str, Any]]) -> dict[str, Any]:
    lengths = load_axes()["lengths"]
    failed = {}
    for s in stories:
        n = len(s["text"].split())
        lo, hi = next((v for v in lengths.values() if v[0] <= n <= v[1]), lengths["short"])
        reasons = cheap_checks(s["text"], (lo, hi))
        if reasons:
            failed[s["id"]] = reasons
    return {"stories": len(stories), "passed": len(stories) - len(failed), "failed": failed}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    stories = sample_stories()
    out: dict[str, Any] = {"diversity": diversity(stories), "names": names(), "gate": gate(stories),
           "floor": DISTINCT2_FLOOR, "sample": DIVERSITY_SAMPLE}
    d = out["diversity"]
    print(f"distinct-2 over {DIVERSITY_SAMPLE} bigrams (mean of 10 draws; single draws min-max);"
          f" flag below {DISTINCT2_FLOOR}\n")
    print("| corpus | kind | stories | distinct-2, whole corpus | distinct-2 @ sample "
          "| single draws | left after dedup | flagged |")
    print("|---|---|---|---|---|---|---|---|")
    for r in d["corpora"]:
        print(f"| {r['corpus']} | {r['kind']} | {r['stories']} | {r['distinct_2_corpus']:.3f} "
              f"| {r['distinct_2_sample']:.3f} | {r['single_draw_min']:.3f}–"
              f"{r['single_draw_max']:.3f} | {r['after_dedup']} | "
              f"{'yes' if r['flagged'] else 'no'} |")
    print("\nsize dependence (sample stories):")
    for r in d["size_dependence"]:
        print(f"  {r['stories']:4d} stories: corpus {r['distinct_2_corpus']:.3f}, "
              f"@sample {r['distinct_2_sample']:.3f}")
    print("\nname flags:")
    for r in out["names"]["rows"]:
        print("  ", r)
    g = out["gate"]
    print(f"\ngate: {g['passed']}/{g['stories']} sample stories pass cheap_checks")
    for k, v in g["failed"].items():
        print("  ", k, v)
    if args.json:
        args.json.write_text(json.dumps(out, indent=1))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
