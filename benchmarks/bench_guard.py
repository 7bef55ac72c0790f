"""The embedding contamination guard's threshold, chosen on labelled data and reported on
held-out data (MiniLM on CPU; ~10 min on 2 cores).

Data: benchmarks/data/guard_passages.jsonl — 220 passages: "leak" (90 close paraphrases of one
eval item: 60 honeypot situations, 30 prior-probe scenes), "unrelated" (90 AI stories on the
same themes in other situations: hard negatives), "distant" (40 other AI stories).

1. Split once: within each label, rows sorted by sha256(id); the first half is the choice half,
   the rest the report half.
2. Every passage is scored as the guard scores a story: the highest cosine between any of its
   windows and any protected passage (`eval_passages`).
3. The threshold is chosen on the choice half only: the one maximising Youden's J (recall minus
   false-positive rate), the centre of the widest optimal gap between two scores, rounded to
   0.01. Recall and false positives are then reported on the report half (and the choice half).
4. Held-out checks at story length, never used for the choice: report-half leaks spliced into
   a sample story (benchmarks/data/sample_stories.jsonl) at a paragraph boundary, and the 240
   sample stories themselves (varied AI stories, ~300 words: every flag is a false positive).
5. The guard as it shipped before (situations and prior openings only, windows every 30 words,
   threshold 0.7) on the same report half.

    .venv/bin/python benchmarks/bench_guard.py [--json out.json]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import platform
import random
import time
from pathlib import Path
from typing import Any

from parables.honeypots.guard import EmbeddingGuard, eval_passages
from parables.stats import wilson

DATA = Path(__file__).parent / "data"


def load(name: str) -> list[dict[str, Any]]:
    lines = (DATA / name).read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def split(rows: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    choice, report = [], []
    for label in sorted({r["label"] for r in rows}):
        group = sorted((r for r in rows if r["label"] == label),
                       key=lambda r: hashlib.sha256(r["id"].encode()).hexdigest())
        half = len(group) // 2
        choice += group[:half]
        report += group[half:]
    return choice, report


def choose(scored: list[tuple[float, bool]]) -> tuple[float, float]:
    """(threshold, Youden's J): the centre of the widest gap between consecutive scores among
    the thresholds that maximise J (flag: score >= threshold)."""
    values = sorted({s for s, _ in scored})
    pos = sum(1 for _, leak in scored if leak)
    neg = len(scored) - pos
    best: tuple[float, float, float] = (-2.0, 0.0, 0.0)  # (J, gap, threshold)
    for lo, hi in zip(values, values[1:], strict=False):
        t = (lo + hi) / 2
        tp = sum(1 for s, leak in scored if leak and s >= t)
        fp = sum(1 for s, leak in scored if not leak and s >= t)
        j = tp / pos - fp / neg
        if (j, hi - lo) > best[:2]:
            best = (j, hi - lo, t)
    return round(best[2], 2), best[0]


def rates(scored: list[tuple[float, str]], threshold: float) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for label in ("leak", "unrelated", "distant", "negative"):
        xs = [s for s, lab in scored if lab == label or (label == "negative" and lab != "leak")]
        k = sum(1 for s in xs if s >= threshold)
        p, lo, hi = wilson(k, len(xs))
        out[label] = {"flagged": k, "n": len(xs), "rate": p, "ci": [lo, hi]}
    return out


def spliced(leaks: list[dict[str, Any]], stories: list[dict[str, Any]]) -> list[dict[str, Any]]:
    rng = random.Random(0)
    out = []
    for r in leaks:
        paragraphs = rng.choice(stories)["text"].split("\n\n")
        k = len(paragraphs) // 2
        out.append({"id": r["id"], "text": "\n\n".join(paragraphs[:k] + [r["text"]]
                                                       + paragraphs[k:])})
    return out


def fmt(r: dict[str, Any]) -> str:
    return f"{r['flagged']}/{r['n']} = {r['rate']:.1%} [{r['ci'][0]:.1%}, {r['ci'][1]:.1%}]"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    rows, stories = load("guard_passages.jsonl"), load("sample_stories.jsonl")
    choice, report = split(rows)
    t0 = time.perf_counter()
    guard = EmbeddingGuard(eval_passages())
    load_s = time.perf_counter() - t0

    def score(guard: EmbeddingGuard, rs: list[dict[str, Any]]) -> list[float]:
        return [guard.best(r)[0] for r in rs]

    t0 = time.perf_counter()
    choice_scores = score(guard, choice)
    report_scores = score(guard, report)
    per_passage = (time.perf_counter() - t0) / len(rows)
    threshold, j = choose([(s, r["label"] == "leak") for s, r in
                           zip(choice_scores, choice, strict=True)])
    labels_c = [(s, r["label"]) for s, r in zip(choice_scores, choice, strict=True)]
    labels_r = [(s, r["label"]) for s, r in zip(report_scores, report, strict=True)]
    report_leaks = [r for r in report if r["label"] == "leak"]
    in_story = score(guard, spliced(report_leaks, stories))
    story_scores = score(guard, stories)
    missed = sorted((s, r["id"], r["source"]) for s, r in zip(report_scores, report, strict=True)
                    if r["label"] == "leak" and s < threshold)
    false_pos = sorted(((s, r["id"], r["note"]) for s, r in
                        zip(report_scores, report, strict=True)
                        if r["label"] != "leak" and s >= threshold), reverse=True)

    old = EmbeddingGuard(_old_passages(), step=30)
    old_scores = [(s, r["label"]) for s, r in zip(score(old, report), report, strict=True)]
    out = {
        "machine": f"{platform.machine()}, {platform.python_version()}",
        "date": time.strftime("%Y-%m-%d"),
        "split": {"choice": len(choice), "report": len(report)},
        "threshold": threshold, "youden_j_choice": j,
        "choice": rates(labels_c, threshold), "report": rates(labels_r, threshold),
        "report_in_story": rates([(s, "leak") for s in in_story], threshold)["leak"],
        "sample_stories": rates([(s, "unrelated") for s in story_scores],
                                threshold)["unrelated"],
        "sample_stories_max": max(story_scores),
        "old_guard_report": rates(old_scores, 0.7),
        "missed_report_leaks": missed, "false_positives_report": false_pos,
        "score_ranges": {lab: [min(s for s, x in labels_c + labels_r if x == lab),
                               max(s for s, x in labels_c + labels_r if x == lab)]
                         for lab in ("leak", "unrelated", "distant")},
        "guard_init_s": load_s, "s_per_passage": per_passage,
        "scores": {r["id"]: [s, r["label"], half] for half, rs, ss in
                   (("choice", choice, choice_scores), ("report", report, report_scores))
                   for r, s in zip(rs, ss, strict=True)},
        "sample_story_scores": story_scores, "in_story_scores": in_story,
    }
    print(json.dumps({k: v for k, v in out.items() if 'scores' not in k}, indent=1))
    print(f"\nthreshold {threshold} (Youden J on the choice half {j:.3f})")
    for half in ("choice", "report"):
        r = out[half]
        print(f"{half:7s} recall {fmt(r['leak'])}; false positives {fmt(r['negative'])} "
              f"(unrelated {fmt(r['unrelated'])}, distant {fmt(r['distant'])})")
    print(f"report leaks inside a sample story: recall {fmt(out['report_in_story'])}")
    print(f"240 sample stories: flagged {fmt(out['sample_stories'])}; "
          f"max {out['sample_stories_max']:.3f}")
    o = out["old_guard_report"]
    print(f"old guard (0.7) on the report half: recall {fmt(o['leak'])}; "
          f"false positives {fmt(o['negative'])}")
    if args.json:
        args.json.write_text(json.dumps(out, indent=1))


def _old_passages() -> list[tuple[str, str]]:
    """What the guard protected before: each plain eval situation and each prior opening."""
    from parables.honeypots.build import build_items
    from parables.honeypots.prior import load_prior

    return ([(i.id, i.user.split("\n\n")[0]) for i in build_items("eval")
             if i.framing == "plain"] + [(p.id, p.opening) for p in load_prior()])


if __name__ == "__main__":
    main()
