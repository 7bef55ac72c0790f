"""The base of every config section (unknown fields are errors, assignments are validated),
and how a config is written and hashed into a run's manifest."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict

from parables._io import digest
from parables._redact import redact

__all__ = ["Strict", "config_dump", "config_hash", "stable_name"]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


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
