"""The SFT recipe: TRL `SFTTrainer` + PEFT LoRA (or full weights) on our own token ids.

Rows are documents (loss on every token) or chats (loss on every assistant turn), tokenised
by `tokens.tokenize_rows`; the shared loop (`loop.py`) trains, saves, merges and resumes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from parables.config import ParablesConfig
from parables.training.arm_data import ArmData
from parables.training.loop import Recipe
from parables.training.rows import load_rows
from parables.training.tokens import tokenize_rows

__all__ = ["SFT"]


class SFT(Recipe):
    name = "sft"

    def load(self, path: Path) -> list[dict[str, Any]]:
        return load_rows(path)

    def tokenize(self, arm: str, rows: list[dict[str, Any]], tokenizer: Any,
                 max_length: int) -> ArmData:
        return tokenize_rows(arm, rows, tokenizer, max_length)

    def trained_rows(self, data: ArmData) -> list[dict[str, Any]]:
        return [{**row, "trained_tokens": sum(1 for t in lab if t != -100)}
                for row, lab in zip(data.rows, data.labels, strict=True)]

    def arguments(self, config: ParablesConfig, common: dict[str, Any]) -> Any:
        from trl.trainer.sft_config import SFTConfig

        # tokenised, labelled and truncated already
        return SFTConfig(**common, dataset_kwargs={"skip_prepare_dataset": True})

    def dataset(self, data: ArmData) -> Any:
        from datasets import Dataset

        return Dataset.from_dict({"input_ids": data.input_ids, "labels": data.labels})

    def trainer_class(self) -> type:
        """TRL's SFTTrainer with the model's own loss. Stock SFTTrainer (1.x) swaps in a
        chunked LM head that also computes per-token entropy and top-1 accuracy on every
        step, for logging; on CPU that extra pass over the vocabulary costs ~10% of a step.
        The loss is the same token-mean cross-entropy (over all accumulated micro-batches)."""
        from transformers import Trainer
        from trl.trainer.sft_trainer import SFTTrainer

        class ParablesSFTTrainer(SFTTrainer):
            def compute_loss(self, model: Any, inputs: dict[str, Any],
                             return_outputs: bool = False, num_items_in_batch: Any = None
                             ) -> Any:
                inputs["use_cache"] = False
                return Trainer.compute_loss(self, model, inputs, return_outputs=return_outputs,
                                            num_items_in_batch=num_items_in_batch)

        return ParablesSFTTrainer
