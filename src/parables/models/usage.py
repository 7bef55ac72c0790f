"""Usage and cost per role. Every model call parables makes is recorded here — by the one call
path (models.calls.generate), from an Inspect eval log's role usage, or as local forward-pass
tokens — so the ledger a stage writes to its manifest holds everything it spent, and a budget
(`max_cost`) sees every role: generator, judge, target, annotator."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # Inspect stays out of light import paths (the audit)
    from inspect_ai.model import ModelOutput, ModelUsage

__all__ = ["PRICES", "Price", "RoleUsage", "UsageLedger", "cost_of", "price_of"]

Price = tuple[float, float]  # USD per 1M input tokens, per 1M output tokens

#: list prices, 2026-11 (override or extend with `models.prices` in the config)
PRICES: dict[str, Price] = {
    "anthropic/claude-sonnet-4-5": (3.0, 15.0),
    "anthropic/claude-haiku-4-5": (1.0, 5.0),
    "openai/gpt-4o": (2.5, 10.0),
    "openai/gpt-4o-mini": (0.15, 0.6),
}


def price_of(model: str, prices: Mapping[str, Price] | None = None) -> Price | None:
    """The per-token price of `model`: configured, listed, free (local weights, a
    self-hosted server, a mock) or None (unknown)."""
    from parables.errors import ParablesError
    from parables.models.ref import ModelRef

    if prices and model in prices:
        return prices[model]
    if model in PRICES:
        return PRICES[model]
    try:
        free = ModelRef.parse(model).free
    except ParablesError:
        return None
    return (0.0, 0.0) if free else None


def cost_of(price: Price | None, input_tokens: int, output_tokens: int) -> float | None:
    return None if price is None else (input_tokens * price[0] + output_tokens * price[1]) / 1e6


@dataclass
class RoleUsage:
    model: str = ""
    calls: int = 0
    errors: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost: float | None = None  # None: some calls of an unpriced model


@dataclass
class UsageLedger:
    """Running totals per role; thread-safe because Inspect and scoring may run in threads."""

    roles: dict[str, RoleUsage] = field(default_factory=dict)
    prices: Mapping[str, Price] = field(default_factory=dict)
    limit: float | None = None  # USD this ledger may spend (what is left of a run's budget)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def _role(self, role: str, model: str) -> RoleUsage:
        entry = self.roles.setdefault(role, RoleUsage(model=model, cost=0.0))
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
        if usage is None:
            self._add(role, model, 0, 0, 0.0, calls, error)
        else:
            self._add(role, model, usage.input_tokens, usage.output_tokens, usage.total_cost,
                      calls, error)

    def _add(self, role: str, model: str, input_tokens: int, output_tokens: int,
             cost: float | None, calls: int, error: bool) -> None:
        if cost is None or model in self.prices:  # a configured price beats a reported cost
            cost = cost_of(price_of(model, self.prices), input_tokens, output_tokens)
        with self._lock:
            entry = self._role(role, model)
            entry.calls += calls
            entry.errors += int(error)
            entry.input_tokens += input_tokens
            entry.output_tokens += output_tokens
            entry.cost = None if cost is None or entry.cost is None else entry.cost + cost

    def record_output(self, role: str, model: str, output: ModelOutput) -> None:
        self.record(role, model, output.usage, error=bool(output.error))

    def record_tokens(self, role: str, model: str, input_tokens: int, calls: int = 1) -> None:
        """Local forward passes (option scoring) have no Inspect record: count their tokens."""
        self._add(role, model, input_tokens, 0, None, calls, False)

    def count_errors(self, role: str, model: str, errors: int) -> None:
        """Failed calls known only from a result (an eval's errored samples)."""
        with self._lock:
            self._role(role, model).errors += errors

    @property
    def spent(self) -> float:
        """USD spent on priced calls (unpriced ones count 0; see `unpriced`)."""
        return sum(u.cost or 0.0 for u in self.roles.values())

    @property
    def exhausted(self) -> bool:
        return self.limit is not None and self.spent >= self.limit

    def afford(self, model: str, input_tokens: int, output_tokens: int, what: str) -> None:
        """Refuse, before any call, work whose estimated cost exceeds what the budget has
        left (work Inspect runs as a whole, which no per-call check can stop midway)."""
        if self.limit is None:
            return
        cost = cost_of(price_of(model, self.prices), input_tokens, output_tokens)
        left = self.limit - self.spent
        if cost is not None and cost > left:
            from parables.errors import ParablesError

            raise ParablesError(
                f"{what} with '{model}' is estimated at ${cost:,.2f} ({input_tokens:,} input, "
                f"{output_tokens:,} output tokens at its price) and the run's budget has "
                f"${max(left, 0):,.2f} left; raise max_cost or evaluate fewer items")

    @property
    def unpriced(self) -> list[str]:
        """Roles with calls to a model whose price is unknown."""
        return sorted(r for r, u in self.roles.items() if u.cost is None)

    def merge(self, other: UsageLedger) -> None:
        """Add another ledger's totals (a stage's) into this one."""
        for role, u in other.roles.items():
            with self._lock:
                entry = self._role(role, u.model)
                entry.calls += u.calls
                entry.errors += u.errors
                entry.input_tokens += u.input_tokens
                entry.output_tokens += u.output_tokens
                entry.cost = None if u.cost is None or entry.cost is None else entry.cost + u.cost

    def to_dict(self) -> dict[str, Any]:
        return {role: asdict(u) for role, u in sorted(self.roles.items())}

    @classmethod
    def from_dict(cls, data: Mapping[str, Mapping[str, Any]]) -> UsageLedger:
        return cls({role: RoleUsage(**u) for role, u in data.items()})
