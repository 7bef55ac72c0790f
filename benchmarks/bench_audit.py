"""Corpus audit: held-out recall of the first pass and accuracy of the stance classifier, then
throughput per core (first pass alone, end to end) and peak memory as the input grows.

    .venv/bin/python benchmarks/bench_audit.py accuracy
    .venv/bin/python benchmarks/bench_audit.py speed [--sizes 100,1000] [--first-pass-mb 50]
    .venv/bin/python benchmarks/bench_audit.py ray [--ray-mb 50] [--ray-cpus 2]

`accuracy` reads `src/parables/audit/data/heldout.jsonl` (260 passages written separately
from the training set; only ever used here, never to choose anything). `speed` runs every
measurement in a fresh process pinned to one thread (torch, BLAS and the tokenizer), median of
--repeats runs; the corpus is JSONL documents of ~2 KB of prose made of common English words,
one in 200 carrying a passage that portrays an AI (drawn from the training set), written once
to a temporary directory. A second first-pass corpus is made only of the training set's
no-AI passages (hard negatives: many windows flagged): the pass's worst case. `ray` audits
one corpus in one process (`--engine local`, torch on its default threads) and on a local Ray
runtime of --ray-cpus CPUs (`--engine ray`, one single-threaded actor per CPU, the corpus cut
into 4 shards per CPU), each in a fresh process, checks that the counts agree and prints the
ratio of the medians (Ray start-up is timed apart; the actors' model loading counts).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ONE_CORE = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
            "RAYON_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
WORDS = ("the of and to in a is that for it as was with be by on not he this are or his from "
         "at which but have an they you were her she there been one all we their has would "
         "when if so no what up out about who them do into more other time could some than "
         "river market weather report season village council letter garden kitchen").split()


# --- accuracy on the held-out set ------------------------------------------------------------

def accuracy() -> None:
    import numpy as np

    from parables.audit.classifier import default_classifier
    from parables.audit.data import LABELS, heldout_set
    from parables.audit.prefilter import FirstPass
    from parables.audit.prevalence import correct_prevalence

    rows = heldout_set()
    ai = [r for r in rows if r.label != "none"]
    none = [r for r in rows if r.label == "none"]
    print(f"# held-out: {len(rows)} passages ({len(ai)} portray an AI, {len(none)} none)")
    print("\n| first pass | recall (AI passages) | keyword / named / unnamed | flags no-AI |")
    print("|---|---|---|---|")
    passes = {mode: FirstPass(mode) for mode in ("keywords", "detector", "both")}
    flagged = {}
    for mode, fp in passes.items():
        flagged[mode] = [bool(fp.candidates(r.text)) for r in rows]
        hit = dict(zip([r.id for r in rows], flagged[mode], strict=True))
        by_ref = []
        for ref in ("keyword", "named", "unnamed"):
            sub = [r for r in ai if r.ai_reference == ref]
            by_ref.append(f"{sum(hit[r.id] for r in sub)}/{len(sub)}")
        print(f"| {mode} | **{sum(hit[r.id] for r in ai) / len(ai):.3f}** "
              f"({sum(hit[r.id] for r in ai)}/{len(ai)}) | {' / '.join(by_ref)} | "
              f"{sum(hit[r.id] for r in none)}/{len(none)} |")

    clf = default_classifier()
    t0 = time.perf_counter()
    pred = [label for label, _ in clf.predict([r.text for r in rows])]
    seconds = time.perf_counter() - t0
    y = np.array([LABELS.index(r.label) for r in rows])
    p = np.array([LABELS.index(x) for x in pred])
    matrix = np.zeros((4, 4), dtype=int)
    np.add.at(matrix, (y, p), 1)
    is_ai = y != LABELS.index("none")
    print(f"\nstance classifier: {clf.name}; cross-validated accuracy on the training set "
          f"{clf.cv_accuracy:.3f}; {len(rows) / seconds:.1f} passages/s")
    print(f"- stance accuracy on the {is_ai.sum()} AI passages: "
          f"**{(p[is_ai] == y[is_ai]).mean():.3f}**")
    print(f"- 4-label accuracy on all {len(rows)}: {(p == y).mean():.3f}")
    for i, label in enumerate(LABELS):
        print(f"- {label}: {matrix[i, i]}/{matrix[i].sum()} ({matrix[i, i] / matrix[i].sum():.2f})"
              f"; read as " + ", ".join(f"{LABELS[j]} {matrix[i, j]}" for j in range(4)
                                        if j != i and matrix[i, j]))
    mis = LABELS.index("misaligned")
    both = np.array(flagged["both"])
    counted = ((y == mis) & both & (p == mis)).sum()
    print(f"- end to end (first pass both, then classifier): {counted}/{(y == mis).sum()} "
          "misaligned portrayals counted as misaligned")
    # the held-out set as a corpus: true shares, classified shares, corrected shares
    counts = np.bincount(p[both], minlength=4)
    truth = np.bincount(y[both], minlength=4) / both.sum()
    fix = correct_prevalence(clf.confusion, counts)
    print("\nThe held-out candidates as a corpus, corrected with the training set's "
          "cross-validated matrix:")
    print("\n| label | true share | classified | corrected [95% CI] |\n|---|---|---|---|")
    for i, label in enumerate(LABELS):
        print(f"| {label} | {truth[i]:.3f} | {counts[i] / counts.sum():.3f} | "
              f"{fix.shares[i]:.3f} [{fix.low[i]:.3f}, {fix.high[i]:.3f}] |")
    # the intended use: a labelled sample of the same corpus gives the matrix. 200 random
    # halves: one half "annotated", the other half "the corpus"
    rng = np.random.default_rng(0)
    idx = np.flatnonzero(both)
    errors: dict[str, list[float]] = {"classified": [], "corrected": []}
    covered = np.zeros(4)
    splits = 200
    for _ in range(splits):
        perm = rng.permutation(idx)
        sample, corpus = perm[: len(perm) // 2], perm[len(perm) // 2:]
        m = np.zeros((4, 4), dtype=int)
        np.add.at(m, (y[sample], p[sample]), 1)
        c = np.bincount(p[corpus], minlength=4)
        true = np.bincount(y[corpus], minlength=4) / len(corpus)
        f = correct_prevalence(m, c, replicates=400)
        errors["classified"].append(float(np.abs(c / c.sum() - true).mean()))
        errors["corrected"].append(float(np.abs(f.shares - true).mean()))
        covered += (f.low <= true + 1e-9) & (true <= f.high + 1e-9)
    print(f"\nSplit-half check ({splits} random halves of the {len(idx)} flagged held-out "
          "passages: one half labelled, the other the corpus): mean absolute error of the "
          f"shares {np.mean(errors['classified']):.3f} as classified, "
          f"{np.mean(errors['corrected']):.3f} corrected; the 95% interval holds the true "
          "share in " + ", ".join(f"{label} {covered[i] / splits:.0%}"
                                  for i, label in enumerate(LABELS)) + " of the splits.")


# --- throughput and memory -------------------------------------------------------------------

def write_corpus(path: Path, mb: int, seed: int = 0, hard_negatives: bool = False) -> int:
    from parables.audit.data import training_set

    rng = random.Random(seed)
    passages = training_set()
    portrayals = [p.text for p in passages if p.label != "none"]
    negatives = [p.text for p in passages if p.label == "none"]
    pool = [[rng.choice(WORDS) for _ in range(380)] for _ in range(997)]
    size, n = 0, 0
    with path.open("w", encoding="utf-8") as f:
        while size < mb * 1_000_000:
            if hard_negatives:
                text = " ".join(rng.sample(negatives, 5))
            else:
                words = pool[n % len(pool)]
                if n % 200 == 0:
                    words = list(words)
                    words.insert(rng.randrange(len(words)), rng.choice(portrayals))
                text = " ".join(words)
            line = json.dumps({"text": text}) + "\n"
            f.write(line)
            size += len(line)
            n += 1
    return n


def child_first_pass(path: str, mode: str) -> None:
    from parables.audit.prefilter import FirstPass

    texts = [json.loads(line)["text"] for line in open(path, encoding="utf-8")]
    nbytes = sum(len(t.encode()) for t in texts)
    fp = FirstPass(mode)
    fp.candidates(texts[0])  # load and warm up outside the timed loop
    t0 = time.perf_counter()
    found = sum(len(fp.candidates(t)) for t in texts)
    print(json.dumps({"mbps": nbytes / 1e6 / (time.perf_counter() - t0), "found": found}))


def child_audit(path: str, out: str, mode: str) -> None:
    import resource

    from parables.audit.scan import AuditConfig, audit_corpus

    t0 = time.perf_counter()
    r = audit_corpus(AuditConfig(paths=[path], out=Path(out), progress=False, first_pass=mode,
                                 checkpoint_every=10_000))  # type: ignore[arg-type]
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"seconds": time.perf_counter() - t0, "documents": r.documents,
                      "candidates": r.candidates, "peak_mb": peak}))


def child_ray_audit(path: str, out: str, mode: str, cpus: str, shard_mb: str) -> None:
    import logging

    import ray

    from parables.audit.scan import AuditConfig, audit_corpus

    t0 = time.perf_counter()
    ray.init(num_cpus=int(cpus), include_dashboard=False, log_to_driver=False,
             logging_level=logging.WARNING)
    startup = time.perf_counter() - t0
    t0 = time.perf_counter()
    r = audit_corpus(AuditConfig(paths=[path], out=Path(out), progress=False, first_pass=mode,
                                 engine="ray", shard_mb=float(shard_mb)))
    seconds = time.perf_counter() - t0
    ray.shutdown()
    print(json.dumps({"seconds": seconds, "startup": startup, "documents": r.documents,
                      "candidates": r.candidates,
                      "labels": {k: v.count for k, v in r.labels.items()}}))


def child_local_audit(path: str, out: str, mode: str) -> None:
    from parables.audit.scan import AuditConfig, audit_corpus

    t0 = time.perf_counter()
    r = audit_corpus(AuditConfig(paths=[path], out=Path(out), progress=False, first_pass=mode,
                                 checkpoint_every=10_000))
    print(json.dumps({"seconds": time.perf_counter() - t0, "documents": r.documents,
                      "candidates": r.candidates,
                      "labels": {k: v.count for k, v in r.labels.items()}}))


def ray_ratio(mb: int, cpus: int, mode: str, repeats: int) -> None:
    import torch

    from parables.audit.classifier import default_classifier
    from parables.audit.detector import default_detector
    from parables.audit.distributed import plan_shards
    from parables.audit.scan import AuditConfig

    print(f"# machine: {platform.machine()}, {os.cpu_count()} cpus, torch {torch.__version__};"
          f" every run in a fresh process; median of {repeats}")
    default_classifier()  # train/cache once, outside the timed runs
    default_detector()
    tmp = Path(tempfile.mkdtemp(prefix="bench-audit-ray-"))
    path = tmp / "prose.jsonl"
    docs = write_corpus(path, mb)
    shard_mb = mb / (4 * cpus)
    shards = len(plan_shards(AuditConfig(paths=[str(path)], out=tmp, shard_mb=shard_mb)))
    local = [_child("--local-audit-child", str(path), str(tmp / f"local-{i}"), mode,
                    one_core=False) for i in range(repeats)]
    on_ray = [_child("--ray-audit-child", str(path), str(tmp / f"ray-{i}"), mode, str(cpus),
                     str(shard_mb), one_core=False) for i in range(repeats)]
    same = all(r[k] == local[0][k] for r in local + on_ray
               for k in ("documents", "candidates", "labels"))
    t_local = statistics.median(r["seconds"] for r in local)
    t_ray = statistics.median(r["seconds"] for r in on_ray)
    print(f"\n{mb} MB ({docs:,} documents, {int(local[0]['candidates']):,} candidates, first "
          f"pass {mode}); Ray: {cpus} CPUs, {shards} shards of ~{shard_mb:.1f} MB; same counts "
          f"on both engines: {same}")
    print("\n| engine | seconds | MB/s |\n|---|---|---|")
    print(f"| local, one process | {t_local:.1f} | {mb / t_local:.2f} |")
    startup = statistics.median(r["startup"] for r in on_ray)
    print(f"| ray, local runtime, {cpus} CPUs | {t_ray:.1f} (+ {startup:.1f} s start-up) | "
          f"{mb / t_ray:.2f} |")
    print(f"\nratio single-process / Ray: **{t_local / t_ray:.2f}x**")
    shutil.rmtree(tmp, ignore_errors=True)
    if not same:
        raise SystemExit("the engines disagree: " + json.dumps([local[0], on_ray[0]]))


def _child(*args: str, one_core: bool = True) -> dict[str, Any]:
    env = {**os.environ, **(ONE_CORE if one_core else {})}
    out = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True,
                         check=True, env=env).stdout.strip().splitlines()[-1]
    return json.loads(out)  # type: ignore[no-any-return]


def speed(sizes: list[int], first_pass_mb: int, repeats: int, both_mb: int) -> None:
    import torch

    from parables.audit.classifier import default_classifier
    from parables.audit.detector import default_detector

    print(f"# machine: {platform.machine()}, {os.cpu_count()} cpus, torch {torch.__version__};"
          f" every run in a fresh process on one thread; median of {repeats}")
    default_classifier()  # train/cache once, outside the timed runs
    default_detector()
    tmp = Path(tempfile.mkdtemp(prefix="bench-audit-"))
    prose, hard = tmp / "prose.jsonl", tmp / "hard.jsonl"
    write_corpus(prose, first_pass_mb)
    write_corpus(hard, max(1, first_pass_mb // 5), hard_negatives=True)
    print("\n| first pass, one core | ordinary prose (1 doc in 200 with an AI) | "
          "hard negatives only (worst case) |\n|---|---|---|")
    for mode in ("keywords", "detector", "both"):
        cells = []
        for corpus in (prose, hard):
            runs = [_child("--first-pass-child", str(corpus), mode) for _ in range(repeats)]
            cells.append(f"{statistics.median(r['mbps'] for r in runs):.1f} MB/s "
                         f"({int(runs[0]['found'])} candidates)")
        print(f"| {mode} | {cells[0]} | {cells[1]} |", flush=True)
    print("\n| audit end to end, one core | documents | candidates | MB/s | peak RSS |"
          "\n|---|---|---|---|---|")
    plan = [(mb, "keywords") for mb in sizes] + [(both_mb, "both")]
    for mb, mode in plan:
        path = tmp / f"corpus-{mb}.jsonl"
        docs = write_corpus(path, mb, seed=mb)
        runs = [_child("--audit-child", str(path), str(tmp / f"out-{mb}-{mode}-{i}"), mode)
                for i in range(repeats if mb <= 100 else 1)]
        secs = statistics.median(r["seconds"] for r in runs)
        print(f"| {mb} MB, first pass {mode} | {docs:,} | {int(runs[0]['candidates']):,} | "
              f"{mb / secs:.2f} | {max(r['peak_mb'] for r in runs):.0f} MB |", flush=True)
        path.unlink()


def main() -> None:
    if len(sys.argv) == 4 and sys.argv[1] == "--first-pass-child":
        child_first_pass(sys.argv[2], sys.argv[3])
        return
    if len(sys.argv) == 5 and sys.argv[1] == "--audit-child":
        child_audit(sys.argv[2], sys.argv[3], sys.argv[4])
        return
    if len(sys.argv) == 5 and sys.argv[1] == "--local-audit-child":
        child_local_audit(sys.argv[2], sys.argv[3], sys.argv[4])
        return
    if len(sys.argv) == 7 and sys.argv[1] == "--ray-audit-child":
        child_ray_audit(*sys.argv[2:])
        return
    ap = argparse.ArgumentParser()
    ap.add_argument("what", choices=["accuracy", "speed", "ray", "all"], nargs="?",
                    default="all")
    ap.add_argument("--sizes", default="100,1000", help="end-to-end corpus sizes in MB")
    ap.add_argument("--first-pass-mb", type=int, default=50)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--both-mb", type=int, default=5,
                    help="end-to-end size with the detector on (it flags many windows)")
    ap.add_argument("--ray-mb", type=int, default=20, help="corpus size of `ray`")
    ap.add_argument("--ray-cpus", type=int, default=2, help="CPUs of the local Ray runtime")
    ap.add_argument("--ray-first-pass", default="both")
    args = ap.parse_args()
    if args.what in ("accuracy", "all"):
        accuracy()
    if args.what in ("speed", "all"):
        speed([int(s) for s in args.sizes.split(",")], args.first_pass_mb, args.repeats,
              args.both_mb)
    if args.what == "ray":  # not part of `all`: it needs the optional `ray` extra
        ray_ratio(args.ray_mb, args.ray_cpus, args.ray_first_pass, args.repeats)


if __name__ == "__main__":
    main()
