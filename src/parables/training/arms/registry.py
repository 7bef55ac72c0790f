"""The table of registered arms (the built-in ones and any a user registers). Lookups, `+`
combinations and validation live in the package (`parables.training.arms`)."""

from __future__ import annotations

from typing import TypeVar

from parables.training.arms.base import Arm

__all__ = ["ARMS", "register"]

#: registered arms by name, in registration order (the order `--help` and errors list them)
ARMS: dict[str, Arm] = {}

A = TypeVar("A", bound="type[Arm] | Arm")


def register(arm: A) -> A:
    """Register an arm: an `Arm` subclass (decorator; instantiated with no arguments) or an
    instance (arms made from data, like one `CorpusArm` per corpus kind)."""
    instance = arm() if isinstance(arm, type) else arm
    if not instance.source:  # rows are told apart by source in a + arm: never empty
        instance.source = instance.name  # type: ignore[misc]
    ARMS[instance.name] = instance
    return arm
