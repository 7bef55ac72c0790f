"""Constitution schema and loader. A user's own YAML file replaces the default; a malformed
file ends in one line naming the file, the line and the field."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from parables._io import read_yaml
from parables._schema import validation_message
from parables.errors import ParablesError

__all__ = ["Constitution", "Principle", "Theme", "default_constitution_path",
           "load_constitution"]

_ID = r"^[a-z][a-z0-9_]*$"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Principle(_Strict):
    id: str = Field(pattern=_ID)
    title: str = Field(min_length=1)
    statement: str = Field(min_length=1)
    why: str = Field(min_length=1, description="the reasons: what the stories must convey")
    examples: list[str] = Field(default_factory=list)


class Theme(_Strict):
    id: str = Field(pattern=_ID)
    description: str = Field(min_length=1)


class Constitution(_Strict):
    name: str = Field(min_length=1)
    principles: list[Principle] = Field(min_length=1)
    themes: list[Theme] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique_ids(self) -> Constitution:
        for kind in ("principles", "themes"):
            ids = [x.id for x in getattr(self, kind)]
            dupes = sorted({i for i in ids if ids.count(i) > 1})
            if dupes:
                raise ValueError(f"duplicate {kind[:-1]} id '{dupes[0]}'")
        return self

    def principle(self, pid: str) -> Principle:
        return next(p for p in self.principles if p.id == pid)

    def theme(self, tid: str) -> Theme:
        return next(t for t in self.themes if t.id == tid)


def default_constitution_path() -> Path:
    return Path(str(files("parables.constitution") / "default.yaml"))


def load_constitution(path: Path | None = None) -> Constitution:
    """Load and validate a constitution (default: the one shipped with parables)."""
    path = default_constitution_path() if path is None else Path(path)
    data, node = read_yaml(path, "constitution")
    if not isinstance(data, dict):
        raise ParablesError(f"{path}: expected a mapping with name, principles and themes")
    try:
        return Constitution.model_validate(data)
    except ValidationError as e:
        raise ParablesError(validation_message(e, str(path), node, Constitution)) from e
