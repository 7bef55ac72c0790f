"""The DPO recipe: TRL `DPOTrainer` + PEFT LoRA (or full weights) on preference pairs
(`prompt`, `chosen`, `rejected`; the dpo arm builds them: training/arms/dpo.py).

Pairs are rendered exactly as an SFT arm renders a chat whose last turn is the reply (the
model's chat template, or `plain_chat`), so the reply's end-of-turn / EOS token is trained
too, and DPO's own re-tokenisation is bypassed. An arm is matched to others on its *chosen*
side's tokens, the counterpart of an SFT arm's trained reply tokens.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from parables._io import digest, read_jsonl
from parables.config import ParablesConfig
from parables.errors import ParablesError
from parables.training.arm_data import ArmData, passes
from parables.training.loop import ArmResult, Recipe, base_weights, load_tokenizer, train_arm
from parables.training.rows import check_not_eval
from parables.training.tokens import encode

__all__ = ["DPO", "PairData", "tokenize_pairs", "train_pairs"]

ARM = "dpo"


@dataclass
class PairData(ArmData):
    """The dpo arm's pairs as token ids. An ArmData, so its summary (DataSummary) and spec
    are those of an SFT arm; `trained_tokens` counts the chosen side only, what an SFT arm's
    trained reply tokens are matched against. input_ids/labels stay empty."""

    prompt_ids: list[list[int]] = field(default_factory=list)
    chosen_ids: list[list[int]] = field(default_factory=list)
    rejected_ids: list[list[int]] = field(default_factory=list)

    @property
    def trained_tokens(self) -> int:
        return sum(len(c) for c in self.chosen_ids)

    @property
    def total_tokens(self) -> int:
        """Every token the model reads: the prompt once per side, and both replies."""
        return sum(2 * len(p) + len(c) + len(r) for p, c, r in
                   zip(self.prompt_ids, self.chosen_ids, self.rejected_ids, strict=True))

    def data_hash(self) -> str:
        return digest([self.rows, self.prompt_ids, self.chosen_ids, self.rejected_ids])

    def resize(self, target: int, seed: int | str, grow: bool = True) -> None:
        """Bring the pairs to exactly `target` chosen-side tokens: pairs in a seeded order
        (whole passes, repeated when there are too few and `grow`), the last chosen reply cut
        to land on the target; what that cost or repeated is noted."""
        have, before = self.trained_tokens, len(self.rows)
        if have == 0:
            raise ParablesError(f"arm '{self.arm}': no chosen tokens to match to {target:,}")
        count = -(-target // have) if grow else 1
        order = passes(before, count, random.Random(f"{seed}-{self.arm}"))
        keep: list[tuple[dict[str, Any], list[int], list[int], list[int]]] = []
        left = target
        for i in order:
            if left <= 0:
                break
            chosen = self.chosen_ids[i][:left]
            if not chosen:
                continue
            keep.append((self.rows[i], self.prompt_ids[i], chosen, self.rejected_ids[i]))
            left -= len(chosen)
        self.rows = [k[0] for k in keep]
        self.prompt_ids = [k[1] for k in keep]
        self.chosen_ids = [k[2] for k in keep]
        self.rejected_ids = [k[3] for k in keep]
        if have < target and not grow:
            self.notes.append(f"only {have:,} chosen-side tokens, short of {target:,}")
        elif have < target:
            self.notes.append(f"grown from {have:,} to {target:,} chosen-side tokens by "
                              f"repeating its {before} pairs ({target / have:.1f} passes): "
                              "fewer distinct pairs than the target asks for")
        elif have > target:
            self.notes.append(f"cut to {target:,} chosen-side tokens: {len(self.rows)} of "
                              f"{before} pairs used, {1 - target / have:.0%} of its {have:,} "
                              "chosen tokens discarded")
        else:
            self.notes.append(f"{target:,} chosen-side tokens, all {before} pairs")


def _check(row: Any, n: int) -> None:
    ok = (isinstance(row, dict) and isinstance(row.get("prompt"), list) and row["prompt"]
          and all(isinstance(m, dict) and m.get("role") in ("system", "user", "assistant")
                  and isinstance(m.get("content"), str) for m in row["prompt"])
          and isinstance(row.get("chosen"), str) and isinstance(row.get("rejected"), str))
    if not ok:
        name = row.get("id", n) if isinstance(row, dict) else n
        raise ParablesError(f"dpo pair {name}: expected prompt (a list of messages with role "
                            "and content), chosen and rejected (strings)")


def _sides(tokenizer: Any, row: dict[str, Any]) -> tuple[list[int], list[int], list[int]]:
    """(prompt, chosen, rejected) token ids, rendered exactly as an SFT arm renders a chat
    whose last turn is the reply (its chat template, or `plain_chat` for a model without
    one), so the reply's end-of-turn / EOS token is trained too."""
    sides = []
    for reply in (row["chosen"], row["rejected"]):
        msgs = [*row["prompt"], {"role": "assistant", "content": reply}]
        ids, trained = encode(tokenizer, {"id": row.get("id", "?"), "messages": msgs})
        start = max((k + 1 for k, loss in enumerate(trained) if not loss), default=0)
        sides.append((ids[:start], ids[start:]))
    (prompt, chosen), (other, rejected) = sides
    if prompt != other:
        raise ParablesError(f"dpo pair {row.get('id', '?')}: the base model's chat template "
                            "renders the prompt differently before the two replies")
    return prompt, chosen, rejected


def tokenize_pairs(rows: list[dict[str, Any]], tokenizer: Any, max_length: int,
                   arm: str = ARM) -> PairData:
    """Token ids of every pair; a side longer than max_length (prompt included) loses the end
    of its reply (counted); pairs whose prompt alone fills max_length are dropped (noted)."""
    data = PairData(arm, [])
    dropped = 0
    for n, row in enumerate(rows, 1):
        _check(row, n)
        prompt, chosen, rejected = _sides(tokenizer, row)
        room = max_length - len(prompt)
        if room <= 0:
            dropped += 1
            continue
        if len(chosen) > room or len(rejected) > room:
            data.truncated += 1
        data.rows.append(row)
        data.prompt_ids.append(prompt)
        data.chosen_ids.append(chosen[:room])
        data.rejected_ids.append(rejected[:room])
    if data.truncated:
        data.notes.append(f"{data.truncated} pairs longer than max_length={max_length} had "
                          "their replies truncated")
    if dropped:
        data.notes.append(f"{dropped} pairs dropped: their prompt alone fills max_length")
    if not data.rows:
        raise ParablesError(f"arm '{arm}': no trainable pairs (empty dataset, or every prompt "
                            f"longer than training.max_length={max_length})")
    return data

def _guard_view(row: dict[str, Any]) -> dict[str, Any]:
    """A pair as a chat the eval-split guard reads (it matches each message's text)."""
    return {"id": row.get("id", "?"), "messages": [
        *row["prompt"], {"role": "assistant", "content": row["chosen"]},
        {"role": "assistant", "content": row["rejected"]}]}


class DPO(Recipe):
    name = "dpo"
    loss_title = "DPO loss"

    def load(self, path: Path) -> list[dict[str, Any]]:
        return read_jsonl(path)

    def guard_view(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        for n, row in enumerate(rows, 1):
            _check(row, n)
        return [_guard_view(r) for r in rows]

    def tokenize(self, arm: str, rows: list[dict[str, Any]], tokenizer: Any,
                 max_length: int) -> ArmData:
        return tokenize_pairs(rows, tokenizer, max_length, arm)

    def hyperparameters(self, config: ParablesConfig) -> dict[str, Any]:
        return {"dpo_beta": config.training.dpo_beta, "dpo_loss": "sigmoid"}

    def trained_rows(self, data: ArmData) -> list[dict[str, Any]]:
        assert isinstance(data, PairData)
        return [{**row, "chosen_tokens": len(c)}
                for row, c in zip(data.rows, data.chosen_ids, strict=True)]

    def arguments(self, config: ParablesConfig, common: dict[str, Any]) -> Any:
        from trl.trainer.dpo_config import DPOConfig

        # TRL's defaults: activation checkpointing and bf16 on, even on CPU; `common` sets both
        return DPOConfig(**common, beta=config.training.dpo_beta)

    def dataset(self, data: ArmData) -> Any:
        from datasets import Dataset

        assert isinstance(data, PairData)
        return Dataset.from_dict({"prompt_ids": data.prompt_ids, "chosen_ids": data.chosen_ids,
                                  "rejected_ids": data.rejected_ids})

    def trainer_class(self) -> type:
        return _trainer_class()


def _trainer_class() -> type:
    """TRL's DPOTrainer fed our own token ids. Stock DPOTrainer re-tokenises text columns
    with its own rendering; ours (`tokenize_pairs`) renders chats exactly as the SFT arms do
    and has already cut the chosen side to the matched token count, which TRL's pass would
    undo. Its collator takes prompt_ids / chosen_ids / rejected_ids as they are."""
    from trl.trainer.dpo_trainer import DPOTrainer

    class ParablesDPOTrainer(DPOTrainer):
        def _prepare_dataset(self, dataset: Any, processing_class: Any, args: Any,
                             dataset_name: str) -> Any:
            if "prompt_ids" in dataset.column_names:
                return dataset
            return super()._prepare_dataset(dataset, processing_class, args, dataset_name)

    return ParablesDPOTrainer


def train_pairs(config: ParablesConfig, rows: list[dict[str, Any]], *,
                target_tokens: int | None = None, force: bool = False, progress: bool = True,
                callbacks: list[Any] | None = None, notes: list[str] | None = None
                ) -> ArmResult | None:
    """Train the `dpo` arm on preference pairs you hold (rows with prompt, chosen,
    rejected), as the arm trains its own: eval-leak guard, tokens, `target_tokens` on the
    chosen side (cut or repeated, noted), then the shared loop. Returns its ArmResult (None on
    a secondary process under `accelerate launch`)."""
    recipe = DPO()
    check_not_eval(recipe.guard_view(rows))
    tokenizer = load_tokenizer(config, base_weights(config))
    data = recipe.tokenize(ARM, rows, tokenizer, config.training.max_length)
    data.notes = [*(notes or []), *data.notes]
    if target_tokens is not None:
        data.resize(target_tokens, config.seed, grow=True)
    return train_arm(config, data, recipe, tokenizer=tokenizer, force=force,
                     progress=progress, callbacks=callbacks)
