"""The config side of evaluation kinds: `EvalSpec`, the fields every `experiment.evals` entry
has, and `EvalEntry`, the type of one entry, which validates a mapping with the config class
registered for its `kind` (`parables.evaluation.kinds.register` fills `SPECS`). A kind
registered after import, from a plugin or a test module, is accepted the same way.

This module imports nothing of parables but the config base: the experiment config uses it
while parables.config is itself being imported, and what the kinds run (models, Inspect, the
analysis) depends on that config."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field, SerializeAsAny, ValidatorFunctionWrapHandler, WrapValidator

from parables._schema import Strict

__all__ = ["DEFAULT_EVAL", "NAME_PATTERN", "SPECS", "EvalEntry", "EvalSpec", "default_evals"]

#: an evaluation's name is its result folder
NAME_PATTERN = r"^[A-Za-z0-9._-]+$"

#: the evaluation an experiment runs when its config names none
DEFAULT_EVAL = "honeypots"


class EvalSpec(Strict):
    """What every evaluation's config has. A kind's config subclasses it, narrowing `kind` to
    `Literal["<kind>"]` with that default, and adds its own fields."""

    kind: str = Field(description="which evaluation: a registered kind")
    name: str = Field(pattern=NAME_PATTERN, description="result folder")


#: kind -> its config class, in the order the kinds were registered
SPECS: dict[str, type[EvalSpec]] = {}


def _by_kind(value: Any, handler: ValidatorFunctionWrapHandler) -> Any:
    """An `experiment.evals` entry validated by its kind's config class, so that errors name
    the entry's own fields (`experiment.evals.0.limit`)."""
    if isinstance(value, EvalSpec):
        return value
    kinds = ", ".join(SPECS)
    if not isinstance(value, dict):
        raise ValueError(f"an evaluation is a mapping with a kind (one of: {kinds})")
    kind = value.get("kind")
    spec = SPECS.get(kind) if isinstance(kind, str) else None
    if spec is None:
        what = "no kind given" if kind is None else f"unknown evaluation kind '{kind}'"
        raise ValueError(f"{what}; kinds: {kinds}")
    return spec.model_validate(value)


#: the type of an `experiment.evals` entry: dispatched on `kind` when validated, dumped with
#: all of its kind's fields
EvalEntry = Annotated[SerializeAsAny[EvalSpec], WrapValidator(_by_kind)]


def default_evals() -> list[EvalSpec]:
    """`experiment.evals` when the config names none: the default kind with its defaults."""
    return [SPECS[DEFAULT_EVAL].model_validate({"kind": DEFAULT_EVAL})]
