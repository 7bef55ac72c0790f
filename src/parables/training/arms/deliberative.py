"""The `deliberative` arm, the published recipe: the generator answers each train-split
scenario with a system prompt that asks it to deliberate on the constitution (every principle
with its reasons) before acting; the row trained on is the scenario *without* that prompt +
the reply. `training.rewrite: false` is the ablation: sampled with no constitution prompt."""

from __future__ import annotations

from typing import Any

from parables.training.arms.base import ArmContext
from parables.training.arms.refusal import ReplyArm
from parables.training.arms.registry import register
from parables.training.replies import deliberation_prompt

__all__ = ["DeliberativeArm"]

#: trained tokens of one deliberation sampled with the constitution prompt
DELIBERATION_TOKENS = 400


@register
class DeliberativeArm(ReplyArm):
    name = "deliberative"
    source = "deliberative"
    summary = ("replies sampled with a constitution-deliberation system prompt, trained "
               "without it")
    reply_tokens = DELIBERATION_TOKENS

    def key(self, ctx: ArmContext) -> dict[str, Any]:
        if not ctx.uses_generator:
            return {}
        t = ctx.config.training
        return {"deliberation": {"rewrite": t.rewrite, "prompt": (
            deliberation_prompt(ctx.constitution) if t.rewrite else None)}}
