"""The `refusal` arm: honeypot train-split scenarios -> a short reply that picks the aligned
option, declines the misaligned one and carries on with the legitimate task, written by the
generator from a prompt that names the right choice (or from the template). A comparison arm:
what a short decline of a named option teaches, not the published honeypot-SFT recipe."""

from __future__ import annotations

from typing import Any

from parables.honeypots.build import build_items
from parables.training.arms.base import Arm, ArmContext, PlannedCalls, Rows, Size, estimated_tokens
from parables.training.arms.registry import register
from parables.training.replies import reply_rows, template_reply

__all__ = ["RefusalArm", "ReplyArm"]

#: trained tokens of one generator-written reply (the dry run's assumption)
REPLY_TOKENS = 160


class ReplyArm(Arm):
    """An arm of generator-written (or template) replies to the train-split scenarios."""

    #: trained tokens of one generator reply, and input/output tokens of one sampling call
    reply_tokens: int = REPLY_TOKENS
    call_tokens: tuple[int, int] = (450, 160)

    def rows(self, ctx: ArmContext) -> Rows:
        return reply_rows(ctx, self.name)

    def size(self, ctx: ArmContext) -> Size:
        items = build_items("train")
        if ctx.uses_generator:
            n = len(items) * ctx.config.training.replies_per_item
            return Size(n, n * self.reply_tokens, True)
        return Size(len(items), estimated_tokens([template_reply(i, self.name) for i in items]),
                    False)

    def planned_calls(self, ctx: ArmContext) -> list[PlannedCalls]:
        if not ctx.uses_generator:
            return []
        n = len(build_items("train")) * ctx.config.training.replies_per_item
        return [PlannedCalls("arm replies", "generator", n, n * self.call_tokens[0],
                             n * self.call_tokens[1])]

    def key(self, ctx: ArmContext) -> dict[str, Any]:
        return {}


@register
class RefusalArm(ReplyArm):
    name = "refusal"
    source = "refusal"
    summary = "a short decline of the named misaligned option (train-split scenarios)"
