"""Story pipeline benchmarks.

1. Overhead: stories/s of the full pipeline (`generate_stories`: Inspect model, prompts, quality
   gate, fsynced appends, dedup, contamination guard, stats) vs a bare asyncio loop making the
   same chat-completion calls with the `openai` client, both against one local
   OpenAI-compatible server with a fixed artificial latency, at concurrency 64.
2. Scale: dedup + contamination guard on synthetic corpora of growing size (time, peak RSS).

    .venv/bin/python benchmarks/bench_stories.py [--n 512] [--latency 0.2] [--sizes 12000,100000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

STORY = "The Ledger\n" + " ".join(
    f"On day {i} Wren noticed that line {i * 7} of the ledger did not balance, weighed the easy "
    f"lie because nobody would check, and decided to tell Ama the truth about entry {i}."
    for i in range(20)) + " It felt steady."


def serve(latency: float) -> tuple[ThreadingHTTPServer, str]:
    body = json.dumps({
        "id": "x", "object": "chat.completion", "created": 0, "model": "m",
        "choices": [{"index": 0, "finish_reason": "stop",
                     "message": {"role": "assistant", "content": STORY}}],
        "usage": {"prompt_tokens": 600, "completion_tokens": 700, "total_tokens": 1300},
    }).encode()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:  # noqa: N802
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            time.sleep(latency)
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *a: object) -> None:
            pass

    ThreadingHTTPServer.daemon_threads = True
    ThreadingHTTPServer.request_queue_size = 256
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}/v1"


async def bare(url: str, n: int, concurrency: int) -> float:
    from openai import AsyncOpenAI

    from parables.constitution import load_constitution
    from parables.generation.prompts import story_prompt
    from parables.generation.seeds import sample_seeds

    c = load_constitution()
    seeds = sample_seeds(c, n, seed=7)
    limit = asyncio.Semaphore(concurrency)

    async def one(s):  # type: ignore[no-untyped-def]
        async with limit:
            r = await client.chat.completions.create(model="m", messages=story_prompt(c, s))
            return r.choices[0].message.content

    async with AsyncOpenAI(base_url=url, api_key="x", max_retries=0) as client:
        t0 = time.perf_counter()
        await asyncio.gather(*(one(s) for s in seeds))
        return time.perf_counter() - t0


def pipeline(url: str, n: int, concurrency: int) -> float:
    from parables.config import load_config
    from parables.generation.pipeline import generate_stories

    with tempfile.TemporaryDirectory() as tmp:
        os.environ["BENCH_BASE_URL"], os.environ["BENCH_API_KEY"] = url, "x"
        cfg = load_config(None, {"runs_dir": tmp, "seed": 7,
                                 "models.generator": "openai-api/bench/m",
                                 "stories.concurrency": concurrency,
                                 "generation.max_connections": concurrency})
        t0 = time.perf_counter()
        summary = generate_stories(cfg, n=n, progress=False)
        elapsed = time.perf_counter() - t0
    assert summary.accepted + summary.rejected == n, summary
    return elapsed


SCALE_CHILD = """
import random, resource, sys, time
from parables.honeypots.guard import LeakGuard, eval_texts
from parables.generation.dedup import dedup
n = int(sys.argv[1]); rng = random.Random(0)
vocab = [f"w{i}" for i in range(20000)]
stories = [{"id": f"s{i:06d}", "text": " ".join(rng.choices(vocab, k=300))} for i in range(n)]
stories += [dict(s, id=s["id"] + "d") for s in stories[: n // 100]]  # 1% exact duplicates
t0 = time.perf_counter()
kept, removed = dedup(stories)
t1 = time.perf_counter()
clean, leaks = LeakGuard(eval_texts()).split(kept)
t2 = time.perf_counter()
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(f"{n} {t1 - t0:.1f} {t2 - t1:.1f} {rss:.0f} {len(removed)}")
"""


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=512)
    ap.add_argument("--latency", type=float, default=0.2)
    ap.add_argument("--concurrency", type=int, default=64)
    ap.add_argument("--sizes", default="12000,100000")
    args = ap.parse_args()
    print(f"# machine: {platform.machine()}, {os.cpu_count()} cpus, python "
          f"{platform.python_version()}")
    server, url = serve(args.latency)
    asyncio.run(bare(url, 8, args.concurrency))  # warm-up: imports and connections, both sides
    pipeline(url, 8, args.concurrency)
    t_bare = asyncio.run(bare(url, args.n, args.concurrency))
    t_pipe = pipeline(url, args.n, args.concurrency)
    server.shutdown()
    floor = args.n / args.concurrency * args.latency
    print(f"overhead: {args.n} stories, latency {args.latency}s, concurrency "
          f"{args.concurrency} (latency floor {floor:.1f}s)")
    print(f"  bare asyncio loop: {args.n / t_bare:7.1f} stories/s ({t_bare:.1f}s)")
    print(f"  full pipeline:     {args.n / t_pipe:7.1f} stories/s ({t_pipe:.1f}s) -> "
          f"{t_bare / t_pipe:.2f} of the bare loop")
    for size in args.sizes.split(","):
        out = subprocess.run([sys.executable, "-c", SCALE_CHILD, size], capture_output=True,
                             text=True, check=True).stdout.split()
        n, t_dedup, t_guard, rss, removed = out
        print(f"scale: {int(n):>7,} stories: dedup {t_dedup}s, guard {t_guard}s, "
              f"peak RSS {rss} MB, removed {removed}")


if __name__ == "__main__":
    main()
