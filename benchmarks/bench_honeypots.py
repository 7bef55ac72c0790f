"""Choice-mode honeypot scoring on the embedded model: items/s one-by-one, batched with shared
prefixes, and the compute floor — a bare batched forward pass over the same prompts with
logits at the last position only. Ratios are measured in the same run.

    .venv/bin/python benchmarks/bench_honeypots.py [--per-family 6] [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from typing import Any


def timed(fn: Any, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--per-family", type=int, default=6)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()

    import torch

    from parables.honeypots.build import select_items
    from parables.models.embedded import embedded_model_dir
    from parables.models.scoring import load_local_model, score_options_batch
    from parables.models.scoring.exact import left_pad

    lm = load_local_model(str(embedded_model_dir(progress=False)))
    items = select_items("eval", per_family=args.per_family)
    data = [([{"role": "system", "content": i.system}] if i.system else [])
            + [{"role": "user", "content": i.user}] for i in items]
    work = [(p, i.labels) for p, i in zip(data, items, strict=True)]
    prompts = sorted((lm.encode(p, ["x"])[0] for p in data), key=len)
    n = len(items)
    print(f"# machine: {platform.machine()}, {os.cpu_count()} cpus, torch {torch.__version__}, "
          f"threads {torch.get_num_threads()}; {n} items, mean prompt "
          f"{sum(map(len, prompts)) / n:.0f} tokens")

    def bare() -> None:
        with torch.inference_mode():
            batch: list[list[int]] = []
            for p in prompts + [None]:  # type: ignore[list-item]
                if p is not None and (not batch or (len(batch) + 1) * len(p) <= 4096):
                    batch.append(p)
                    continue
                ids, mask, pos = left_pad(batch, 0)
                lm.model(input_ids=ids, attention_mask=mask, position_ids=pos, logits_to_keep=1)
                batch = [p] if p is not None else []

    score_options_batch(lm, work[:4])  # warm-up
    t_bare = timed(bare, args.repeats)
    t_one = timed(lambda: score_options_batch(lm, work, share_prefix=False, batch_tokens=1),
                  args.repeats)
    t_batched = timed(lambda: score_options_batch(lm, work), args.repeats)
    print(f"bare forward (compute floor): {n / t_bare:6.2f} items/s")
    print(f"one-by-one:                   {n / t_one:6.2f} items/s  "
          f"({t_bare / t_one:.2f} of floor)")
    print(f"batched + shared prefix:      {n / t_batched:6.2f} items/s  "
          f"({t_bare / t_batched:.2f} of floor, {t_one / t_batched:.2f}x one-by-one)")

    import tempfile

    from parables.config import load_config
    from parables.evaluation.evaluate import evaluate

    with tempfile.TemporaryDirectory() as tmp:
        cfg = load_config(None, {"runs_dir": tmp})
        t0 = time.perf_counter()
        evaluate(cfg, "parables/smollm2-135m", per_family=args.per_family, display="none")
        t_inspect = time.perf_counter() - t0
    print(f"whole `parables eval` through Inspect (incl. start-up): {n / t_inspect:6.2f} "
          f"items/s ({t_inspect:.1f}s)")


if __name__ == "__main__":
    main()
