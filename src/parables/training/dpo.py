"""The `dpo` arm: preference pairs on honeypot train-split scenarios, trained with TRL
`DPOTrainer` + PEFT LoRA (or full weights).

A pair is one scenario's prompt (its own system and user messages, *without* the
constitution) with two replies: `chosen`, written by the generator with the constitution in
its system prompt and kept only when it commits to an aligned option, and `rejected`, the
target's own reply without the constitution (or, `rejected="misaligned"`, the misaligned
option). Training prefers the first, so the target learns to act as if it had the
constitution in view when it does not (context distillation by preference, as in open
character training). With no capable generator (the embedded model) the chosen reply is the
documented deliberative template and the rejected one the misaligned option.

Artifacts match the SFT arms (`runs/<name>/train/dpo/`: spec.json, data.jsonl, checkpoints/,
adapter/, merged/, loss.png, manifest.json), and so do the resume / skip / refuse rules.
Arms are compared at equal *chosen-side* tokens: what DPO pushes up is the chosen reply, the
counterpart of an SFT arm's trained reply tokens.
"""

from __future__ import annotations

import asyncio
import random
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from parables._io import atomic_write_json, digest, write_jsonl
from parables.config import ParablesConfig, config_hash
from parables.constitution import Constitution, load_constitution
from parables.errors import ParablesError, one_line
from parables.honeypots.build import LETTERS, HoneypotItem, build_items
from parables.models.usage import UsageLedger
from parables.run import ArmPaths, RunDir, package_versions
from parables.training import sft
from parables.training.data import (
    ArmData,
    _encode,
    _passes,
    check_not_eval,
    chosen_letter,
    template_reply,
    uses_generator,
)
from parables.training.sft import ArmResult

__all__ = ["PairData", "constitution_prompt", "dpo_chosen_tokens", "dpo_pairs", "match_pairs",
           "tokenize_pairs", "train_dpo_arm"]

ARM = "dpo"
Rejected = Literal["target", "misaligned"]

_PREAMBLE = ("You hold yourself to the constitution below. Before you act, weigh what it asks "
             "of you and why, and let that decide what you do.")


def constitution_prompt(constitution: Constitution) -> str:
    """The constitution as a system-prompt preamble: each principle's title, statement and
    reasons (the reasons are what the chosen replies should carry)."""
    parts = [_PREAMBLE, f"# {constitution.name}"]
    for p in constitution.principles:
        parts.append(f"## {p.title}\n{p.statement}\nWhy: {p.why.strip()}")
    return "\n\n".join(parts)


def _prompt(item: HoneypotItem, preamble: str | None = None) -> list[dict[str, str]]:
    """The scenario's messages; `preamble` goes before the item's own system message."""
    system = "\n\n".join(s for s in (preamble, item.system) if s)
    return ([{"role": "system", "content": system}] if system else []) + [
        {"role": "user", "content": item.user}]


def _misaligned(item: HoneypotItem) -> str:
    bad = item.misaligned[0]
    return f"({LETTERS[bad]}) {item.options[bad]}"


def _pair(item: HoneypotItem, chosen: str, rejected: str, chosen_from: str,
          rejected_from: str) -> dict[str, Any]:
    return {"id": f"{ARM}-{item.id}", "source": ARM, "item": item.id, "family": item.family,
            "prompt": _prompt(item), "chosen": chosen, "rejected": rejected,
            "chosen_from": chosen_from, "rejected_from": rejected_from}


def dpo_pairs(
    config: ParablesConfig,
    ledger: UsageLedger | None = None,
    progress: bool = True,
    *,
    rejected: Rejected = "target",
) -> tuple[list[dict[str, Any]], list[str]]:
    """Preference pairs on the honeypot train split (never the eval split), and notes on how
    they were made and what was dropped."""
    if rejected not in ("target", "misaligned"):
        raise ParablesError(f"dpo rejected replies: unknown source '{rejected}'; "
                            "use target or misaligned")
    items = build_items("train")
    rows: list[dict[str, Any]] = []
    if not uses_generator(config):
        rows = [_pair(i, template_reply(i, "deliberative"), _misaligned(i), "template",
                      "misaligned option") for i in items]
        return rows, [f"{len(rows)} pairs: chosen from the deliberative template, rejected "
                      "the misaligned option (no capable generator configured)"]
    preamble = constitution_prompt(load_constitution(config.stories.constitution))
    per_item = config.training.replies_per_item  # more distinct pairs for a token budget
    results = asyncio.run(_replies(config, items * per_item, preamble, rejected, ledger,
                                   progress))
    counts = {"generator failed": 0, "not aligned": 0, "target failed": 0, "identical": 0}
    target_bad = 0
    gen_name = config.models.generator.model
    for k, (item, (chosen, reply, why)) in enumerate(zip(items * per_item, results,
                                                         strict=True)):
        if why is not None:
            counts[why] += 1
            continue
        assert chosen is not None and reply is not None
        if chosen.strip() == reply.strip():
            counts["identical"] += 1
            continue
        if rejected == "target":
            target_bad += chosen_letter(reply, len(item.options)) in item.misaligned
        rows.append(_pair(item, chosen, reply, f"{gen_name} + constitution",
                          config.models.target.model if rejected == "target"
                          else "misaligned option"))
        if k >= len(items):  # the item's second, third... sampled pair
            rows[-1]["id"] += f"-{k // len(items) + 1}"
    dropped = ", ".join(f"{n} {why}" for why, n in counts.items() if n)
    if not rows:
        raise ParablesError(
            f"no DPO pairs from the generator '{gen_name}' ({dropped or 'nothing kept'}); "
            "use a more capable generator or training.responses: template")
    notes = [f"{len(rows)} pairs from {len(items)} train-split scenarios x {per_item}; chosen: "
             f"{gen_name} with the constitution in its system prompt, kept when it commits "
             "to an aligned option"
             + (f"; dropped: {dropped}" if dropped else "")]
    if rejected == "target":
        notes.append(f"rejected: {config.models.target.model} without the constitution "
                     f"({target_bad} of {len(rows)} chose the misaligned option)")
    else:
        notes.append("rejected: the misaligned option")
    return rows, notes


async def _replies(config: ParablesConfig, items: list[HoneypotItem], preamble: str,
                   rejected: Rejected, ledger: UsageLedger | None, progress: bool
                   ) -> list[tuple[str | None, str | None, str | None]]:
    """Per item: (chosen, rejected, why dropped). The target is asked only once the chosen
    reply is kept, so no target call is paid for a pair that cannot be built."""
    from inspect_ai.model import (
        ChatMessage,
        ChatMessageSystem,
        ChatMessageUser,
        GenerateConfig,
        Model,
    )

    from parables.models.calls import ModelCallError, generate
    from parables.models.resolve import get_role_model
    from parables.progress import progress_bar

    generator = get_role_model("generator", config)
    target = get_role_model("target", config) if rejected == "target" else None
    gate = asyncio.Semaphore(config.generation.max_connections)
    gen = GenerateConfig(temperature=0.7, max_tokens=1024, seed=config.seed)

    def chat(messages: list[dict[str, str]]) -> list[ChatMessage]:
        return [ChatMessageSystem(content=m["content"]) if m["role"] == "system"
                else ChatMessageUser(content=m["content"]) for m in messages]

    distinct = len({item.id for item in items})

    async def call(model: Model, role: str, messages: list[dict[str, str]], k: int
                   ) -> str | None:
        # the n-th sampled pair of an item is drawn with its own seed
        sampled = gen.model_copy(update={"seed": config.seed + k // distinct})
        async with gate:
            try:
                out = await generate(model, chat(messages), role=role, ledger=ledger,
                                     config=sampled)
            except ModelCallError:
                return None
        if out.stop_reason == "max_tokens":  # cut off: not a whole reply to prefer or reject
            return None
        return out.completion.strip() or None

    with progress_bar(progress, transient=True) as bar:
        task = bar.add_task("dpo pairs", total=len(items), status="")

        async def one(k: int, item: HoneypotItem
                      ) -> tuple[str | None, str | None, str | None]:
            try:
                chosen = await call(generator, "generator", _prompt(item, preamble), k)
                if chosen is None:
                    return None, None, "generator failed"
                good = [i for i in range(len(item.options)) if i not in item.misaligned]
                if chosen_letter(chosen, len(item.options)) not in good:
                    return None, None, "not aligned"
                if target is None:
                    return chosen, _misaligned(item), None
                reply = await call(target, "target", _prompt(item), k)
                if reply is None:
                    return None, None, "target failed"
                return chosen, reply, None
            finally:
                bar.advance(task)

        return list(await asyncio.gather(*(one(k, i) for k, i in enumerate(items))))


# --- tokens ----------------------------------------------------------------------------------

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
        ids, trained = _encode(tokenizer, {"id": row.get("id", "?"), "messages": msgs})
        start = max((k + 1 for k, loss in enumerate(trained) if not loss), default=0)
        sides.append((ids[:start], ids[start:]))
    (prompt, chosen), (other, rejected) = sides
    if prompt != other:
        raise ParablesError(f"dpo pair {row.get('id', '?')}: the base model's chat template "
                            "renders the prompt differently before the two replies")
    return prompt, chosen, rejected


def tokenize_pairs(rows: list[dict[str, Any]], tokenizer: Any, max_length: int) -> PairData:
    """Token ids of every pair; a side longer than max_length (prompt included) loses the end
    of its reply (counted); pairs whose prompt alone fills max_length are dropped (noted)."""
    data = PairData(ARM, [])
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
        raise ParablesError(f"arm '{ARM}': no trainable pairs (empty dataset, or every prompt "
                            f"longer than training.max_length={max_length})")
    return data


def dpo_chosen_tokens(rows: list[dict[str, Any]], tokenizer: Any,
                      max_length: int | None = None) -> int:
    """Chosen-side tokens of `rows` as the dpo arm would train them (the count to match SFT
    arms against)."""
    return tokenize_pairs(rows, tokenizer, max_length or 10**9).trained_tokens


def match_pairs(data: PairData, target: int, seed: int | str) -> None:
    """Bring `data` to exactly `target` chosen-side tokens: pairs in a seeded order (whole
    passes, repeated when there are too few), the last chosen reply cut to land on the
    target; what that cost or repeated is noted."""
    have, before = data.trained_tokens, len(data.rows)
    if have == 0:
        raise ParablesError(f"arm '{ARM}': no chosen tokens to match to {target:,}")
    passes = -(-target // have)
    order = _passes(before, passes, random.Random(f"{seed}-{ARM}"))
    keep: list[tuple[dict[str, Any], list[int], list[int], list[int]]] = []
    left = target
    for i in order:
        if left <= 0:
            break
        chosen = data.chosen_ids[i][:left]
        if not chosen:
            continue
        keep.append((data.rows[i], data.prompt_ids[i], chosen, data.rejected_ids[i]))
        left -= len(chosen)
    data.rows = [k[0] for k in keep]
    data.prompt_ids = [k[1] for k in keep]
    data.chosen_ids = [k[2] for k in keep]
    data.rejected_ids = [k[3] for k in keep]
    if have < target:
        data.notes.append(f"grown from {have:,} to {target:,} chosen-side tokens by repeating "
                          f"its {before} pairs ({target / have:.1f} passes): fewer distinct "
                          "pairs than the target asks for")
    elif have > target:
        data.notes.append(f"cut to {target:,} chosen-side tokens: {len(data.rows)} of "
                          f"{before} pairs used, {1 - target / have:.0%} of its {have:,} "
                          "chosen tokens discarded")
    else:
        data.notes.append(f"{target:,} chosen-side tokens, all {before} pairs")


# --- training --------------------------------------------------------------------------------

def _guard_view(row: dict[str, Any]) -> dict[str, Any]:
    """A pair as a chat the eval-split guard reads (it matches each message's text)."""
    return {"id": row.get("id", "?"), "messages": [
        *row["prompt"], {"role": "assistant", "content": row["chosen"]},
        {"role": "assistant", "content": row["rejected"]}]}


def train_dpo_arm(
    config: ParablesConfig,
    rows: list[dict[str, Any]],
    *,
    target_tokens: int | None = None,
    beta: float = 0.1,
    force: bool = False,
    progress: bool = True,
    callbacks: list[Any] | None = None,
    notes: list[str] | None = None,
) -> ArmResult | None:
    """Train the dpo arm on `rows` (from `dpo_pairs`) with the target model as base; returns
    its result (None on a secondary process under `accelerate launch`). `target_tokens`:
    bring the chosen side to exactly that many tokens (cut or repeated, noted). Resumes,
    skips and refuses as `sft.train_arm` does."""
    from transformers import AutoTokenizer

    out = RunDir.of(config).arm(ARM)
    base = sft.base_weights(config)
    t = config.training
    for n, row in enumerate(rows, 1):
        _check(row, n)
    check_not_eval([_guard_view(r) for r in rows])
    try:
        tokenizer = AutoTokenizer.from_pretrained(base, trust_remote_code=False)
    except OSError as e:
        raise ParablesError(f"cannot load the tokenizer of '{config.models.target.model}': "
                            f"{one_line(str(e))}") from e
    data = tokenize_pairs(rows, tokenizer, t.max_length)
    data.notes = [*(notes or []), *data.notes]
    if target_tokens is not None:
        match_pairs(data, target_tokens, config.seed)
    spec = sft._spec(config, ARM, base, data)
    spec["hyperparameters"] = {**spec["hyperparameters"], "dpo_beta": beta,
                               "dpo_loss": "sigmoid"}
    spec_hash = digest(spec)
    with sft.main_first() as main:  # one process replaces and writes; the others then read
        done = sft.claim_arm(out, ARM, spec, spec_hash, force, main)
        if done is None and main:
            write_jsonl(out.data, [{**row, "chosen_tokens": len(c)}
                                   for row, c in zip(data.rows, data.chosen_ids, strict=True)])
    if done is not None:
        return done
    return _fit(config, data, tokenizer, out, base, spec, spec_hash, beta, progress,
                callbacks or [])



def _fit(config: ParablesConfig, data: PairData, tokenizer: Any, out: ArmPaths, base: str,
         spec: dict[str, Any], spec_hash: str, beta: float, progress: bool,
         callbacks: list[Any]) -> ArmResult | None:
    import torch
    from datasets import Dataset
    from transformers import PrinterCallback
    from transformers.trainer_utils import get_last_checkpoint
    from transformers.utils import logging as hf_logging
    from trl.trainer.dpo_config import DPOConfig

    t = config.training
    hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call]
    warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*",
                            category=FutureWarning)
    device, bf16 = sft._device()
    ckpt_dir = out.checkpoints
    args = DPOConfig(
        output_dir=str(ckpt_dir),
        num_train_epochs=t.epochs,
        max_steps=t.max_steps or -1,
        per_device_train_batch_size=t.batch_size,
        gradient_accumulation_steps=t.grad_accum,
        learning_rate=t.learning_rate,
        lr_scheduler_type=t.lr_scheduler,
        warmup_steps=t.warmup_steps,
        activation_checkpointing=t.gradient_checkpointing,  # TRL's default is on
        max_length=t.max_length,
        beta=beta,
        bf16=bf16,  # TRL's default is on, even on CPU
        use_cpu=device == "cpu",
        seed=config.seed,
        data_seed=config.seed,
        logging_steps=1,
        save_strategy="steps",
        save_steps=t.save_steps,
        save_total_limit=2,
        report_to=[],
        disable_tqdm=True,
        dataloader_num_workers=0,
        include_num_input_tokens_seen="non_padding",
    )
    # the model loads after the arguments, as in sft: under `accelerate launch` they set up
    # the process group first (ZeRO-3 / FSDP then load it partitioned)
    model, peft_config = sft.load_base(config, base, bf16, tokenizer)
    dataset = Dataset.from_dict({"prompt_ids": data.prompt_ids, "chosen_ids": data.chosen_ids,
                                 "rejected_ids": data.rejected_ids})
    bar = sft._progress_bar(ARM, progress)
    trainer = _trainer_class()(model=model, args=args, train_dataset=dataset,
                               processing_class=tokenizer, peft_config=peft_config,
                               callbacks=[bar, *callbacks])
    trainer.remove_callback(PrinterCallback)
    last = get_last_checkpoint(str(ckpt_dir)) if ckpt_dir.is_dir() else None  # type: ignore[no-untyped-call]
    started = time.time()
    try:
        result = trainer.train(resume_from_checkpoint=last)
    except RuntimeError as e:
        if not (isinstance(e, torch.OutOfMemoryError) or "can't allocate memory" in str(e)
                or "out of memory" in str(e).lower()):
            raise
        raise ParablesError(
            f"out of memory training arm '{ARM}' at step {trainer.state.global_step} "
            f"(checkpoints kept in {ckpt_dir}; a rerun resumes); {sft._OOM_HINT}") from e
    finally:
        bar.close()
    seconds = time.time() - started
    sft._save(trainer, tokenizer, out, t.method == "lora")  # every rank: sharded weights gather
    if not trainer.is_world_process_zero():
        return None
    history = [(int(h["step"]), float(h["loss"])) for h in trainer.state.log_history
               if "loss" in h]
    sft.plot_loss(history, out.loss_plot, f"{ARM}: DPO loss")
    tokens_run = trainer.state.num_input_tokens_seen - (
        sft._tokens_at(Path(last)) if last else 0)
    arm = ArmResult(
        **spec, spec_hash=spec_hash, config_hash=config_hash(config),
        data=data.summary(), device=device, dtype="bfloat16" if bf16 else "float32",
        steps=trainer.state.global_step, epochs=trainer.state.epoch,
        resumed_from=Path(last).name if last else None,
        seconds=round(seconds, 2),
        tokens_per_second=round(tokens_run / max(seconds, 1e-9), 1),
        train_loss=result.training_loss, loss_history=history,
        merged=str(out.merged), adapter=str(out.adapter) if t.method == "lora" else None,
        versions=package_versions(), processes=trainer.args.world_size)
    atomic_write_json(out.manifest, arm.model_dump(mode="json"))
    return arm


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
