"""Saving a trained arm: the LoRA adapter, and a merged full model in safetensors that
appears complete or not at all (`merged/` + `.complete`), under one process, DDP, FSDP or
DeepSpeed ZeRO-3."""

from __future__ import annotations

import copy
import shutil
from typing import Any

from parables.errors import ParablesError
from parables.run import ArmPaths
from parables.training.rows import PLAIN_TEMPLATE

__all__ = ["save_model"]


def save_model(trainer: Any, tokenizer: Any, out: ArmPaths, lora: bool, spec_hash: str
               ) -> None:
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
        tokenizer = copy.copy(tokenizer)  # (the caller's is shared by the other arms)
        tokenizer.chat_template = PLAIN_TEMPLATE  # evaluate the model in it too
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
    (tmp / out.merged_complete.name).write_text(f"{spec_hash}\n")
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
    if base is None:
        raise ParablesError(f"{out.adapter}: the saved adapter names no base model to merge "
                            "into")
    model = AutoModelForCausalLM.from_pretrained(
        base, dtype=torch.bfloat16 if trainer.args.bf16 else torch.float32,
        trust_remote_code=False, use_safetensors=True)
    return PeftModel.from_pretrained(model, str(out.adapter)).merge_and_unload()
