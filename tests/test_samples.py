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
