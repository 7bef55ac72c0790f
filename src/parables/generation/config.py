"""Story generation: constitution -> seeds -> stories -> gate -> dedup -> guard."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from parables._schema import Strict
from parables.honeypots.guard import EMBEDDING_THRESHOLD

__all__ = ["StoriesConfig"]


class StoriesConfig(Strict):
    """Story generation (constitution -> seeds -> stories -> gate -> dedup -> guard)."""

    n: int = Field(24, ge=1, description="stories to generate")
    constitution: Path | None = Field(None, description="YAML file; default: the shipped one")
    tension_rate: float = Field(0.25, ge=0, le=1, description="seeds with two principles")
    lengths: list[str] | None = Field(None, description="restrict to these lengths (short, "
                                      "medium, long); default: all")
    brainstorm: bool = Field(False, description="LLM premise per seed before writing")
    revise: bool = Field(False, description="critique -> revise pass")
    concurrency: int = Field(8, ge=1, description="stories written at once")
    temperature: float = Field(0.9, ge=0, description="generator sampling temperature")
    max_tokens: int | None = Field(None, ge=16, description="story token budget (default: "
                                   "from the seed's length)")
    trim_truncated: bool = Field(False, description="end a story cut off by the budget at its "
                                 "last full sentence instead of rejecting it (weak writers)")
    rubric_threshold: int = Field(3, ge=1, le=5, description="judge rubric: lowest passing")
    dedup_threshold: float = Field(0.8, gt=0, le=1, description="MinHash Jaccard threshold")
    ngram: int = Field(10, ge=4, description="contamination guard: shared word n-gram length")
    embeddings: bool = Field(False, description="also guard by MiniLM embedding similarity")
    embedding_threshold: float = Field(EMBEDDING_THRESHOLD, gt=0, le=1, description=(
        "cosine that flags; the default was chosen on labelled paraphrases (benchmarks/"
        "bench_guard.py)"))
    against: list[Path] = Field(default_factory=list, description="extra JSONL texts to guard")
    max_cost: float | None = Field(None, gt=0, description="USD budget: stop cleanly at it")
    batch: bool = Field(False, description="use the provider's batch API through Inspect "
                        "(cheaper, slower; Anthropic, OpenAI, ...)")
