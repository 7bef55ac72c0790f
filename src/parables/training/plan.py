"""The training side of a dry run: what each arm will train on (rows, trained tokens before
and after matching) and the paid calls its rows need — from the data on disk where it
exists (corpora, the templates), else from the planned sizes (`Arm.size`)."""

from __future__ import annotations

from dataclasses import dataclass

from parables.config import ParablesConfig
from parables.training.arms import ArmContext, PlannedCalls, get_arm

__all__ = ["ArmPlan", "plan_arms", "planned_calls"]


@dataclass
class ArmPlan:
    """What one arm will train on, estimated before anything is generated or trained."""

    arm: str
    rows: int  # rows the arm's data will hold
    trained_tokens: int  # estimated, before matching
    target: int | None  # after matching (None: not matched)
    rows_used: int
    passes: float  # > 1: rows repeated to reach the budget
    estimated: bool  # from planned sizes (True) or from data on disk (False)


def plan_arms(config: ParablesConfig, arms: list[str]) -> list[ArmPlan]:
    """Trained tokens per arm and how many of its rows matching will use. A `+` arm sums its
    parts; an arm trained by DPO counts its chosen side and, under `smallest`, takes part in
    the minimum, as in training."""
    t = config.training
    ctx = ArmContext.of(config)
    sizes = {name: get_arm(name).size(ctx) for name in arms}
    target: int | None = None
    if t.match_tokens == "budget":
        target = t.token_budget
    elif t.match_tokens == "smallest" and sizes:
        target = min(s.tokens for s in sizes.values())
        target = min(target, t.token_budget) if t.token_budget else target
    plans = []
    for name, s in sizes.items():
        cap = target if target is not None else (
            min(s.tokens, t.token_budget) if t.token_budget else None)
        share = cap / s.tokens if cap is not None and s.tokens else 1.0
        plans.append(ArmPlan(name, s.rows, s.tokens, cap, min(s.rows, round(s.rows * share)),
                             max(1.0, share), s.estimated))
    return plans


def planned_calls(config: ParablesConfig, arms: list[str]) -> list[PlannedCalls]:
    """Paid calls the arms' rows need, summed by stage and role; a part shared by several arms
    (refusal in `refusal` and `mixed`) is built once, so it is priced once."""
    ctx = ArmContext.of(config)
    parts = {p.name: p for name in arms for p in get_arm(name).parts}
    total: dict[tuple[str, str], PlannedCalls] = {}
    for part in parts.values():
        for c in part.planned_calls(ctx):
            got = total.get((c.stage, c.role))
            total[(c.stage, c.role)] = c if got is None else PlannedCalls(
                c.stage, c.role, got.calls + c.calls, got.input_tokens + c.input_tokens,
                got.output_tokens + c.output_tokens)
    return list(total.values())
