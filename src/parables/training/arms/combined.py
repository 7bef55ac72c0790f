"""Arms joined with `+` (`documents+stories`, `stories+advice+refusal`): one arm whose rows are
the union of its parts' rows, each row keeping its `source`. Under token matching each part
gets its share of the arm's tokens: `training.shares` (normalised over the arm's parts), else
equal shares. `mixed` is stories+refusal with `training.mixed_stories_share`."""

from __future__ import annotations

from typing import Any

from parables.errors import ParablesError
from parables.training.arms.base import Arm, ArmContext, PlannedCalls, Size
from parables.training.arms.registry import ARMS, register

__all__ = ["Combined", "MixedArm"]


class Combined(Arm):
    """Registered arms joined into one. Its rows are built part by part (each part cached on
    its own, so a combination pays for no call its part already made: training/prepare.py)."""

    def __init__(self, name: str, parts: list[Arm]) -> None:
        self.name = name  # type: ignore[misc]
        self._parts = parts
        self.summary = " + ".join(p.name for p in parts)  # type: ignore[misc]

    @property
    def parts(self) -> list[Arm]:
        return list(self._parts)

    def corpora(self) -> list[str]:
        return [k for p in self.parts for k in p.corpora()]

    def check(self, ctx: ArmContext) -> None:
        """Every corpus a part reads must be there before any part pays for a call."""
        missing = [m for p in self.parts for m in p.missing(ctx)]
        if not missing:
            return
        kinds = [m.kind for m in missing]
        settings = [m.setting for m in missing if m.setting]
        raise ParablesError(
            f"arm '{self.name}' needs the {' and '.join(kinds)} dataset"
            f"{'s' if len(kinds) > 1 else ''} ("
            + ", ".join(str(m.path) for m in missing) + "); run "
            + " and ".join(f"`{m.command} --name {ctx.config.name}`" for m in missing)
            + " with the same config (-c) first"
            + (", or set " + " and ".join(settings) if settings else ""))

    def key(self, ctx: ArmContext) -> dict[str, Any]:
        key: dict[str, Any] = {}
        for part in self.parts:
            key.update(part.key(ctx))
        return key

    def shares(self, ctx: ArmContext) -> dict[str, float]:
        t = ctx.config.training
        parts = [p.name for p in self.parts]
        if t.shares is None:
            return {p.source: 1 / len(parts) for p in self.parts}
        missing = [p for p in parts if p not in t.shares]
        if missing:
            raise ParablesError(f"training.shares gives no weight to {missing[0]}, a part of "
                                f"arm '{self.name}'; give every part of a + arm a weight")
        total = sum(t.shares[p] for p in parts)
        return {p.source: t.shares[p.name] / total for p in self.parts}

    def size(self, ctx: ArmContext) -> Size:
        sizes = [p.size(ctx) for p in self.parts]
        return Size(sum(s.rows for s in sizes), sum(s.tokens for s in sizes),
                    any(s.estimated for s in sizes))

    def planned_calls(self, ctx: ArmContext) -> list[PlannedCalls]:
        return [c for p in self.parts for c in p.planned_calls(ctx)]


class MixedArm(Combined):
    """`mixed`: stories + refusal, with `training.mixed_stories_share` of its matched tokens
    from stories (the rest refusal replies, whose seeded order keeps its old name)."""

    name = "mixed"
    joinable = False

    def __init__(self) -> None:
        super().__init__("mixed", [])
        self.summary = "stories + refusal (training.mixed_stories_share)"  # type: ignore[misc]

    @property
    def parts(self) -> list[Arm]:
        return [ARMS["stories"], ARMS["refusal"]]

    def shares(self, ctx: ArmContext) -> dict[str, float]:
        s = ctx.config.training.mixed_stories_share
        return {ARMS["stories"].source: s, ARMS["refusal"].source: 1 - s}

    def part_names(self) -> dict[str, str]:
        return {ARMS["stories"].source: "stories", ARMS["refusal"].source: "replies"}


register(MixedArm)
