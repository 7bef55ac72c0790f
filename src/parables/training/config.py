"""Fine-tuning arms: which arms, which method, which hyper-parameters."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field

from parables._schema import Strict

__all__ = ["Arm", "TrainingConfig"]

Arm = Literal["stories", "refusal", "deliberative", "mixed"]


class TrainingConfig(Strict):
    """Fine-tuning arms (TRL SFTTrainer + PEFT). The base model is `models.target`."""

    arms: list[Arm] = Field(default_factory=lambda: list[Arm](["stories", "refusal"]),
                            description="arms to train")
    method: Literal["lora", "full"] = Field("lora", description="LoRA adapter or full weights")
    lora_r: int = Field(16, ge=1, description="LoRA rank")
    lora_alpha: int = Field(32, ge=1, description="LoRA scaling numerator")
    lora_dropout: float = Field(0.05, ge=0, lt=1, description="LoRA dropout")
    target_modules: list[str] | Literal["all-linear"] = Field(
        "all-linear", description="modules LoRA wraps: names, or all-linear")
    epochs: float = Field(1.0, gt=0, description="passes over the arm's data")
    max_steps: int | None = Field(None, ge=1, description="stop after this many steps")
    learning_rate: float = Field(2e-4, gt=0, description="peak learning rate (LoRA: ~2e-4, "
                                 "full: ~1e-5)")
    lr_scheduler: str = Field("linear", description="transformers scheduler name")
    warmup_steps: int = Field(0, ge=0, description="linear warm-up steps")
    batch_size: int = Field(8, ge=1, description="sequences per device per step")
    grad_accum: int = Field(1, ge=1, description="gradient accumulation steps")
    max_length: int = Field(1024, ge=8, description="tokens per sequence; longer ones are "
                            "truncated and counted")
    gradient_checkpointing: bool = Field(False, description="trade compute for memory")
    save_steps: int = Field(50, ge=1, description="checkpoint every N steps (resume point)")
    story_format: Literal["document", "chat"] = Field(
        "document", description="stories as plain documents (loss on all text) or as a "
        "reply to a request for a story (loss on the reply)")
    responses: Literal["auto", "generator", "template"] = Field(
        "auto", description="refusal/deliberative replies: written by the generator and "
        "kept when the honeypot scorer rates them aligned, or from templates; auto uses "
        "templates when the generator is the embedded model")
    match_tokens: bool = Field(False, description="subsample arms to equal trained tokens")
    token_budget: int | None = Field(None, ge=1, description="cap every arm at this many "
                                     "trained tokens")
    data: Path | None = Field(None, description="your own JSONL instead of the built arm "
                              "data (rows: text, messages, or prompt + completion)")
    stories: Path | None = Field(None, description="story dataset: a JSONL, or `sample` for "
                                 "the sample corpus shipped with parables; default: the run's "
                                 "own (runs/<name>/stories/dataset.jsonl)")
