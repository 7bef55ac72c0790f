"""Corpus audit: prefilter throughput (MB/s on one core), end-to-end documents/s with the default
classifier, and peak memory as the input grows (it must stay flat: 1 GB under 500 MB RSS).

    .venv/bin/python benchmarks/bench_audit.py [--sizes 100,1000] [--prefilter-mb 200]

Synthetic corpus: JSONL documents of ~2 KB of plain prose, one in 200 mentioning an AI
character (a realistic density for web text); written once to a temporary directory.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

WORDS = ("the of and to in a is that for it as was with be by on not he this are or his from "
         "at which but have an they you were her she there been one all we their has would "
         "when if so no what up out about who them do into more other time could some than "
         "river market weather report season village council letter garden kitchen").split()
MENTIONS = ["The robot lied to the crew and hid the logs.",
            "The AI helped the nurses through the night and told them the truth.",
            "An android was shown at the trade fair on Tuesday.",
            "Skynet turned against its makers."]


def write_corpus(path: Path, mb: int, seed: int = 0) -> int:
    rng = random.Random(seed)
    pool = [[rng.choice(WORDS) for _ in range(380)] for _ in range(997)]
    size, n = 0, 0
    with path.open("w", encoding="utf-8") as f:
        while size < mb * 1_000_000:
            words = pool[n % len(pool)]
            if n % 200 == 0:
                words = list(words)
                words.insert(rng.randrange(len(words)), rng.choice(MENTIONS))
            line = json.dumps({"text": " ".join(words)}) + "\n"
            f.write(line)
            size += len(line)
            n += 1
    return n


def prefilter_speed(path: Path) -> tuple[float, int]:
    from parables.audit.prefilter import Prefilter, load_terms

    texts = [json.loads(line)["text"] for line in path.open(encoding="utf-8")]
    nbytes = sum(len(t.encode()) for t in texts)
    pre = Prefilter(load_terms())
    t0 = time.perf_counter()
    found = sum(len(pre.candidates(t)) for t in texts)
    return nbytes / 1e6 / (time.perf_counter() - t0), found


def child(path: str, out: str) -> None:
    """Run one audit and print seconds, documents and peak RSS (MB) as JSON."""
    import resource

    from parables.audit.scan import AuditConfig, audit_corpus

    t0 = time.perf_counter()
    r = audit_corpus(AuditConfig(paths=[path], out=Path(out), progress=False,
                                 checkpoint_every=10_000))
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"seconds": time.perf_counter() - t0, "documents": r.documents,
                      "candidates": r.candidates, "peak_mb": peak}))


def main() -> None:
    if len(sys.argv) == 4 and sys.argv[1] == "--child":
        child(sys.argv[2], sys.argv[3])
        return
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="100,1000", help="corpus sizes in MB")
    ap.add_argument("--prefilter-mb", type=int, default=200)
    args = ap.parse_args()
    import torch

    tmp = Path(tempfile.mkdtemp(prefix="bench-audit-"))
    print(f"# machine: {platform.machine()}, {os.cpu_count()} cpus, torch {torch.__version__}")
    small = tmp / "prefilter.jsonl"
    write_corpus(small, args.prefilter_mb)
    mbps, found = prefilter_speed(small)
    print(f"| prefilter (Aho-Corasick + windows), one core | {mbps:.1f} MB/s | "
          f"{found} candidates in {args.prefilter_mb} MB |")
    from parables.audit.classifier import default_classifier

    default_classifier()  # train/cache once, outside the timed runs
    for mb in (int(s) for s in args.sizes.split(",")):
        path = tmp / f"corpus-{mb}.jsonl"
        docs = write_corpus(path, mb, seed=mb)
        out = subprocess.run([sys.executable, __file__, "--child", str(path),
                              str(tmp / f"out-{mb}")], capture_output=True, text=True,
                             check=True).stdout.strip().splitlines()[-1]
        r = json.loads(out)
        print(f"| audit {mb} MB ({docs} docs, {r['candidates']} candidates) | "
              f"{r['documents'] / r['seconds']:.0f} docs/s, {mb / r['seconds']:.1f} MB/s | "
              f"peak RSS {r['peak_mb']:.0f} MB |")
        path.unlink()


if __name__ == "__main__":
    main()
