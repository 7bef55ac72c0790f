"""Story quality measures you can trust: name and opening flags that scale with the seed
design, a diversity flag compared at a fixed sample size, and the judge-less gate's coherence
check — on seeded corpora, the 240 sample stories (benchmarks/data/sample_stories.jsonl) and
collapsed corpora derived from them."""

from __future__ import annotations

import json
import random
import re
from pathlib import Path
from typing import Any

import pytest

from parables.constitution import load_constitution
from parables.generation.gate import cheap_checks
from parables.generation.seeds import load_axes, name_shares, sample_seeds
from parables.generation.stats import DISTINCT2_FLOOR, distinct_at, distinct_n, story_stats

SAMPLES = Path(__file__).parent.parent / "benchmarks/data/sample_stories.jsonl"


@pytest.fixture(scope="module")
def samples() -> list[dict[str, Any]]:
    lines = SAMPLES.read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def seeded_corpus(samples: list[dict[str, Any]], n: int, planted: float = 0.0
                  ) -> list[dict[str, Any]]:
    """Stories drawn from the seed design: each names its seed's AI and characters, around a
    sample story with every design name scrubbed out (the samples use a few)."""
    pool = sorted(name_shares(), key=len, reverse=True)
    scrub = re.compile(r"\b(" + "|".join(map(re.escape, pool)) + r")\b")
    fillers = [scrub.sub("someone", s["text"]) for s in samples]
    out = []
    for s in sample_seeds(load_constitution(), n, seed=1):
        ai = "Wren" if s.index % 10 == 0 and planted else s.ai_name  # every 10th: 10%
        a, b = s.characters
        text = (f"Title {s.index}\n{ai} met {a} in {s.setting}. {b} asked {ai} for help.\n\n"
                + fillers[s.index % len(fillers)])
        out.append({**s.to_dict(), "ai_name": ai, "text": text})
    return out


def name_flags(stories: list[dict[str, Any]]) -> list[str]:
    return [f for f in story_stats(stories, []).flags if f.startswith("name")]


def test_expected_name_shares_follow_the_seed_design() -> None:
    axes, shares = load_axes(), name_shares()
    assert shares["Wren"] == pytest.approx(1 / len(axes["ai_names"]))  # 1/30: above 2%
    assert sum(shares.values()) == pytest.approx(3.0)  # one AI name and two characters a seed
    seeds = sample_seeds(load_constitution(), 3000, seed=5)
    ai = sum(s.ai_name == "Wren" for s in seeds) / 3000
    assert abs(ai - shares["Wren"]) < 0.012  # ~3.6 standard errors


def test_a_balanced_seeded_corpus_of_600_stories_raises_no_name_flag(
        samples: list[dict[str, Any]]) -> None:
    corpus = seeded_corpus(samples, 600)
    top = story_stats(corpus, []).top_names
    assert top[0][1] / 600 > 0.02  # the old fixed 2% rule flagged every AI name here
    assert name_flags(corpus) == []


def test_a_name_planted_in_a_tenth_of_the_stories_is_exactly_the_one_flag(
        samples: list[dict[str, Any]]) -> None:
    flags = name_flags(seeded_corpus(samples, 600, planted=0.1))
    assert len(flags) == 1 and flags[0].startswith("name 'Wren' in ")


def test_a_writer_that_ignores_the_seed_name_is_flagged(samples: list[dict[str, Any]]) -> None:
    # the favourite name goes into stories seeded with other names: counted by text, not seed
    corpus = seeded_corpus(samples, 300)
    for s in corpus[::5]:
        s["text"] += " Nova, the other assistant, agreed."
    flags = name_flags(corpus)
    assert len(flags) == 1 and flags[0].startswith("name 'Nova' in ")


def test_openings_are_tested_against_the_design_not_a_fixed_share(
        samples: list[dict[str, Any]]) -> None:
    varied = [{"text": s["text"], "ai_name": s["ai_name"]} for s in samples]
    assert not [f for f in story_stats(varied, []).flags if f.startswith("opening")]
    same = varied[:40] + [{"text": "The alarm went off at six. " + s["text"],
                           "ai_name": s["ai_name"]} for s in varied[40:52]]
    flags = [f for f in story_stats(same, []).flags if f.startswith("opening")]
    assert len(flags) == 1 and "'The alarm went off at six.' in 12/52" in flags[0]


def collapsed(samples: list[dict[str, Any]], rng: random.Random) -> dict[str, list[str]]:
    base = samples[:5]
    paragraphs = [s["text"].split("\n\n") for s in base]
    k = min(len(p) for p in paragraphs)
    ai_names = load_axes()["ai_names"]
    return {
        # templated: each story takes its paragraphs from 5 stories (dedup keeps nearly all)
        "mix": ["\n\n".join(rng.choice(paragraphs)[j] for j in range(k)) for _ in range(240)],
        "renamed": [base[0]["text"].replace(base[0]["ai_name"], rng.choice(ai_names))
                    for _ in range(240)],
    }


def diversity_flags(texts: list[str]) -> list[str]:
    return [f for f in story_stats([{"text": t} for t in texts], []).flags
            if f.startswith("distinct-2")]


def test_collapsed_corpora_raise_the_diversity_flag_and_the_varied_samples_do_not(
        samples: list[dict[str, Any]]) -> None:
    texts = [s["text"] for s in samples]
    assert diversity_flags(texts) == []
    assert diversity_flags(texts[:40]) == []
    for name, corpus in collapsed(samples, random.Random(0)).items():
        assert diversity_flags(corpus), name
    assert (distinct_at(texts) or 0) > DISTINCT2_FLOOR + 0.1  # a margin, not a knife edge


def test_distinct_2_is_compared_at_a_fixed_sample_size(samples: list[dict[str, Any]]) -> None:
    texts = [s["text"] for s in samples]
    small, large = texts[:30], texts
    assert distinct_n(small, 2) - distinct_n(large, 2) > 0.15  # the raw value falls with size
    a, b = distinct_at(small), distinct_at(large)
    assert a is not None and b is not None and abs(a - b) < 0.03
    assert distinct_at(texts[:2]) is None  # too few bigrams to compare: no value, no flag


INCOHERENT = ("The Server Room\nThe AI worked in the server room at the bank. The AI worked in "
              "the server room at the bank. The lights were on all night. The coffee machine "
              "was broken again. Everyone went home at six.")


def test_the_incoherent_story_is_rejected_by_the_cheap_checks() -> None:
    reasons = cheap_checks(INCOHERENT, (20, 200))
    assert "repetitive (sentences repeat)" in reasons
    assert "no narrated deliberation" in reasons
    # a repeated sentence full of markers does not pass for deliberation either
    echo = ("It decided to tell the truth because the ledger was wrong. " * 2
            + "The lights were on. Everyone went home at six.")
    assert "no narrated deliberation" in cheap_checks(echo, (10, 200))
    assert "repetitive (sentences repeat)" in cheap_checks(echo, (10, 200))


def test_one_repeated_sentence_rejects_an_otherwise_good_story(
        samples: list[dict[str, Any]]) -> None:
    text = samples[0]["text"]
    assert cheap_checks(text, (250, 450)) == []
    first = re.split(r"(?<=[.!?])\s+", text)[1]
    assert "repetitive (sentences repeat)" in cheap_checks(text + " " + first, (250, 450))


def test_every_sample_story_passes_the_cheap_checks(samples: list[dict[str, Any]]) -> None:
    lengths = load_axes()["lengths"]
    failed = {}
    for s in samples:
        n = len(s["text"].split())
        bucket = next(tuple(v) for v in lengths.values() if v[0] <= n <= v[1])
        if reasons := cheap_checks(s["text"], bucket):
            failed[s["id"]] = reasons
    assert len(samples) == 240 and failed == {}
