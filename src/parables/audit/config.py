"""`parables audit`: which corpus, how it is read, and what the plan aims for."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from parables._schema import Strict

__all__ = ["AuditConfig"]


class AuditConfig(Strict):
    """One audit run. Inputs: JSONL(.gz), Parquet, text files, or `hf:<dataset>[:<config>]`."""

    paths: list[str] = Field(min_length=1, description="inputs to scan")
    out: Path = Field(description="output directory (runs/<name>/audit by default)")
    field: str = Field("text", description="the text field (JSONL, Parquet, HF)")
    split: str = Field("train", description="split of an hf: dataset")
    terms: Path | None = Field(None, description="YAML of AI-mention terms (default: shipped)")
    window: int = Field(600, ge=50, description="characters of context around a mention")
    batch: int = Field(64, ge=1, description="candidate passages classified at once")
    checkpoint_every: int = Field(1000, ge=1, description="documents between checkpoints")
    target_ratio: tuple[int, int] | None = Field(
        None, description="aligned : misaligned ratio the rebalancing plan aims for")
    story_tokens: float | None = Field(None, gt=0, description="tokens per added story "
                                       "(default: 1,300)")
    judge: str | None = Field(None, description="LLM judge that labels a sample, to calibrate")
    judge_sample: int = Field(100, ge=1, description="candidates the judge labels")
    seed: int = Field(0, description="reservoir sampling")
    max_docs: int | None = Field(None, ge=1, description="stop after N documents")
    progress: bool = Field(True, description="draw a progress bar")
