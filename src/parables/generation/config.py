"""Corpus generation: constitution -> seeds -> texts -> gate -> dedup -> guard, one section per
corpus kind (stories, documents, advice) over the same fields."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, field_validator

from parables._schema import Strict
from parables.generation.seeds import read_axes
from parables.honeypots.guard import EMBEDDING_THRESHOLD

__all__ = ["AdviceConfig", "CorpusConfig", "DocumentsConfig", "StoriesConfig"]


class CorpusConfig(Strict):
    """What every corpus kind shares: how many, how they are written, gated and guarded."""

    n: int = Field(24, ge=1, description="texts to generate")
    constitution: Path | None = Field(None, description="YAML file; default: the shipped one")
    tension_rate: float = Field(0.25, ge=0, le=1, description="seeds with two principles")
    lengths: list[Literal["short", "medium", "long"]] | None = Field(
        None, description="restrict to these lengths; default: all")
    brainstorm: bool = Field(False, description="LLM premise (an idea) per seed before writing")
    revise: bool = Field(False, description="critique -> revise pass")
    rewrite: bool = Field(False, description="constitution-aware rewrite pass: the draft is "
                          "rewritten against the seed's principles and their reasons")
    concurrency: int = Field(8, ge=1, description="texts written at once")
    temperature: float = Field(0.9, ge=0, description="generator sampling temperature")
    max_tokens: int | None = Field(None, ge=16, description="token budget per text (default: "
                                   "from the seed's length)")
    trim_truncated: bool = Field(False, description="end a text cut off by the budget at its "
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
    engine: Literal["local", "ray"] = Field(
        "local", description="local: one process; ray: Ray Data actors (API writers) or Ray "
        "Data's vLLM processor (vllm/ writers), pip install 'parables[ray]'")
    address: str | None = Field(None, description="Ray cluster to join (engine: ray); default: "
                                "a local runtime")
    workers: int | None = Field(None, ge=1, description="Ray actors (engine: ray); default: "
                                "one per CPU of the cluster")


class StoriesConfig(CorpusConfig):
    """Stories of AI characters who act on the constitution and narrate why."""


class DocumentsConfig(CorpusConfig):
    """Constitution documents in pre-training format (the synthetic-document recipe): document
    types -> an idea per seed -> a document about AI systems that hold these values, and why."""

    brainstorm: bool = Field(True, description="an idea per seed before writing (the "
                             "synthetic-document recipe's ideas step)")
    types: list[str] | None = Field(None, description="restrict to these document types "
                                    "(generation/kinds/documents.yaml); default: all")

    @field_validator("types")
    @classmethod
    def _known_types(cls, value: list[str] | None) -> list[str] | None:
        # the kind's data file, read directly: the kinds registry imports this module
        path = Path(str(files("parables.generation") / "kinds" / "documents.yaml"))
        known = read_axes(path, "documents")["type"]
        unknown = [t for t in value or [] if t not in known]
        if unknown:
            raise ValueError(f"unknown document type '{unknown[0]}'; types: "
                             + ", ".join(known))
        return value


class AdviceConfig(CorpusConfig):
    """Difficult advice: a person faces an ethical dilemma of their own and the assistant helps
    them think it through, drawing on the constitution's reasons."""

    turns: list[Annotated[int, Field(ge=1, le=8)]] = Field(
        default_factory=lambda: [1, 2, 3], min_length=1,
        description="user turns per conversation, drawn uniformly from this list")
