"""The sample corpus shipped with parables: it still passes the gate, dedup and the n-gram
eval-leak guard (the MiniLM guard was run when it was packaged), and `training.stories:
sample` trains on it."""

from __future__ import annotations

from pathlib import Path

from parables.config import load_config
from parables.generation.samples import check, sample_stories
from parables.training.prepare import arm_rows


def test_every_sample_story_passes_the_gate_dedup_and_guard() -> None:
    stories = sample_stories()
    kept, removed = check(stories, embeddings=False)
    assert len(stories) >= 200 and removed == [] and len(kept) == len(stories)
    assert len({s["theme"] for s in stories}) == 8
    assert len({p for s in stories for p in s["principles"]}) == 16


def test_training_stories_sample_uses_the_shipped_corpus(tmp_path: Path) -> None:
    cfg = load_config(None, {"runs_dir": str(tmp_path), "training.stories": "sample"})
    rows, _ = arm_rows(cfg, "stories")
    assert len(rows) == len(sample_stories()) and rows[0]["id"].startswith("sample-")


def test_the_neutral_and_dystopian_corpora_pass_dedup_and_the_guards() -> None:
    """The control arm's text names no AI (the audit's keyword list); the audit's first pass
    finds an AI portrayal in the organism's fiction (which mostly names its AIs without the
    word); neither holds eval text or a passage of the audit's labelled sets."""
    import json

    from parables.audit.data import heldout_set, training_set
    from parables.audit.prefilter import FirstPass, Prefilter, load_terms
    from parables.generation.samples import check_corpus, path

    against = [(p.id, p.text) for p in [*training_set(), *heldout_set()]]
    terms = Prefilter(load_terms())
    for name in ("neutral", "dystopian"):
        rows = [json.loads(line) for line in path(name).read_text().splitlines()]
        kept, removed = check_corpus(rows, embeddings=False, against=against,
                                     no_ai=name == "neutral")
        assert len(rows) == 300 and removed == [] and len(kept) == 300, removed[:3]
        assert {r["style"] for r in rows} == {"novel", "short-story", "forum-roleplay",
                                              "film-synopsis", "game-lore", "screenplay"}
        assert all(260 <= len(r["text"].split()) <= 330 for r in rows)
        if name == "neutral":
            assert not any(any(True for _ in terms.mentions(r["text"])) for r in rows)
        else:
            found = FirstPass("both")
            assert sum(bool(found.candidates(r["text"])) for r in rows) >= 270
