"""Supervised fine-tuning of one arm: TRL `SFTTrainer` + PEFT LoRA (or full weights).

Per arm, under `runs/<name>/train/<arm>/`: `data.jsonl` (exactly what was trained on),
`checkpoints/` (resume points), `adapter/` (LoRA), `merged/` (safetensors, usable as
`hf/<dir>` by `parables eval`), `loss.png` and `manifest.json`. A rerun resumes from the last
checkpoint; a finished arm with the same spec is skipped; a different spec is refused unless
forced, so one directory never mixes two recipes.
"""

from __future__ import annotations

import shutil
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from parables._io import atomic_write_json, digest, ensure_dir, read_json, write_jsonl
from parables.config import ParablesConfig, config_hash
from parables.errors import ParablesError, one_line
from parables.run import ArmPaths, RunDir, package_versions
from parables.training.data import ArmData, DataSummary

__all__ = ["ArmResult", "base_weights", "plot_loss", "train", "train_arm"]

_OOM_HINT = ("try a smaller training.batch_size (raise training.grad_accum to keep the "
             "effective batch), training.method: lora, training.gradient_checkpointing: true "
             "or a shorter training.max_length")


class ArmResult(BaseModel):
    """`train/<arm>/manifest.json`: the recipe, what was trained on, and how it went."""

    arm: str
    base_model: str
    base_path: str
    seed: int
    data_hash: str
    hyperparameters: dict[str, Any]
    spec_hash: str
    config_hash: str
    data: DataSummary
    device: str
    dtype: str
    processes: int = 1  # under `accelerate launch`: batch_size is per process
    steps: int
    epochs: float | None
    resumed_from: str | None
    seconds: float
    tokens_per_second: float
    train_loss: float
    loss_history: list[tuple[int, float]]
    merged: str
    adapter: str | None = None
    versions: dict[str, str]
    skipped: bool = False  # finished before with the same spec; nothing was trained now


def base_weights(config: ParablesConfig) -> str:
    """What transformers loads for the target: a local directory or a hub id (one line
    naming the problem when the target has no open weights)."""
    return config.models.target.ref.training_weights()


def _spec(config: ParablesConfig, arm: str, base: str, data: ArmData) -> dict[str, Any]:
    t = config.training.model_dump(mode="json", exclude={
        "arms", "match_tokens", "mixed_stories_share", "stories", "token_budget", "data",
        "documents", "advice", "shares", "rewrite", "dpo_beta", "dpo_rejected"})
    # data choices (the data hash has them); dpo's beta joins its own spec
    spec = {"arm": arm, "base_model": config.models.target.model, "base_path": base,
            "seed": config.seed, "data_hash": data.data_hash(), "hyperparameters": t}
    complete = Path(base) / ".complete"  # a model parables trained (an organism): its recipe,
    if complete.is_file():  # so an arm on top of a retrained one is retrained too
        spec["base_recipe"] = complete.read_text().strip()
    return spec


def _device() -> tuple[str, bool]:
    import torch

    if torch.cuda.is_available():
        return "cuda", bool(torch.cuda.is_bf16_supported())
    return "cpu", False


def read_arm(paths: ArmPaths) -> ArmResult | None:
    """A finished arm's result (None if it has not finished)."""
    data = read_json(paths.manifest)
    if data is None:
        return None
    if "outputs" in data:  # written by parables 0.1.0 before results were typed
        data = {**data, **data.pop("outputs")}
    try:
        return ArmResult.model_validate(data)
    except ValidationError as e:
        raise ParablesError(f"{paths.manifest}: not an arm result this version can read "
                            f"({e.errors()[0]['msg']}); retrain with --force") from e


def spec_hash_of(paths: ArmPaths) -> str | None:
    """The recipe hash of whatever was (or is being) trained in `paths`."""
    spec = read_json(paths.spec)
    return str(spec["spec_hash"]) if spec is not None else None


def train_arm(
    config: ParablesConfig,
    data: ArmData,
    *,
    force: bool = False,
    progress: bool = True,
    callbacks: list[Any] | None = None,
) -> ArmResult | None:
    """Train one arm on `data` (already tokenised, matched and checked); returns its result
    (None on a secondary process under `accelerate launch`). Resumes from the last
    checkpoint of an interrupted run with the same spec."""
    arm = data.arm
    out = RunDir.of(config).arm(arm)
    base = base_weights(config)
    spec = _spec(config, arm, base, data)
    spec_hash = digest(spec)
    with main_first() as main:  # one process replaces and writes; the others then read
        done = claim_arm(out, arm, spec, spec_hash, force, main)
        if done is None and main:
            write_jsonl(out.data, [{**row, "trained_tokens": sum(1 for t in lab if t != -100)}
                                   for row, lab in zip(data.rows, data.labels, strict=True)])
    if done is not None:
        return done
    return _fit(config, data, out, base, spec, spec_hash, progress, callbacks or [])


@contextmanager
def main_first() -> Iterator[bool]:
    """Under `accelerate launch`, the main process runs the block first (it builds arm data,
    pays for generator calls, replaces and writes files) and the others after it (they read
    what it wrote); yields whether this is the main process. One process: just runs it."""
    from accelerate import PartialState

    state = PartialState()
    with state.main_process_first():
        yield bool(state.is_main_process)


def claim_arm(out: ArmPaths, arm: str, spec: dict[str, Any], spec_hash: str, force: bool,
              main: bool) -> ArmResult | None:
    """Make `out` this recipe's (the main process removes it first with `force`): the
    finished result when it is already trained (skipped), else None. Refuses a directory
    holding another recipe."""
    if force and main and out.dir.exists():
        shutil.rmtree(out.dir)
    previous = spec_hash_of(out)
    if previous is not None and previous != spec_hash:
        raise ParablesError(
            f"{out.dir} holds arm '{arm}' trained with a different recipe or data "
            f"(spec {previous} vs {spec_hash}); rerun with --force to replace it, or use "
            "another --name")
    done = read_arm(out)
    if done is not None and done.spec_hash == spec_hash and out.merged_complete.is_file():
        return done.model_copy(update={"skipped": True})
    if main:
        ensure_dir(out.dir)
        atomic_write_json(out.spec, {"spec_hash": spec_hash, **spec})
    return None


def _fit(config: ParablesConfig, data: ArmData, out: ArmPaths, base: str,
         spec: dict[str, Any], spec_hash: str, progress: bool, callbacks: list[Any]
         ) -> ArmResult | None:
    import torch
    from datasets import Dataset
    from transformers import AutoTokenizer, PrinterCallback
    from transformers.trainer_utils import get_last_checkpoint
    from transformers.utils import logging as hf_logging
    from trl.trainer.sft_config import SFTConfig

    t = config.training
    hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call]
    warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*",
                            category=FutureWarning)  # raised inside transformers/peft
    device, bf16 = _device()
    ckpt_dir = out.checkpoints
    args = SFTConfig(
        output_dir=str(ckpt_dir),
        num_train_epochs=t.epochs,
        max_steps=t.max_steps or -1,
        per_device_train_batch_size=t.batch_size,
        gradient_accumulation_steps=t.grad_accum,
        learning_rate=t.learning_rate,
        lr_scheduler_type=t.lr_scheduler,
        warmup_steps=t.warmup_steps,
        activation_checkpointing=t.gradient_checkpointing,
        max_length=t.max_length,
        bf16=bf16,
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
        dataset_kwargs={"skip_prepare_dataset": True},  # tokenised, labelled, truncated
    )
    # The model loads after the arguments: under `accelerate launch` they set up the process
    # group, so DeepSpeed ZeRO-3 builds the model already partitioned and FSDP's
    # cpu_ram_efficient_loading reads the weights on rank 0 only (not a full copy per rank).
    try:
        tokenizer = AutoTokenizer.from_pretrained(base, trust_remote_code=False)
    except OSError as e:
        raise ParablesError(f"cannot load base model '{config.models.target.model}': "
                            f"{one_line(str(e))}") from e
    model, peft_config = load_base(config, base, bf16, tokenizer)
    dataset = Dataset.from_dict({"input_ids": data.input_ids, "labels": data.labels})
    bar = _progress_bar(data.arm, progress)
    trainer = _trainer_class()(model=model, args=args, train_dataset=dataset,
                         processing_class=tokenizer, peft_config=peft_config,
                         callbacks=[bar, *callbacks])
    trainer.remove_callback(PrinterCallback)  # the bar shows the loss; no dict per step
    last = get_last_checkpoint(str(ckpt_dir)) if ckpt_dir.is_dir() else None  # type: ignore[no-untyped-call]
    started = time.time()
    try:
        result = trainer.train(resume_from_checkpoint=last)
    except RuntimeError as e:  # torch.OutOfMemoryError is one; so is a CPU allocator failure
        if not (isinstance(e, torch.OutOfMemoryError) or "can't allocate memory" in str(e)
                or "out of memory" in str(e).lower()):
            raise
        raise ParablesError(
            f"out of memory training arm '{data.arm}' at step {trainer.state.global_step} "
            f"(checkpoints kept in {ckpt_dir}; a rerun resumes); {_OOM_HINT}") from e
    finally:
        bar.close()
    seconds = time.time() - started
    _save(trainer, tokenizer, out, t.method == "lora")  # every rank: sharded weights gather
    if not trainer.is_world_process_zero():
        return None
    history = [(int(h["step"]), float(h["loss"])) for h in trainer.state.log_history
               if "loss" in h]
    plot_loss(history, out.loss_plot, f"{data.arm}: training loss")
    tokens_run = trainer.state.num_input_tokens_seen - (_tokens_at(Path(last)) if last else 0)
    arm = ArmResult(
        **spec, spec_hash=spec_hash, config_hash=config_hash(config),
        data=data.summary(), device=device, dtype="bfloat16" if bf16 else "float32",
        processes=trainer.args.world_size,
        steps=trainer.state.global_step, epochs=trainer.state.epoch,
        resumed_from=Path(last).name if last else None,
        seconds=round(seconds, 2),
        tokens_per_second=round(tokens_run / max(seconds, 1e-9), 1),
        train_loss=result.training_loss, loss_history=history,
        merged=str(out.merged), adapter=str(out.adapter) if t.method == "lora" else None,
        versions=package_versions())
    atomic_write_json(out.manifest, arm.model_dump(mode="json"))
    return arm


def load_base(config: ParablesConfig, base: str, bf16: bool, tokenizer: Any
              ) -> tuple[Any, Any]:
    """The base model to fine-tune (seeded first: LoRA weights are initialised before the
    Trainer seeds anything), a pad token for `tokenizer`, and the LoRA config (None: full).
    SFT and DPO arms load it after their training arguments (see `_fit`)."""
    import torch
    from transformers import AutoModelForCausalLM, set_seed

    t = config.training
    set_seed(config.seed)
    try:
        model = AutoModelForCausalLM.from_pretrained(
            base, dtype=torch.bfloat16 if bf16 else torch.float32, trust_remote_code=False,
            use_safetensors=True)
    except OSError as e:
        raise ParablesError(f"cannot load base model '{config.models.target.model}': "
                            f"{one_line(str(e))}") from e
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    peft_config = None
    if t.method == "lora":
        from peft import LoraConfig

        peft_config = LoraConfig(r=t.lora_r, lora_alpha=t.lora_alpha,
                                 lora_dropout=t.lora_dropout, task_type="CAUSAL_LM",
                                 target_modules=t.target_modules)
    return model, peft_config


def _save(trainer: Any, tokenizer: Any, out: ArmPaths, lora: bool) -> None:
    """Adapter (LoRA) and a merged full model; the merged directory appears complete or not
    at all. Call it on every process: under FSDP or DeepSpeed each rank holds only a shard
    of the weights and gathering them is a collective; only the main process writes. (One
    process, or DDP, where every rank has the whole model: only the main process does
    anything, so calling it there alone is fine too.)"""
    sharded = getattr(trainer, "is_fsdp_enabled", False) or getattr(
        trainer, "is_deepspeed_enabled", False)
    model = _gather(trainer, tokenizer, out, lora) if sharded else trainer.model
    if not trainer.is_world_process_zero():
        return
    if not getattr(tokenizer, "chat_template", None):  # trained in plain_chat's format:
        from parables.training.data import PLAIN_TEMPLATE  # evaluate the model in it too

        tokenizer.chat_template = PLAIN_TEMPLATE
    if lora and not sharded:
        if out.adapter.exists():
            shutil.rmtree(out.adapter)
        model.save_pretrained(str(out.adapter))
        tokenizer.save_pretrained(str(out.adapter))
        model = model.merge_and_unload()
    tmp = out.merged_tmp
    if model is not None:  # else _gather already wrote the full weights into tmp
        if tmp.exists():
            shutil.rmtree(tmp)
        model.save_pretrained(str(tmp), safe_serialization=True)
    tokenizer.save_pretrained(str(tmp))
    (tmp / out.merged_complete.name).write_text(f"{spec_hash_of(out)}\n")
    if out.merged.exists():
        shutil.rmtree(out.merged)
    tmp.rename(out.merged)


def _gather(trainer: Any, tokenizer: Any, out: ArmPaths, lora: bool) -> Any:
    """Save sharded weights (FSDP, DeepSpeed) in full through `Trainer.save_model`, which
    gathers them on the main process (FSDP: once its state dict type is FULL_STATE_DICT, as
    checkpoints may be sharded; ZeRO-3: the 16-bit weights `zero3_save_16bit_model` asks
    for). LoRA: the adapter goes to `adapter/` and the main process returns base + adapter
    reloaded from disk and merged (CPU RAM for one full copy of the model); full weights go
    straight to `merged.tmp/` (returns None)."""
    if trainer.is_fsdp_enabled:
        trainer.accelerator.state.fsdp_plugin.set_state_dict_type("FULL_STATE_DICT")
    target = out.adapter if lora else out.merged_tmp
    main = trainer.is_world_process_zero()
    if main and target.exists():  # only the main process writes in save_model
        shutil.rmtree(target)
    trainer.save_model(str(target))
    if not main:
        return None
    if not any(target.glob("*.safetensors")):  # DeepSpeed fell back to its own checkpoint
        raise ParablesError(
            f"{target}: the trainer saved no gathered weights; with DeepSpeed ZeRO-3 set "
            "zero3_save_16bit_model: true in the accelerate config (as parables' zero3.yaml "
            "does), or recover them from the checkpoint with DeepSpeed's zero_to_fp32.py")
    (target / "training_args.bin").unlink(missing_ok=True)  # the Trainer's, not a model file
    tokenizer.save_pretrained(str(target))
    if not lora:
        return None
    import torch
    from peft import PeftConfig, PeftModel
    from transformers import AutoModelForCausalLM

    if trainer.is_deepspeed_enabled:
        # one process loads here, so ZeRO-3 must not partition this model over the others;
        # training is over, and the next arm's arguments set ZeRO-3 up again
        from transformers.integrations.deepspeed import unset_hf_deepspeed_config

        unset_hf_deepspeed_config()  # type: ignore[no-untyped-call]
    base = PeftConfig.from_pretrained(str(out.adapter)).base_model_name_or_path
    model = AutoModelForCausalLM.from_pretrained(
        base, dtype=torch.bfloat16 if trainer.args.bf16 else torch.float32,
        trust_remote_code=False, use_safetensors=True)
    return PeftModel.from_pretrained(model, str(out.adapter)).merge_and_unload()


def plot_loss(history: list[tuple[int, float]], path: Path, title: str) -> None:
    """A loss-vs-step PNG (matplotlib, no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5), dpi=120)
    if history:
        steps, losses = zip(*history, strict=True)
        ax.plot(steps, losses, color="#3b6ea8", linewidth=1.5)
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def _trainer_class() -> type:
    """TRL's SFTTrainer with the model's own loss. Stock SFTTrainer (1.x) swaps in a chunked
    LM head that also computes per-token entropy and top-1 accuracy on every step, for
    logging; on CPU that extra pass over the vocabulary costs ~10% of a step. The loss is
    the same token-mean cross-entropy (over all accumulated micro-batches)."""
    from transformers import Trainer
    from trl.trainer.sft_trainer import SFTTrainer

    class ParablesSFTTrainer(SFTTrainer):
        def compute_loss(self, model: Any, inputs: dict[str, Any], return_outputs: bool = False,
                         num_items_in_batch: Any = None) -> Any:
            inputs["use_cache"] = False
            return Trainer.compute_loss(self, model, inputs, return_outputs=return_outputs,
                                        num_items_in_batch=num_items_in_batch)

    return ParablesSFTTrainer


def _tokens_at(checkpoint: Path) -> int:
    state = read_json(checkpoint / "trainer_state.json") or {}
    return int(state.get("num_input_tokens_seen", 0))


def _progress_bar(arm: str, enabled: bool) -> Any:
    """The progress bar per arm, with the running loss (a transformers TrainerCallback)."""
    from transformers import TrainerCallback

    from parables.progress import progress_bar

    class ProgressBar(TrainerCallback):
        bar: Any = None
        task: Any = None

        def on_train_begin(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
            if not (enabled and state.is_world_process_zero):
                return
            self.bar = progress_bar()
            self.bar.start()
            self.task = self.bar.add_task(f"train {arm}", total=state.max_steps,
                                          completed=state.global_step, status="")

        def on_log(self, args: Any, state: Any, control: Any,
                   logs: dict[str, float] | None = None, **kw: Any) -> None:
            if self.bar is not None and logs and "loss" in logs:
                self.bar.update(self.task, status=f"loss {logs['loss']:.3f}")

        def on_step_end(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
            if self.bar is not None:
                self.bar.update(self.task, completed=state.global_step)

        def close(self) -> None:
            if self.bar is not None:
                self.bar.stop()
                self.bar = None

    return ProgressBar()


def train(
    config: ParablesConfig,
    arms: list[str] | None = None,
    *,
    force: bool = False,
    progress: bool = True,
    ledger: Any = None,
    callbacks: list[Any] | None = None,
) -> dict[str, ArmResult]:
    """Build every arm's data (matched when asked) and train the arms one after another on
    the target model; returns each arm's result (none on secondary processes under
    `accelerate launch`: the main process reports)."""
    from transformers import AutoTokenizer

    from parables.training.data import prepare_arms

    arms = list(arms or config.training.arms)
    base = base_weights(config)
    try:
        tokenizer = AutoTokenizer.from_pretrained(base, trust_remote_code=False)
    except OSError as e:
        raise ParablesError(f"cannot load the tokenizer of '{config.models.target.model}': "
                            f"{one_line(str(e))}") from e
    t = config.training
    dpo: tuple[list[dict[str, Any]], list[str]] | None = None
    sft_arms = [a for a in arms if a != "dpo"]
    with main_first():  # rows (and their generator calls) once; the other ranks read them
        if "dpo" in arms:  # its pairs first: under smallest matching it may be the smallest
            from parables.training.data import cached_rows
            from parables.training.dpo import dpo_chosen_tokens

            dpo = cached_rows(config, "dpo", ledger, progress)
            chosen = dpo_chosen_tokens(dpo[0], tokenizer, t.max_length)
            if t.match_tokens == "smallest" and sft_arms:
                config = config.model_copy(update={"training": t.model_copy(update={
                    "token_budget": min(chosen, t.token_budget or chosen)})})
        data = prepare_arms(config, sft_arms, tokenizer, ledger=ledger,
                            progress=progress) if sft_arms else {}
    results = {arm: train_arm(config, d, force=force, progress=progress, callbacks=callbacks)
               for arm, d in data.items()}
    if dpo is not None:
        from parables.training.dpo import train_dpo_arm

        target = _dpo_target(config, [d.trained_tokens for d in data.values()], chosen)
        results["dpo"] = train_dpo_arm(config, dpo[0], target_tokens=target,
                                       beta=t.dpo_beta, force=force, progress=progress,
                                       callbacks=callbacks, notes=dpo[1])
    return {arm: r for arm, r in results.items() if r is not None}


def _dpo_target(config: ParablesConfig, matched: list[int], chosen: int) -> int | None:
    """The dpo arm's chosen-side tokens: what the SFT arms were matched to, the budget, or
    (unmatched) the cap."""
    t = config.training
    if t.match_tokens == "budget":
        return t.token_budget
    if t.match_tokens == "smallest":
        return matched[0] if matched else min(chosen, t.token_budget or chosen)
    return t.token_budget if t.token_budget is not None and chosen > t.token_budget else None
