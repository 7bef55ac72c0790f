"""`accelerate` configs shipped with parables, for training on several GPUs:

- `ddp.yaml`: data parallel (MULTI_GPU); LoRA on models up to ~8B, whole model on every GPU.
- `fsdp.yaml`: FSDP 2, weights sharded per transformer layer; full fine-tuning, 13B-70B.
- `zero3.yaml`: DeepSpeed ZeRO-3 (`pip install deepspeed`); 70B, or where FSDP is unavailable.

`accelerate launch --config_file $(parables accelerate-config fsdp) -m parables train ...`
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from parables.errors import ParablesError

__all__ = ["CONFIGS", "accelerate_config"]

CONFIGS = ("ddp", "fsdp", "zero3")


def accelerate_config(name: str) -> Path:
    """The path of a shipped config (`ddp`, `fsdp` or `zero3`), to pass to
    `accelerate launch --config_file` or copy and edit (num_processes, offloading)."""
    if name not in CONFIGS:
        raise ParablesError(f"no accelerate config '{name}'; choose one of {', '.join(CONFIGS)}")
    return Path(str(files(__name__) / f"{name}.yaml"))
