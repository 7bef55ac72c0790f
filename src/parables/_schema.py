"""The base of every config section (unknown fields are errors, assignments are validated),
the one-line message a bad YAML file ends in (file:line: field: what was expected), and how
a config is written and hashed into a run's manifest.

Every schema of parables (the config, the constitution, the audit options) reports its
validation errors through `validation_message`, so they all read the same."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from parables._io import digest
from parables._redact import redact

__all__ = ["Strict", "config_dump", "config_hash", "stable_name", "validation_message"]


class Strict(BaseModel):
    # inf and nan are refused in every number: `--lr inf` trained a model of NaN weights
    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False)


def config_dump(config: BaseModel) -> dict[str, Any]:
    """The config as JSON, as written to a run's manifest: secrets masked, objects passed
    through model args from Python (a mockllm output function) written as their name."""
    dumped: dict[str, Any] = redact(config.model_dump(mode="json", fallback=stable_name))
    return dumped


def config_hash(config: BaseModel) -> str:
    """Stable short hash of a config's content, used to tell runs apart."""
    return digest(config_dump(config))


def stable_name(obj: Any) -> str:
    return f"{getattr(obj, '__module__', '')}.{getattr(obj, '__qualname__', type(obj).__name__)}"


def validation_message(
    error: ValidationError, source: str, node: yaml.Node | None, cls: type[BaseModel],
    moved: Mapping[str, str] | None = None,
) -> str:
    """One line for the first validation problem: file:line: field: what was expected.

    `node`: the parsed YAML (for the line number); `moved`: fields that moved between
    versions (old dotted name -> where it lives now), named instead of "unknown field"."""
    first = error.errors()[0]
    loc = [str(part) for part in first["loc"] if part not in ("str", "function-before")]
    field = ".".join(loc) or "<top level>"
    line = _line_of(node, loc)
    where = f"{source}:{line}" if line is not None else source
    if first["type"] == "extra_forbidden":
        now = (moved or {}).get(".".join(loc))
        if now:
            return f"{where}: {'.'.join(loc)} is now {now}"
        allowed = _allowed_fields(cls, loc[:-1])
        hint = f"; expected one of: {', '.join(allowed)}" if allowed else ""
        msg = f"unknown field '{loc[-1]}'{hint}"
        return f"{where}: {msg}"
    got = first.get("input")
    got_text = "" if isinstance(got, dict) else f" (got {got!r})"
    msg = str(first["msg"]).removeprefix("Value error, ")  # pydantic's wrapper of our own
    return f"{where}: {field}: {msg}{got_text}"


def _line_of(node: yaml.Node | None, loc: list[str]) -> int | None:
    line = None
    for key in loc:
        if isinstance(node, yaml.SequenceNode) and key.isdigit() and int(key) < len(node.value):
            node = node.value[int(key)]
            line = node.start_mark.line + 1
            continue
        if not isinstance(node, yaml.MappingNode):
            break
        for k, v in node.value:
            if k.value == key:
                line = k.start_mark.line + 1
                node = v
                break
        else:
            break
    return line


def _allowed_fields(cls: type[BaseModel], loc: list[str]) -> list[str]:
    model: Any = cls
    for key in loc:
        field = getattr(model, "model_fields", {}).get(key)
        if field is None:
            return []
        model = field.annotation
    return sorted(getattr(model, "model_fields", {}))
