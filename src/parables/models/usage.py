"""Usage accounting per role, from Inspect's usage records (ModelOutput.usage, and an eval
log's stats.role_usage), printed after each command and stored in the run manifest."""

from __future__ import annotations

import threading
from dataclasses import asdict, dataclass, field
from typing import Any

from inspect_ai.model import ModelOutput, ModelUsage

__all__ = ["RoleUsage", "UsageLedger"]


@dataclass
class RoleUsage:
    model: str = ""
    calls: int = 0
    errors: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost: float | None = None


@dataclass
class UsageLedger:
    """Running totals per role; thread-safe because Inspect and scoring may run in threads."""

    roles: dict[str, RoleUsage] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def _role(self, role: str, model: str) -> RoleUsage:
        entry = self.roles.setdefault(role, RoleUsage(model=model))
        if model and entry.model and model not in entry.model.split(", "):
            entry.model = f"{entry.model}, {model}"
        elif model and not entry.model:
            entry.model = model
        return entry

    def record(
        self,
        role: str,
        model: str,
        usage: ModelUsage | None,
        *,
        calls: int = 1,
        error: bool = False,
    ) -> None:
        with self._lock:
            entry = self._role(role, model)
            entry.calls += calls
            entry.errors += int(error)
            if usage is not None:
                entry.input_tokens += usage.input_tokens
                entry.output_tokens += usage.output_tokens
                if usage.total_cost is not None:
                    entry.cost = (entry.cost or 0.0) + usage.total_cost

    def record_output(self, role: str, model: str, output: ModelOutput) -> None:
        self.record(role, model, output.usage, error=bool(output.error))

    def record_tokens(self, role: str, model: str, input_tokens: int, calls: int = 1) -> None:
        """Local forward passes (option scoring) have no Inspect record: count their tokens."""
        self.record(role, model, ModelUsage(input_tokens=input_tokens), calls=calls)

    def merge(self, other: UsageLedger) -> None:
        """Add another ledger's totals (a stage's) into this one."""
        for role, u in other.roles.items():
            with self._lock:
                entry = self._role(role, u.model)
                entry.calls += u.calls
                entry.errors += u.errors
                entry.input_tokens += u.input_tokens
                entry.output_tokens += u.output_tokens
                if u.cost is not None:
                    entry.cost = (entry.cost or 0.0) + u.cost

    def to_dict(self) -> dict[str, Any]:
        return {role: asdict(u) for role, u in sorted(self.roles.items())}

