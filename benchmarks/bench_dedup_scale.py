"""Near-dedup at scale: wall time and peak memory per worker of the Ray engine
(`dedup_dataset`) as the corpus grows, against the single-process `dedup` where it fits.

Stories are synthetic: ~300 words drawn from 5,000 made-up words by a generator seeded with
the row's number; row i with i % 33 == 1 is row i-1 with one word changed (a near-duplicate,
~3%) and row i with i % 997 == 2 is row i-2 in capitals (an exact duplicate, ~0.1%). On Ray
the rows are generated inside the workers from `ray.data.range(n)` (the driver never holds the
corpus); the single-process run builds the list in its own process first.

Every measurement runs in a fresh process: a local Ray runtime of --workers CPUs, or one
`dedup` call. Memory: a thread samples every Ray worker process (`ray::*`) on this machine
every 0.2 s: peak RSS is the kernel's high-water mark (VmHWM; it counts pages of the shared
object store a worker has touched), private is the largest anonymous RSS seen (RssAnon:
the worker's own heap). The driver's peak is its own high-water mark (it holds the removed
entries and the stories in shared LSH buckets). Where both engines ran on the same n, the
removed entries are compared (digest of the JSON). Linux only (/proc). Run it alone on the
machine; it prints one markdown table at the end.

    .venv/bin/python benchmarks/bench_dedup_scale.py --sizes 10000,100000,1000000 \\
        --workers 2 --single-sizes 10000,100000
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import random
import resource
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

SEED = 17
WORDS = 300
VOCAB = [f"{a}{b}{c}{d}" for a in ("b", "c", "d", "f", "g", "l", "m", "n", "p", "r")
         for b in ("a", "e", "i", "o", "u") for c in ("n", "r", "s", "t", "l", "m", "k", "v",
                                                     "d", "p")
         for d in ("a", "e", "o", "en", "er", "is", "on", "um", "ar", "ix")]  # 5,000 words
ROWS_PER_BLOCK = 5_000


def story(i: int) -> str:
    """Row i's text (deterministic, the same in every process)."""
    if i % 33 == 1:
        words = story(i - 1).split()
        words[random.Random(SEED * 7 + i).randrange(len(words))] = "changed"
        return " ".join(words)
    if i % 997 == 2:
        return story(i - 2).upper()
    rng = random.Random(SEED * 1_000_003 + i)
    return " ".join(rng.choices(VOCAB, k=WORDS)).capitalize() + "."


def _generate(batch: dict[str, Any]) -> dict[str, Any]:
    import numpy as np

    rows = [int(i) for i in batch["id"]]
    return {"id": np.array([f"s{i:08d}" for i in rows], dtype=object),
            "text": np.array([story(i) for i in rows], dtype=object),
            "pos": np.array(rows, dtype=np.int64)}


def _digest(removed: list[dict[str, Any]]) -> str:
    return hashlib.sha256(json.dumps(removed, sort_keys=True).encode()).hexdigest()[:16]


def _kinds(removed: list[dict[str, Any]]) -> dict[str, int]:
    out: dict[str, int] = {}
    for r in removed:
        out[r["kind"]] = out.get(r["kind"], 0) + 1
    return out


def _status(pid: str) -> dict[str, int]:
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("VmHWM", "RssAnon"):
                out[key] = int(value.split()[0]) // 1024  # kB -> MB
    return out


class WorkerMemory(threading.Thread):
    """Samples every `ray::` process's VmHWM and RssAnon until stopped."""

    def __init__(self, every: float = 0.2) -> None:
        super().__init__(daemon=True)
        self.every, self.stopped = every, threading.Event()
        self.hwm: dict[str, int] = {}
        self.anon: dict[str, int] = {}

    def run(self) -> None:
        while not self.stopped.is_set():
            for pid in os.listdir("/proc"):
                if not pid.isdigit():
                    continue
                try:
                    with open(f"/proc/{pid}/cmdline", "rb") as f:
                        if not f.read(5).startswith(b"ray::"):
                            continue
                    s = _status(pid)
                except OSError:  # gone meanwhile
                    continue
                self.hwm[pid] = max(self.hwm.get(pid, 0), s.get("VmHWM", 0))
                self.anon[pid] = max(self.anon.get(pid, 0), s.get("RssAnon", 0))
            self.stopped.wait(self.every)


def run_ray(n: int, workers: int) -> dict[str, Any]:
    import logging

    import ray

    from parables.generation.distributed import dedup_dataset

    sampler = WorkerMemory()
    sampler.start()
    ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False,
             logging_level=logging.WARNING)
    ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = False
    ctx.print_on_execution_start = False
    logging.getLogger("ray.data").setLevel(logging.ERROR)
    try:
        started = time.perf_counter()
        ds = ray.data.range(n, override_num_blocks=max(4 * workers, n // ROWS_PER_BLOCK))
        _, removed = dedup_dataset(ds.map_batches(_generate, batch_format="numpy"))
        seconds = time.perf_counter() - started
    finally:
        sampler.stopped.set()
        sampler.join()
        ray.shutdown()
    return {"engine": "ray", "n": n, "workers": workers, "seconds": seconds,
            "worker_peak_mb": max(sampler.hwm.values(), default=0),
            "worker_private_mb": max(sampler.anon.values(), default=0),
            "processes": len(sampler.hwm),
            "driver_peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024,
            "removed": _kinds(removed), "digest": _digest(removed)}


def run_single(n: int) -> dict[str, Any]:
    from parables.generation.dedup import dedup

    stories = [{"id": f"s{i:08d}", "text": story(i)} for i in range(n)]
    before = _status("self")
    started = time.perf_counter()
    _, removed = dedup(stories)
    seconds = time.perf_counter() - started
    return {"engine": "single", "n": n, "workers": 1, "seconds": seconds,
            "corpus_mb": before.get("RssAnon", 0),
            "driver_peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024,
            "removed": _kinds(removed), "digest": _digest(removed)}


def _child(args: list[str]) -> dict[str, Any]:
    out = subprocess.run([sys.executable, str(Path(__file__).resolve()), *args], check=True,
                         capture_output=True, text=True).stdout
    result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    return result


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="10000,100000,1000000", help="n for the Ray engine")
    ap.add_argument("--single-sizes", default="10000,100000",
                    help="n for single-process dedup (it holds every kept MinHash)")
    ap.add_argument("--workers", type=int, default=2, help="CPUs of the local Ray runtime")
    args = ap.parse_args()
    sizes = [int(x) for x in args.sizes.split(",") if x]
    singles = [int(x) for x in args.single_sizes.split(",") if x]
    results: list[dict[str, Any]] = []
    for n in sorted(set(sizes) | set(singles)):
        if n in singles:
            results.append(_child(["_single", str(n)]))
            print(json.dumps(results[-1]), file=sys.stderr, flush=True)
        if n in sizes:
            results.append(_child(["_ray", str(n), str(args.workers)]))
            print(json.dumps(results[-1]), file=sys.stderr, flush=True)
    single = {r["n"]: r["digest"] for r in results if r["engine"] == "single"}
    print(f"\nMachine: {platform.machine()}, {os.cpu_count()} CPUs, Python "
          f"{platform.python_version()}. Date: {time.strftime('%Y-%m-%d')}. Ray engine: local "
          f"runtime of {args.workers} CPUs.\n")
    print("| n | engine | wall s | stories/s | peak RSS per worker (MB) | peak private per "
          "worker (MB) | driver peak RSS (MB) | removed near / exact | same as dedup() |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in results:
        worker = (f"{r['worker_peak_mb']} ({r['processes']} processes)"
                  if r["engine"] == "ray" else "—")
        private = r["worker_private_mb"] if r["engine"] == "ray" else "—"
        driver = (f"{r['driver_peak_mb']} (corpus {r['corpus_mb']})"
                  if r["engine"] == "single" else str(r["driver_peak_mb"]))
        same = ("yes" if single[r["n"]] == r["digest"] else "**NO**") \
            if r["engine"] == "ray" and r["n"] in single else "—"
        print(f"| {r['n']:,} | {r['engine']} | {r['seconds']:.1f} | "
              f"{r['n'] / r['seconds']:,.0f} | {worker} | {private} | {driver} | "
              f"{r['removed'].get('near', 0)} / {r['removed'].get('exact', 0)} | {same} |")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "_ray":
        print(json.dumps(run_ray(int(sys.argv[2]), int(sys.argv[3]))))
    elif len(sys.argv) > 1 and sys.argv[1] == "_single":
        print(json.dumps(run_single(int(sys.argv[2]))))
    else:
        main()
