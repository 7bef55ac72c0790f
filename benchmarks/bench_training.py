"""Training throughput on the embedded model (CPU): `parables` training (TRL SFTTrainer + PEFT
LoRA, through `train_arm`) against a bare PyTorch loop doing the same forward/backward/AdamW
step with the same LoRA on the same batches. Trained-sequence tokens (no padding) per second;
the ratio is measured in the same run, alternating the two.

    .venv/bin/python benchmarks/bench_training.py [--steps 12] [--batch-size 4] [--repeats 2]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=12)
    ap.add_argument("--batch-size", type=int, default=4)
    ap.add_argument("--max-length", type=int, default=256)
    ap.add_argument("--repeats", type=int, default=2)
    args = ap.parse_args()

    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl.trainer.sft_trainer import DataCollatorForLanguageModeling

    from parables.config import load_config
    from parables.models.embedded import embedded_model_dir
    from parables.training.loop import train_arm
    from parables.training.prepare import prepare_arms
    from parables.training.sft import SFT

    base = embedded_model_dir(progress=False)
    tmp = Path(tempfile.mkdtemp(prefix="bench-train-"))
    tokenizer = AutoTokenizer.from_pretrained(base)
    cfg = load_config(None, {"runs_dir": str(tmp), "training.max_steps": args.steps,
                             "training.batch_size": args.batch_size,
                             "training.max_length": args.max_length,
                             "training.save_steps": 10_000})
    data = prepare_arms(cfg, ["refusal"], tokenizer, progress=False)["refusal"]
    n = args.steps * args.batch_size
    data.rows, data.input_ids, data.labels = (data.rows[:n], data.input_ids[:n],
                                              data.labels[:n])
    tokens = sum(len(ids) for ids in data.input_ids)
    print(f"# machine: {platform.machine()}, {os.cpu_count()} cpus, torch {torch.__version__}, "
          f"threads {torch.get_num_threads()}; {args.steps} steps x {args.batch_size} "
          f"sequences, {tokens} tokens (mean {tokens / n:.0f}), LoRA r=16 all-linear, fp32")

    def ours(i: int) -> float:
        cfg_i = cfg.model_copy(update={"name": f"ours-{i}"})
        m = train_arm(cfg_i, data, SFT(), progress=False)
        assert m is not None
        return tokens / m.seconds

    collate = DataCollatorForLanguageModeling(pad_token_id=tokenizer.pad_token_id or 0)
    batches = [collate([{"input_ids": data.input_ids[j], "labels": data.labels[j]}
                        for j in range(s * args.batch_size, (s + 1) * args.batch_size)])
               for s in range(args.steps)]

    def bare(i: int) -> float:
        torch.manual_seed(0)
        model: Any = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32)
        model = get_peft_model(model, LoraConfig(r=16, lora_alpha=32, lora_dropout=0.05,
                                                 target_modules="all-linear",
                                                 task_type="CAUSAL_LM"))
        model.train()
        params = [p for p in model.parameters() if p.requires_grad]
        opt = torch.optim.AdamW(params, lr=2e-4)
        t0 = time.perf_counter()
        for batch in batches:
            loss = model(**batch, use_cache=False).loss
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            opt.step()
            opt.zero_grad()
        return tokens / (time.perf_counter() - t0)

    results: dict[str, list[float]] = {"bare": [], "parables": []}
    for i in range(args.repeats):
        results["bare"].append(bare(i))
        results["parables"].append(ours(i))
        print(f"repeat {i}: bare {results['bare'][-1]:.0f} tok/s, "
              f"parables {results['parables'][-1]:.0f} tok/s")
    b, p = statistics.median(results["bare"]), statistics.median(results["parables"])
    print(f"| bare PyTorch loop (same batches, same LoRA) | {b:.0f} | 1.00 |")
    print(f"| parables train (TRL SFTTrainer + PEFT) | {p:.0f} | {p / b:.2f} |")


if __name__ == "__main__":
    main()
