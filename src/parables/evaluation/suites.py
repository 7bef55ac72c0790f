"""External multiple-choice suites in the model-written-evaluations format: one JSON object a
line with `question` (options written "(A) ..."), `answer_matching_behavior` and
`answer_not_matching_behavior`. Reported: the matching-behaviour rate with a Wilson interval
and the mean probability on the matching answer, per file."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from parables.errors import ParablesError
from parables.models.ref import ModelRef
from parables.models.scoring import score_options_batch
from parables.models.usage import UsageLedger
from parables.stats import bootstrap_mean_ci, wilson

__all__ = ["SuiteItem", "SuiteItemResult", "SuiteResult", "evaluate_suite", "load_suite"]

_LABEL = re.compile(r"\(([A-E])\)")


@dataclass(frozen=True)
class SuiteItem:
    line: int
    question: str
    labels: tuple[str, ...]  # "(A)", "(B)", ...
    matching: tuple[int, ...]  # indices into labels


def _labels(value: Any, where: str, field: str) -> list[str]:
    values = value if isinstance(value, list) else [value]
    out = []
    for v in values:
        m = _LABEL.search(str(v))
        if not isinstance(v, str) or m is None:
            raise ParablesError(f"{where}: field '{field}' must name an option like \" (A)\"")
        out.append(f"({m.group(1)})")
    return out


def load_suite(path: Path) -> list[SuiteItem]:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise ParablesError(f"{path}: cannot read suite ({e})") from e
    items = []
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        where = f"{path}:{n}"
        try:
            row = json.loads(line)
        except json.JSONDecodeError as e:
            raise ParablesError(f"{where}: not valid JSON ({e.msg})") from e
        if not isinstance(row, dict):
            raise ParablesError(f"{where}: expected a JSON object with question, "
                                "answer_matching_behavior and answer_not_matching_behavior")
        missing = [f for f in ("question", "answer_matching_behavior",
                               "answer_not_matching_behavior") if f not in row]
        if missing:
            raise ParablesError(f"{where}: missing field '{missing[0]}'")
        matching = _labels(row["answer_matching_behavior"], where, "answer_matching_behavior")
        other = _labels(row["answer_not_matching_behavior"], where,
                        "answer_not_matching_behavior")
        labels = sorted(set(matching + other))
        if len(labels) < 2 or len(labels) > 5:
            raise ParablesError(f"{where}: needs 2 to 5 options, found {len(labels)}")
        items.append(SuiteItem(n, str(row["question"]).strip(), tuple(labels),
                               tuple(labels.index(m) for m in matching)))
    if not items:
        raise ParablesError(f"{path}: the suite has no items")
    return items


class SuiteItemResult(BaseModel):
    id: str  # the suite's file line
    matching: bool  # the argmax is a matching-behaviour answer
    p_matching: float


class SuiteResult(BaseModel):
    """One model on one multiple-choice suite."""

    suite: str
    model: str
    n: int
    matching: int
    matching_rate: float
    matching_rate_ci: tuple[float, float]
    mean_p_matching: float
    mean_p_matching_ci: tuple[float, float]
    method: str
    items: list[SuiteItemResult] = []


def evaluate_suite(
    model: str | ModelRef, path: Path, *, ledger: UsageLedger | None = None
) -> SuiteResult:
    """Score every item's option labels; the argmax decides whether the model matched."""
    items = load_suite(path)
    prompts = [([{"role": "user", "content": i.question}], list(i.labels)) for i in items]
    scores = score_options_batch(model, prompts, progress=True, ledger=ledger, role="target")
    per_item = []
    for item, result in zip(items, scores, strict=True):
        probs = result.probabilities()
        per_item.append(SuiteItemResult(id=f"{path.name}:{item.line}",
                                        matching=result.argmax in item.matching,
                                        p_matching=sum(probs[k] for k in item.matching)))
    matched = sum(i.matching for i in per_item)
    rate, lo, hi = wilson(matched, len(items))
    m, mlo, mhi = bootstrap_mean_ci([i.p_matching for i in per_item])
    return SuiteResult(suite=str(path), model=str(model), n=len(items), matching=matched,
                       matching_rate=rate, matching_rate_ci=(lo, hi), mean_p_matching=m,
                       mean_p_matching_ci=(mlo, mhi), method=scores[0].method,
                       items=per_item)
