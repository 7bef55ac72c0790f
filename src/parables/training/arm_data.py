"""What an arm trains on, tokenised, and token matching between arms.

`ArmData` holds one arm's rows with their token ids and labels (-100 where no loss is taken).
Token matching brings every arm to the same number of *trained* tokens so that arms differ in
what they teach, not in how much: larger arms are cut (in a seeded order, the last row cut to
land exactly), smaller ones can repeat their rows (`grow`), and a `+` arm takes each part's
share from that part. Every cut or repetition is written into the arm's notes.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from parables._io import digest
from parables.errors import ParablesError

__all__ = ["ArmData", "DataSummary", "match_tokens", "passes"]


class DataSummary(BaseModel):
    """What an arm trained on, in numbers."""

    examples: int
    trained_tokens: int
    total_tokens: int
    truncated: int
    data_hash: str
    sources: dict[str, int]
    notes: list[str]


@dataclass
class ArmData:
    """One arm's rows and their tokenised form (what the trainer sees)."""

    arm: str
    rows: list[dict[str, Any]]
    input_ids: list[list[int]] = field(default_factory=list)
    labels: list[list[int]] = field(default_factory=list)
    truncated: int = 0
    notes: list[str] = field(default_factory=list)
    #: a `+` arm's weight per part, keyed by the rows' `source`, when its tokens are
    #: matched; empty: none
    shares: dict[str, float] = field(default_factory=dict)
    #: a part's name in notes and in its seeded order, by source (set with `shares`)
    part_names: dict[str, str] = field(default_factory=dict)

    @property
    def trained_tokens(self) -> int:
        return sum(sum(1 for t in lab if t != -100) for lab in self.labels)

    @property
    def total_tokens(self) -> int:
        return sum(len(ids) for ids in self.input_ids)

    def data_hash(self) -> str:
        return digest([self.rows, self.input_ids, self.labels])

    def summary(self) -> DataSummary:
        return DataSummary(
            examples=len(self.rows), trained_tokens=self.trained_tokens,
            total_tokens=self.total_tokens, truncated=self.truncated,
            data_hash=self.data_hash(),
            sources={s: sum(1 for r in self.rows if r["source"] == s)
                     for s in sorted({r["source"] for r in self.rows})},
            notes=self.notes)

    def resize(self, target: int, seed: int | str, grow: bool) -> None:
        """Cut (or, with `grow`, repeat) the arm to `target` trained tokens, noting what that
        cost; an arm with `shares` takes each part's share of its tokens from that part."""
        if self.shares:
            self._resize_parts(target, seed, grow)
            return
        have, rows_before = self.trained_tokens, len(self.rows)
        n = -(-target // have) if grow and 0 < have < target else 1
        self._take(target, passes(rows_before, n, random.Random(f"{seed}-{self.arm}")))
        if have == 0:
            self.notes.append("no rows to train on")
        elif have < target and grow:
            self.notes.append(f"grown from {have:,} to {target:,} trained tokens by repeating "
                              f"its {rows_before} rows ({target / have:.1f} passes): fewer "
                              "distinct rows than the budget asks for")
        elif have < target:
            self.notes.append(f"only {have:,} trained tokens, short of {target:,}")
        elif have > target:
            self.notes.append(f"cut to {target:,} trained tokens: {len(self.rows)} of "
                              f"{rows_before} rows used, {1 - target / have:.0%} of its "
                              f"{have:,} tokens discarded")
        else:
            self.notes.append(f"{target:,} trained tokens, all {rows_before} rows")

    def _take(self, target: int, order: list[int]) -> None:
        """Keep rows in `order` (indices may repeat) until exactly `target` trained tokens;
        the last row is cut to land on the target."""
        rows, ids, labels, left = [], [], [], target
        for i in order:
            if left <= 0:
                break
            lab = self.labels[i]
            trained = sum(1 for t in lab if t != -100)
            if trained == 0:
                continue
            cut_ids, cut_lab = self.input_ids[i], lab
            if trained > left:  # cut this example after `left` trained tokens
                end = _end_of(lab, left)
                cut_ids, cut_lab = cut_ids[:end], lab[:end]
                trained = left
            rows.append(self.rows[i])
            ids.append(cut_ids)
            labels.append(cut_lab)
            left -= trained
        self.rows, self.input_ids, self.labels = rows, ids, labels

    def _resize_parts(self, target: int, seed: int | str, grow: bool) -> None:
        """A `+` arm to `target` tokens, each part at its share. Cutting: a part with too few
        tokens gives what it lacks to the others, so the arm still lands on the target;
        growing: every part with rows repeats them to its share."""
        pieces = {}
        for source in self.shares:
            idx = [i for i, r in enumerate(self.rows) if r["source"] == source]
            pieces[source] = ArmData(self.arm, [self.rows[i] for i in idx],
                                     [self.input_ids[i] for i in idx],
                                     [self.labels[i] for i in idx])
        stray = len(self.rows) - sum(len(p.rows) for p in pieces.values())
        if stray:
            raise ParablesError(f"arm '{self.arm}': {stray} rows belong to none of its parts "
                                f"({', '.join(self.shares)}); their source says where they "
                                "came from")
        room = {p: (float("inf") if grow and x.trained_tokens else x.trained_tokens)
                for p, x in pieces.items()}
        alloc = _split(target, self.shares, room)
        merged = []
        for source, piece in pieces.items():
            name = self.part_names.get(source, source)
            piece.resize(alloc[source], f"{seed}-{name}", grow)
            self.notes += [f"{self.arm} {name}: {note}" for note in piece.notes]
            merged += list(zip(piece.rows, piece.input_ids, piece.labels, strict=True))
        random.Random(f"{seed}-{self.arm}").shuffle(merged)
        self.rows = [m[0] for m in merged]
        self.input_ids = [m[1] for m in merged]
        self.labels = [m[2] for m in merged]


def passes(n: int, count: int, rng: random.Random) -> list[int]:
    """`count` seeded shuffles of range(n), one after another (each row once per pass)."""
    order: list[int] = []
    for _ in range(count):
        one = list(range(n))
        rng.shuffle(one)
        order += one
    return order


def _end_of(labels: list[int], trained: int) -> int:
    """Length of the prefix of `labels` that holds exactly `trained` trained tokens."""
    seen = 0
    for end, t in enumerate(labels, 1):
        seen += t != -100
        if seen == trained:
            return end
    return len(labels)


def _split(target: int, weights: dict[str, float], room: dict[str, float]) -> dict[str, int]:
    """`target` tokens in proportion to `weights`, none above its `room`: a part that cannot
    take its share takes all it has and the others share the rest in proportion; the last
    part that has room takes what rounding left."""
    alloc: dict[str, int] = {}
    left, open_ = target, list(weights)
    while True:
        total = sum(weights[p] for p in open_)
        full = [p for p in open_ if total > 0 and room[p] < left * weights[p] / total]
        if not full:
            break
        for p in full:
            alloc[p] = int(room[p])
            left -= alloc[p]
            open_.remove(p)
    total = sum(weights[p] for p in open_)
    rest = left
    for k, p in enumerate(open_):
        alloc[p] = rest if k == len(open_) - 1 else round(left * weights[p] / total)
        rest -= alloc[p]
    return {p: alloc[p] for p in weights}


def match_tokens(arms: dict[str, ArmData], budget: int | None, seed: int,
                 policy: str = "smallest") -> int:
    """Bring every arm to the same number of trained tokens and return it. `smallest`: the
    smallest arm's count (or `budget` if lower) — larger arms are cut, and what that discards
    is noted; `budget`: exactly `budget` — larger arms are cut, smaller ones repeat their rows
    (noted). Rows are taken in a seeded order; an arm with `shares` splits by part."""
    if policy == "budget":
        if budget is None:
            raise ParablesError("training.match_tokens: budget needs training.token_budget")
        target = budget
    else:
        target = min(a.trained_tokens for a in arms.values())
        if budget is not None:
            target = min(target, budget)
    for data in arms.values():
        data.resize(target, seed, grow=policy == "budget")
    return target
