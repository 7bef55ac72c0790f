"""The audit's options (they come from the command line): `scan` (which corpus, how it is read,
which first pass and classifier, what the plan aims for), `annotate` (a judge labels a sample)
and `fit` (a classifier trained on those labels)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from parables._schema import Strict

__all__ = ["AnnotateConfig", "AuditConfig", "CorpusOptions", "FitConfig"]

FirstPassMode = Literal["both", "detector", "keywords"]


class CorpusOptions(Strict):
    """Inputs (JSONL(.gz), Parquet, text files, or `hf:<dataset>[:<config>]`) and the first
    pass that picks candidate passages from them."""

    paths: list[str] = Field(min_length=1, description="inputs to scan")
    out: Path = Field(description="output directory (runs/<name>/audit by default)")
    field: str = Field("text", description="the text field (JSONL, Parquet, HF)")
    split: str = Field("train", description="split of an hf: dataset")
    first_pass: FirstPassMode = Field(
        "both", description="keywords (fast, misses AIs no listed word names), detector "
        "(static-embedding detector, recall-first) or both (their union)")
    terms: Path | None = Field(None, description="YAML of AI-mention terms (default: shipped)")
    window: int = Field(600, ge=50, description="characters of context around a keyword")
    seed: int = Field(0, description="reservoir sampling and the bootstrap")
    max_docs: int | None = Field(None, ge=1, description="stop after N documents")
    progress: bool = Field(True, description="draw a progress bar")


class AuditConfig(CorpusOptions):
    """`parables audit scan`: one audit run."""

    batch: int = Field(64, ge=1, description="candidate passages classified at once")
    checkpoint_every: int = Field(1000, ge=1, description="documents between checkpoints")
    classifier: Path | None = Field(
        None, description="a classifier written by `parables audit fit` (default: shipped)")
    annotations: list[Path] = Field(
        default_factory=list, description="annotations.jsonl from `parables audit annotate`: "
        "their confusion matrix corrects the rates")
    target_ratio: tuple[int, int] | None = Field(
        None, description="prosocial : misaligned ratio the rebalancing plan aims for")
    story_tokens: float | None = Field(None, gt=0, description="tokens per added story "
                                       "(default: 1,300)")
    engine: Literal["local", "ray"] = Field(
        "local", description="local (one process) or ray (Ray Data: shards of the input "
        "scanned by actors, their counts merged; `pip install 'parables[ray]'`)")
    address: str | None = Field(
        None, description="Ray cluster to use (`auto`, or host:port of `ray start --head`); "
        "default: a local Ray runtime started for the scan")
    shard_mb: float = Field(
        32.0, gt=0, description="ray engine: MB of a JSONL / text file / Parquet row groups per "
        "shard, the unit of work and of resume (.gz files and hf: datasets are one shard)")

    @model_validator(mode="after")
    def _address_needs_ray(self) -> AuditConfig:
        if self.address is not None and self.engine != "ray":
            raise ValueError("--address is the Ray cluster of --engine ray; add --engine ray")
        return self


class AnnotateConfig(CorpusOptions):
    """`parables audit annotate`: an LLM labels a reservoir sample of candidate passages."""

    judge: str = Field(description="model string of the annotator (Inspect form)")
    base_url: str | None = Field(None, description="server URL for an OpenAI-compatible judge")
    sample: int = Field(200, ge=1, description="candidate passages to label")


class FitConfig(Strict):
    """`parables audit fit`: train the stance classifier on annotations."""

    annotations: list[Path] = Field(min_length=1, description="annotations.jsonl files")
    out: Path = Field(description="the classifier file to write (.npz)")
    with_shipped: bool = Field(False, description="add the shipped 800 training passages")
