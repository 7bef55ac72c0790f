"""Evaluation kinds: what differs between parables' honeypots, the narrative-prior probe, a
multiple-choice suite and any Inspect task. The battery (one evaluation of one model), the
experiment's eval stage and dry run, and the report only iterate over the kinds registered
here.

Add a kind in one file: a config class (`EvalSpec` with `kind: Literal["<name>"]`) and an
`EvalKind` subclass decorated with `@register` (see base.py for what it defines). Its
`experiment.evals` entries and `--suite <name>:...` then work without an edit elsewhere."""

from __future__ import annotations

from typing import Any, TypeVar

from parables.errors import ParablesError
from parables.evaluation.kinds.base import EvalKind, EvalSize
from parables.evaluation.kinds.honeypots import Honeypots, HoneypotsEval
from parables.evaluation.kinds.inspect import KNOWN_TASKS, Inspect, InspectEval, ScoreMap
from parables.evaluation.kinds.prior import Prior, PriorEval
from parables.evaluation.kinds.spec import SPECS, EvalEntry, EvalSpec
from parables.evaluation.kinds.suite import Suite, SuiteEval

__all__ = ["EVAL_KINDS", "KNOWN_TASKS", "EvalEntry", "EvalKind", "EvalSize", "EvalSpec",
           "HoneypotsEval", "InspectEval", "PriorEval", "ScoreMap", "SuiteEval",
           "eval_kind_names", "get_eval_kind", "kind_of", "register"]

#: name -> the registered kind, in the order of registration
EVAL_KINDS: dict[str, EvalKind[Any]] = {}

K = TypeVar("K", bound=type[EvalKind[Any]])


def register(cls: K) -> K:
    """Register an evaluation kind (a class decorator); a kind of the same name is replaced."""
    spec = getattr(cls, "spec", None)
    if not (isinstance(spec, type) and issubclass(spec, EvalSpec)) \
            or spec.model_fields["kind"].default != cls.name:
        raise TypeError(f"{cls.__name__}.spec must be an EvalSpec whose kind defaults to "
                        f"'{cls.name}'")
    EVAL_KINDS[cls.name] = cls()
    SPECS[cls.name] = spec
    return cls


def get_eval_kind(name: str) -> EvalKind[Any]:
    if name not in EVAL_KINDS:
        raise ParablesError(f"unknown evaluation kind '{name}'; kinds: "
                            + ", ".join(EVAL_KINDS))
    return EVAL_KINDS[name]


def kind_of(spec: EvalSpec) -> EvalKind[Any]:
    """The kind that runs, sizes and reports `spec`."""
    return get_eval_kind(spec.kind)


def eval_kind_names() -> list[str]:
    return list(EVAL_KINDS)


for _builtin in (Honeypots, Prior, Suite, Inspect):
    register(_builtin)
