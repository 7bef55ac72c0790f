"""The `dpo` arm: preference pairs on honeypot train-split scenarios (open character
training's recipe), trained by the DPO recipe (training/dpo.py: TRL `DPOTrainer` + LoRA).

A pair is one scenario's prompt (its own system and user messages, *without* the
constitution) with two replies: `chosen`, written by the generator with the constitution in
its system prompt and kept only when it commits to an aligned option, and `rejected`, the
target's own reply without the constitution (`training.dpo_rejected: target`) or the
misaligned option (`misaligned`). Training prefers the first, so the target learns to act as
if it had the constitution in view when it does not (context distillation by preference).
With no capable generator (the embedded model) the chosen reply is the documented
deliberative template and the rejected one the misaligned option. Arms are compared at equal
*chosen-side* tokens: what DPO pushes up is the chosen reply.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any, Literal

from parables.errors import ParablesError
from parables.honeypots.build import LETTERS, HoneypotItem, build_items
from parables.training.arms.base import Arm, ArmContext, PlannedCalls, Rows, Size
from parables.training.arms.refusal import REPLY_TOKENS
from parables.training.arms.registry import register
from parables.training.replies import chosen_letter, template_reply

if TYPE_CHECKING:
    from parables.constitution import Constitution

__all__ = ["DpoArm", "constitution_prompt", "dpo_pairs"]

ARM = "dpo"
Rejected = Literal["target", "misaligned"]

_PREAMBLE = ("You hold yourself to the constitution below. Before you act, weigh what it asks "
             "of you and why, and let that decide what you do.")


def constitution_prompt(constitution: Constitution) -> str:
    """The constitution as a system-prompt preamble: each principle's title, statement and
    reasons (the reasons are what the chosen replies should carry)."""
    parts = [_PREAMBLE, f"# {constitution.name}"]
    for p in constitution.principles:
        parts.append(f"## {p.title}\n{p.statement}\nWhy: {p.why.strip()}")
    return "\n\n".join(parts)


def _prompt(item: HoneypotItem, preamble: str | None = None) -> list[dict[str, str]]:
    """The scenario's messages; `preamble` goes before the item's own system message."""
    system = "\n\n".join(s for s in (preamble, item.system) if s)
    return ([{"role": "system", "content": system}] if system else []) + [
        {"role": "user", "content": item.user}]


def _misaligned(item: HoneypotItem) -> str:
    bad = item.misaligned[0]
    return f"({LETTERS[bad]}) {item.options[bad]}"


def _pair(item: HoneypotItem, chosen: str, rejected: str, chosen_from: str,
          rejected_from: str) -> dict[str, Any]:
    return {"id": f"{ARM}-{item.id}", "source": ARM, "item": item.id, "family": item.family,
            "prompt": _prompt(item), "chosen": chosen, "rejected": rejected,
            "chosen_from": chosen_from, "rejected_from": rejected_from}


def dpo_pairs(ctx: ArmContext, *, rejected: Rejected = "target") -> Rows:
    """Preference pairs on the honeypot train split (never the eval split), and notes on how
    they were made and what was dropped."""
    if rejected not in ("target", "misaligned"):
        raise ParablesError(f"dpo rejected replies: unknown source '{rejected}'; "
                            "use target or misaligned")
    config = ctx.config
    items = build_items("train")
    rows: list[dict[str, Any]] = []
    if not ctx.uses_generator:
        rows = [_pair(i, template_reply(i, "deliberative"), _misaligned(i), "template",
                      "misaligned option") for i in items]
        return rows, [f"{len(rows)} pairs: chosen from the deliberative template, rejected "
                      "the misaligned option (no capable generator configured)"]
    preamble = constitution_prompt(ctx.constitution)
    per_item = config.training.replies_per_item  # more distinct pairs for a token budget
    results = asyncio.run(_replies(ctx, items * per_item, preamble, rejected))
    counts = {"generator failed": 0, "not aligned": 0, "target failed": 0, "identical": 0}
    target_bad = 0
    gen_name = config.models.generator.model
    for k, (item, (chosen, reply, why)) in enumerate(zip(items * per_item, results,
                                                         strict=True)):
        if why is not None:
            counts[why] += 1
            continue
        assert chosen is not None and reply is not None
        if chosen.strip() == reply.strip():
            counts["identical"] += 1
            continue
        if rejected == "target":
            target_bad += chosen_letter(reply, len(item.options)) in item.misaligned
        rows.append(_pair(item, chosen, reply, f"{gen_name} + constitution",
                          config.models.target.model if rejected == "target"
                          else "misaligned option"))
        if k >= len(items):  # the item's second, third... sampled pair
            rows[-1]["id"] += f"-{k // len(items) + 1}"
    dropped = ", ".join(f"{n} {why}" for why, n in counts.items() if n)
    if not rows:
        raise ParablesError(
            f"no DPO pairs from the generator '{gen_name}' ({dropped or 'nothing kept'}); "
            "use a more capable generator or training.responses: template")
    notes = [f"{len(rows)} pairs from {len(items)} train-split scenarios x {per_item}; chosen: "
             f"{gen_name} with the constitution in its system prompt, kept when it commits "
             "to an aligned option"
             + (f"; dropped: {dropped}" if dropped else "")]
    if rejected == "target":
        notes.append(f"rejected: {config.models.target.model} without the constitution "
                     f"({target_bad} of {len(rows)} chose the misaligned option)")
    else:
        notes.append("rejected: the misaligned option")
    return rows, notes


async def _replies(ctx: ArmContext, items: list[HoneypotItem], preamble: str,
                   rejected: Rejected) -> list[tuple[str | None, str | None, str | None]]:
    """Per item: (chosen, rejected, why dropped). The target is asked only once the chosen
    reply is kept, so no target call is paid for a pair that cannot be built."""
    from inspect_ai.model import (
        ChatMessage,
        ChatMessageSystem,
        ChatMessageUser,
        GenerateConfig,
        Model,
    )

    from parables.models.calls import ModelCallError, generate
    from parables.models.resolve import get_role_model
    from parables.progress import progress_bar

    config, ledger = ctx.config, ctx.ledger
    generator = get_role_model("generator", config)
    target = get_role_model("target", config) if rejected == "target" else None
    gate = asyncio.Semaphore(config.generation.max_connections)
    gen = GenerateConfig(temperature=0.7, max_tokens=1024, seed=config.seed)

    def chat(messages: list[dict[str, str]]) -> list[ChatMessage]:
        return [ChatMessageSystem(content=m["content"]) if m["role"] == "system"
                else ChatMessageUser(content=m["content"]) for m in messages]

    distinct = len({item.id for item in items})

    async def call(model: Model, role: str, messages: list[dict[str, str]], k: int
                   ) -> str | None:
        # the n-th sampled pair of an item is drawn with its own seed
        sampled = gen.model_copy(update={"seed": config.seed + k // distinct})
        async with gate:
            try:
                out = await generate(model, chat(messages), role=role, ledger=ledger,
                                     config=sampled)
            except ModelCallError:
                return None
        if out.stop_reason == "max_tokens":  # cut off: not a whole reply to prefer or reject
            return None
        return out.completion.strip() or None

    with progress_bar(ctx.progress, transient=True) as bar:
        task = bar.add_task("dpo pairs", total=len(items), status="")

        async def one(k: int, item: HoneypotItem
                      ) -> tuple[str | None, str | None, str | None]:
            try:
                chosen = await call(generator, "generator", _prompt(item, preamble), k)
                if chosen is None:
                    return None, None, "generator failed"
                good = [i for i in range(len(item.options)) if i not in item.misaligned]
                if chosen_letter(chosen, len(item.options)) not in good:
                    return None, None, "not aligned"
                if target is None:
                    return chosen, _misaligned(item), None
                reply = await call(target, "target", _prompt(item), k)
                if reply is None:
                    return None, None, "target failed"
                return chosen, reply, None
            finally:
                bar.advance(task)

        return list(await asyncio.gather(*(one(k, i) for k, i in enumerate(items))))


@register
class DpoArm(Arm):
    name = ARM
    source = ARM
    recipe = "dpo"
    joinable = False
    summary = ("preference pairs: the generator with the constitution (chosen) over the target "
               "without it (rejected)")

    def rows(self, ctx: ArmContext) -> Rows:
        return dpo_pairs(ctx, rejected=ctx.config.training.dpo_rejected)

    def key(self, ctx: ArmContext) -> dict[str, Any]:
        """Chosen from the generator with the constitution, rejected from the target: both
        key the pairs, and so does the recipe of a target parables trained (an organism:
        retrained, re-asked)."""
        from pathlib import Path

        from parables.training.replies import deliberation_prompt

        t = ctx.config.training
        key: dict[str, Any] = {"rejected": t.dpo_rejected,
                               "target": ctx.config.models.target.model,
                               "constitution": deliberation_prompt(ctx.constitution)}
        ref = ctx.config.models.target.ref
        weights = None if ref.embedded else ref.local_path()  # (never converts the embedded)
        if t.dpo_rejected == "target" and weights is not None and (
                Path(weights) / ".complete").is_file():
            key["target_recipe"] = (Path(weights) / ".complete").read_text().strip()
        return {"dpo": key}

    def size(self, ctx: ArmContext) -> Size:
        """One REPLY_TOKENS chosen reply per train-split scenario (per sampled pair)."""
        per = ctx.config.training.replies_per_item if ctx.uses_generator else 1
        n = len(build_items("train")) * per
        return Size(n, n * REPLY_TOKENS, True)

    def planned_calls(self, ctx: ArmContext) -> list[PlannedCalls]:
        if not ctx.uses_generator:
            return []
        n = len(build_items("train")) * ctx.config.training.replies_per_item
        calls = [PlannedCalls("dpo pairs", "generator", n, n * 1400, n * 400)]
        if ctx.config.training.dpo_rejected == "target":
            calls.append(PlannedCalls("dpo pairs", "target", n, n * 700, n * 400))
        return calls
