"""Every arm's data, ready for the trainer: rows (built once per input and cached with the
run) -> eval-leak guard -> tokens -> token matching.

A `+` arm's rows are the union of its parts' rows, each part built and cached on its own, so
a combination pays for no generator call its part already made; every corpus a part reads is
checked before any part pays for a call. Nothing is ever built from the honeypot `eval`
split, and every arm's rows pass the eval-leak guard before they are tokenised.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

from parables._io import atomic_write_json, digest, file_sha, read_json, write_jsonl
from parables.config import ParablesConfig
from parables.errors import ParablesError
from parables.generation.samples import shipped
from parables.models.usage import UsageLedger
from parables.training.arm_data import ArmData, match_tokens
from parables.training.arms import Arm, ArmContext, Rows, get_arm
from parables.training.recipes import get_recipe
from parables.training.rows import check_not_eval, load_rows

__all__ = ["arm_rows", "cached_rows", "prepare_arms", "rows_key"]


def rows_key(ctx: ArmContext, arm: Arm) -> str:
    """What an arm's rows depend on: the arm, the seed, who writes the replies, the files and
    prompts each of its parts reads (`Arm.key`)."""
    config, t = ctx.config, ctx.config.training
    key: dict[str, Any] = {"arm": arm.name, "seed": config.seed, "story_format": t.story_format,
                           "replies": (config.models.generator.model
                                       if ctx.uses_generator else "template")}
    if t.replies_per_item > 1 and ctx.uses_generator:
        key["replies_per_item"] = t.replies_per_item
    organism = config.experiment.organism
    documents = shipped(organism.documents) if organism else None
    for name, path in (("data", t.data), ("documents", documents)):
        if path is not None and Path(path).is_file():
            key[name] = file_sha(Path(path))
    for part in arm.parts:
        key.update(part.key(ctx))
    return digest(key)


def cached_rows(config: ParablesConfig, arm: str, ledger: UsageLedger | None = None,
                progress: bool = True) -> Rows:
    """Arm rows, built once per input and kept in runs/<name>/train/data/, so a rerun (or a
    resumed training run) sees exactly the same data and pays for no generator call twice."""
    return _cached(ArmContext.of(config, ledger, progress), get_arm(arm))


def arm_rows(config: ParablesConfig, arm: str, ledger: UsageLedger | None = None,
             progress: bool = True) -> Rows:
    """The untokenised rows of one arm (not cached), and notes on how they were made."""
    return _build(ArmContext.of(config, ledger, progress), get_arm(arm))


def _cached(ctx: ArmContext, arm: Arm) -> Rows:
    rows_path, meta_path = ctx.run.arm_rows(arm.name)
    key = rows_key(ctx, arm)
    meta = read_json(meta_path)
    if meta is not None and meta.get("key") == key and rows_path.is_file():
        return get_recipe(arm.recipe).load(rows_path), list(meta["notes"])
    rows, notes = _build(ctx, arm)
    meta_path.unlink(missing_ok=True)  # a kill between the two writes leaves no stale key
    write_jsonl(rows_path, rows)
    atomic_write_json(meta_path, {"key": key, "notes": notes})
    return rows, notes


def _build(ctx: ArmContext, arm: Arm) -> Rows:
    data = ctx.config.training.data
    if data is not None:
        if arm.recipe != "sft":
            raise ParablesError(f"training.data holds SFT rows; the {arm.name} arm trains on "
                                "preference pairs it builds itself: train dpo without --data")
        return load_rows(data), [f"rows from {data}"]
    arm.check(ctx)
    if len(arm.parts) == 1:
        return arm.rows(ctx)
    rows: list[dict[str, Any]] = []
    counts, notes = [], []
    for part in arm.parts:
        got, part_notes = _cached(ctx, part)
        rows += got
        counts.append(f"{len(got)} {part.name}")
        notes += [f"{part.name}: {n}" for n in part_notes]
    random.Random(ctx.config.seed).shuffle(rows)
    return rows, [" + ".join(counts), *notes]


def prepare_arms(config: ParablesConfig, arms: list[str], tokenizer: Any,
                 ledger: UsageLedger | None = None, progress: bool = True
                 ) -> dict[str, ArmData]:
    """Rows -> eval-split check -> tokens -> optional token matching, for every arm (an arm
    trained by DPO is matched on its chosen side)."""
    t = config.training
    if t.data is not None and len(arms) > 1:
        raise ParablesError("training.data replaces one arm's data; name a single --arm")
    ctx = ArmContext.of(config, ledger, progress)
    out: dict[str, ArmData] = {}
    for name in arms:
        arm = get_arm(name)
        recipe = get_recipe(arm.recipe)
        rows, notes = _cached(ctx, arm)
        check_not_eval(recipe.guard_view(rows))
        data = recipe.tokenize(name, rows, tokenizer, t.max_length)
        data.notes = [*notes, *data.notes]
        if t.match_tokens != "off" and t.data is None:  # shares hold under matching only
            data.shares = arm.shares(ctx)
            data.part_names = arm.part_names()
        out[name] = data
    if t.match_tokens != "off":
        match_tokens(out, t.token_budget, config.seed, t.match_tokens)
    elif t.token_budget is not None:
        for name, data in out.items():
            if data.trained_tokens > t.token_budget:
                match_tokens({name: data}, t.token_budget, config.seed)
    return out
