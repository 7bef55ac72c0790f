"""Corpus generation: one process vs Ray Data on the same machine (issue 17).

Both engines write the same n stories (full pipeline: prompts, gate, appends, dedup, guard)
against one local OpenAI-compatible server that answers every call after a fixed latency
(default 2 s), with 64 calls in flight in all: one process at concurrency 64, or `--workers`
Ray actors at 64 / workers each on a local runtime. The runtime's start-up is timed apart
(a cluster is started once for many jobs). Run it alone: on 2 cores a second job distorts it.

    .venv/bin/python benchmarks/bench_generation_ray.py [--n 512] [--latency 2] [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from bench_stories import serve  # noqa: E402


def run(url: str, n: int, engine: str, workers: int, concurrency: int) -> tuple[float, float]:
    """(seconds for the whole stage, seconds of its last step alone: dedup + guards + stats,
    timed by running that step again on the finished run)."""
    from parables.config import load_config
    from parables.generation.pipeline import finalize, generate_stories

    with tempfile.TemporaryDirectory() as tmp:
        os.environ["BENCH_BASE_URL"], os.environ["BENCH_API_KEY"] = url, "x"
        per_worker = concurrency // workers if engine == "ray" else concurrency
        cfg = load_config(None, {"runs_dir": tmp, "seed": 7,
                                 "models.generator": "openai-api/bench/m",
                                 "stories.concurrency": per_worker,
                                 "stories.engine": engine, "stories.workers": workers,
                                 "generation.max_connections": per_worker})
        t0 = time.perf_counter()
        summary = generate_stories(cfg, n=n, progress=False)
        elapsed = time.perf_counter() - t0
        t0 = time.perf_counter()
        finalize(cfg)
        last = time.perf_counter() - t0
    assert summary.accepted + summary.rejected == n, summary
    return elapsed, last


def main() -> None:
    import ray

    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=512)
    ap.add_argument("--latency", type=float, default=2.0)
    ap.add_argument("--concurrency", type=int, default=64)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    print(f"# machine: {platform.machine()}, {os.cpu_count()} cpus, python "
          f"{platform.python_version()}, ray {ray.__version__}")
    server, url = serve(args.latency)
    os.environ["BENCH_API_KEY"] = "x"
    t0 = time.perf_counter()
    ray.init(num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False)
    startup = time.perf_counter() - t0
    run(url, 8, "local", 1, args.concurrency)  # warm-up: imports, connections, actors
    run(url, 8, "ray", args.workers, args.concurrency)
    local, on_ray = [], []
    for _ in range(args.repeat):  # interleaved, so drift hits both alike
        local.append(run(url, args.n, "local", 1, args.concurrency))
        on_ray.append(run(url, args.n, "ray", args.workers, args.concurrency))
    ray.shutdown()
    server.shutdown()
    floor = args.n / args.concurrency * args.latency
    print(f"{args.n} stories, latency {args.latency}s, {args.concurrency} calls in flight "
          f"(latency floor {floor:.1f}s); median of {args.repeat}")
    rows = {}
    for label, runs in ((f"one process (concurrency {args.concurrency})", local),
                        (f"ray, {args.workers} actors x {args.concurrency // args.workers}",
                         on_ray)):
        total = statistics.median(t for t, _ in runs)
        last = statistics.median(f for _, f in runs)
        rows[label] = (total, total - last, last)
        print(f"  {label}: stage {total:.1f}s = writing {total - last:.1f}s "
              f"({args.n / (total - last):.1f}/s) + dedup/guards/stats {last:.1f}s   runs: "
              + ", ".join(f"{t:.1f}" for t, _ in runs))
    (t_local, w_local, _), (t_ray, w_ray, _) = rows.values()
    print(f"  ray / one process: writing {w_ray / w_local:.2f}x the time, whole stage "
          f"{t_ray / t_local:.2f}x; runtime start-up {startup:.1f}s (not in the above)")


if __name__ == "__main__":
    main()
