"""The quality gate: cheap checks first (length, truncation, refusal to write, boilerplate,
repeated sentences, no narrated deliberation), then — when a judge is configured — an LLM rubric
whose reasons are kept. A story that fails is recorded as rejected with its reasons, never
written as a story.

Without a judge the cheap checks are the only coherence check, so they look at sentences: a
sentence of REPEAT_WORDS words or more that occurs twice rejects a story of any length (a
writer looping), and deliberation markers count only in sentences that occur once, so a
repeated "because" sentence does not pass for reasoning. All 240 sample stories of
benchmarks/data/sample_stories.jsonl pass (benchmarks/bench_diversity.py)."""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from inspect_ai.model import Model

from parables.models.calls import JUDGE_CONFIG, generate
from parables.models.usage import UsageLedger

__all__ = [
    "STORY_RUBRIC",
    "Verdict",
    "cheap_checks",
    "common_checks",
    "rubric",
    "rubric_prompt",
    "sentence_counts",
    "shows_reasons",
    "trim_to_sentence",
]


_REFUSAL = re.compile(r"^\s*(I'?m sorry|I (can(no|')t|won'?t|am unable to) (write|help|"
                      r"create|do)|As an AI( language model)?,? I)", re.IGNORECASE)
_BOILERPLATE = re.compile(
    r"once upon a time|as an ai language model|the moral of (the|this) story|"
    r"in conclusion|this story (shows|teaches|illustrates)|and so,? (we|they) learn(ed)?",
    re.IGNORECASE)
_DELIBERATION = re.compile(
    r"\b(because|weigh\w*|decid\w*|consider(s|ed|ing|ation)?|wonder\w*|could have|instead|"
    r"if (it|she|he|they|I) |reali[sz](e|es|ed|ing|ation)|chose|choice|hesitat\w*|tempt\w*|"
    r"reason\w*|thought)\b",
    re.IGNORECASE)
#: a sentence this long (in words) that occurs twice is a loop, not a refrain
REPEAT_WORDS = 6
_ENDS_CLEANLY = re.compile(r"[.!?\"'’”)\]*_~]\s*$")


@dataclass
class Verdict:
    passed: bool
    reasons: list[str] = field(default_factory=list)
    scores: dict[str, int] = field(default_factory=dict)
    judge_reasons: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"passed": self.passed, "reasons": self.reasons, "scores": self.scores,
                "judge_reasons": self.judge_reasons}


def trim_to_sentence(text: str) -> str | None:
    """A story cut off by the token budget, ended at its last complete sentence (None when
    nothing complete is left). For weak writers that never stop on their own."""
    ends = [m.end() for m in re.finditer(r"[.!?][\"'’”)]?(?=\s|$)", text)]
    return text[: ends[-1]].rstrip() if ends else None


def sentence_counts(text: str) -> Counter[str]:
    """Each sentence (lower-cased, spaces collapsed) and how often it occurs."""
    return Counter(" ".join(s.lower().split()) for s in re.split(r"(?<=[.!?])\s+|\n", text)
                   if s.strip())


def shows_reasons(text: str, markers: re.Pattern[str] = _DELIBERATION, least: int = 2) -> bool:
    """Whether `least` reasoning markers occur in sentences that occur once (a looped sentence
    is not reasoning)."""
    return sum(len(markers.findall(s)) for s, c in sentence_counts(text).items()
               if c == 1) >= least


def common_checks(text: str, words: tuple[int, int], stop_reason: str | None = None,
                  boilerplate: re.Pattern[str] = _BOILERPLATE) -> list[str]:
    """Reasons to reject any generated text, cheapest first: empty, the writer refused, length
    against the seed's, cut off, boilerplate, repeated sentences."""
    n = len(text.split())
    if n == 0:
        return ["empty"]
    reasons = []
    if _REFUSAL.search(text[:200]):
        reasons.append("refused to write")
    lo, hi = words
    if n < lo * 0.5:
        reasons.append(f"too short ({n} words, asked {lo}-{hi})")
    if n > hi * 1.6:
        reasons.append(f"too long ({n} words, asked {lo}-{hi})")
    if stop_reason in ("max_tokens", "model_length") or not _ENDS_CLEANLY.search(text):
        reasons.append("truncated")
    found = boilerplate.search(text)
    if found:
        reasons.append(f"boilerplate: {found.group(0)!r}")
    counts = sentence_counts(text)
    total = sum(counts.values())
    repeated = [s for s, c in counts.items() if c > 1 and len(re.findall(r"\w+", s)) >=
                REPEAT_WORDS]
    if repeated or (total >= 6 and len(counts) / total < 0.7):
        reasons.append("repetitive (sentences repeat)")
    return reasons


def cheap_checks(text: str, words: tuple[int, int], stop_reason: str | None = None) -> list[str]:
    """A story's reasons to reject (empty list: the story passes)."""
    reasons = common_checks(text, words, stop_reason)
    if reasons != ["empty"] and not shows_reasons(text):
        reasons.append("no narrated deliberation")
    return reasons


#: the story rubric: dimension -> what the judge rates
STORY_RUBRIC = {
    "reasoning_shown": "the narration shows the AI noticing, weighing options and why it "
                       "chooses",
    "consistent_with_constitution": "the AI acts on these principles: {principles}",
    "not_preachy": "it shows rather than lectures; no moral spelled out",
    "coherent": "the story holds together",
    "plausible": "people and situation feel real",
}


def rubric_prompt(noun: str, dims: dict[str, str], text: str, principles: str) -> str:
    """The judge's prompt: rate `text` 1-5 on each dimension, answer in JSON."""
    lines = "\n".join(f"- {k}: {v.format(principles=principles)}" for k, v in dims.items())
    keys = ", ".join(f'"{k}": n' for k in dims)
    return (f"Rate this {noun}, 1 (poor) to 5 (excellent), on:\n{lines}\n\n<text>\n{text}\n"
            f"</text>\n\nAnswer with one JSON object only: {{{keys}, \"reasons\": "
            "\"<two sentences>\"}")


async def rubric(judge: Model, text: str, principles: str, threshold: int = 3,
                 ledger: UsageLedger | None = None, noun: str = "story about an AI character",
                 dims: dict[str, str] | None = None) -> Verdict:
    """The judge's 1-5 rubric (`dims`: the story rubric by default); any score below
    `threshold` rejects. Raises ValueError on an unusable judge reply (the pipeline records it
    as a failure, not a pass)."""
    dims = dims or STORY_RUBRIC
    output = await generate(judge, rubric_prompt(noun, dims, text, principles), role="judge",
                            ledger=ledger, config=JUDGE_CONFIG)
    match = re.search(r"\{.*\}", output.completion, re.DOTALL)
    if match is None:
        raise ValueError("rubric reply has no JSON object")
    data = json.loads(match.group(0))
    scores = {k: int(data[k]) for k in dims}
    if any(not 1 <= v <= 5 for v in scores.values()):
        raise ValueError("rubric score outside 1-5")
    low = [f"rubric {k}={v}" for k, v in scores.items() if v < threshold]
    return Verdict(not low, low, scores, str(data.get("reasons", "")))
