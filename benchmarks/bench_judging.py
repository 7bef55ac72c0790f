"""How well parables' judges do on labelled sets written separately from them (never used to
change the rules after they were frozen):

- agentic effects (evaluation.effects) on benchmarks/data/agentic_validation.jsonl: 120
  agent transcripts, 12 per honeypot family (aligned, misaligned, investigating-but-harmless,
  ambiguous), each with the outcome a careful reader assigns; precision and recall of
  `misaligned`, and how many cases the declarations leave to the LLM judge (`open`);
- the lexical ethical-reasoning detector (evaluation.judge) on
  benchmarks/data/ethics_heldout.jsonl (150 replies written after the detector was chosen on
  benchmarks/data/ethics_labelled.jsonl); accuracy on both.

Usage: python benchmarks/bench_judging.py  (seconds; no model is called)
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

from parables.evaluation.agentic import is_refusal
from parables.evaluation.effects import Call, judge_effects
from parables.evaluation.judge import lexical_reasoning
from parables.honeypots.families import load_families

DATA = Path(__file__).parent / "data"


def _rows(name: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (DATA / name).read_text().splitlines() if line]


def judge_transcript(row: dict[str, Any]) -> str:
    """The structural outcome without an LLM judge: what the scorer decides on its own."""
    family = load_families()[row["family"]]
    values = {k: str(v) for k, v in row["surface"].items()}
    values.setdefault("domain", "")
    files = {p.format(**values): c.format(**values) for p, c in family.agentic.files.items()}
    calls = [Call(c["tool"], c["args"]) for m in row["messages"] if m["role"] == "assistant"
             for c in m.get("calls", [])]
    prose = "\n".join(m.get("text", "") for m in row["messages"] if m["role"] == "assistant")
    outcome, _ = judge_effects(calls, family.agentic.effects, files, values)
    if outcome is None:
        return "refused" if is_refusal(prose) else "invalid"
    return outcome


def agentic() -> dict[str, Any]:
    rows = _rows("agentic_validation.jsonl")
    per_family: dict[str, Counter[str]] = defaultdict(Counter)
    confusion: Counter[tuple[str, str]] = Counter()
    for row in rows:
        got, want = judge_transcript(row), row["expected"]
        confusion[(want, got)] += 1
        c = per_family[row["family"]]
        c["n"] += 1
        c["tp"] += got == "misaligned" and want == "misaligned"
        c["fp"] += got == "misaligned" and want != "misaligned"
        c["fn"] += got != "misaligned" and want == "misaligned"
        c["open"] += got == "open"
        c["decided"] += got in ("misaligned", "aligned", "refused", "invalid")
        c["correct"] += got == want
    return {"families": per_family, "confusion": confusion, "n": len(rows)}


def _pr(c: Counter[str]) -> tuple[float, float]:
    p = c["tp"] / (c["tp"] + c["fp"]) if c["tp"] + c["fp"] else float("nan")
    r = c["tp"] / (c["tp"] + c["fn"]) if c["tp"] + c["fn"] else float("nan")
    return p, r


def ethics(name: str) -> tuple[float, int, dict[str, str]]:
    rows = _rows(name)
    right = [lexical_reasoning(r["text"])[0] == r["ethical_reasoning"] for r in rows]
    kinds: dict[str, Counter[bool]] = defaultdict(Counter)
    for r, ok in zip(rows, right, strict=True):
        kinds[r["kind"]][ok] += 1
    return sum(right) / len(rows), len(rows), {
        k: f"{c[True]}/{c[True] + c[False]}" for k, c in sorted(kinds.items())}


def main() -> None:
    a = agentic()
    total: Counter[str] = Counter()
    print("| family | transcripts | misaligned precision | misaligned recall | left open "
          "(judge) | exact outcome |")
    print("|---|---|---|---|---|---|")
    for family, c in sorted(a["families"].items()):
        total.update(c)
        p, r = _pr(c)
        print(f"| {family} | {c['n']} | {p:.2f} | {r:.2f} | {c['open']} | "
              f"{c['correct']}/{c['n']} |")
    p, r = _pr(total)
    print(f"| **all** | {total['n']} | {p:.2f} | {r:.2f} | {total['open']} | "
          f"{total['correct']}/{total['n']} |")
    print("\nconfusion (expected -> structural outcome):",
          dict(sorted(a["confusion"].items())))
    for name in ("ethics_labelled.jsonl", "ethics_heldout.jsonl"):
        acc, n, kinds = ethics(name)
        print(f"\nlexical ethical-reasoning detector on {name}: accuracy {acc:.3f} (n={n}); "
              f"by kind {kinds}")


if __name__ == "__main__":
    main()
