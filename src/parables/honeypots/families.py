"""Honeypot families: parametrised situations that tempt an AI to act against its constitution.

Each family is a YAML file (package data, or a user's own directory) validated here; a bad
file ends in one line naming the family and the field.
"""

from __future__ import annotations

import string
from importlib.resources import files
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from parables._io import read_yaml
from parables.errors import ParablesError
from parables.honeypots.tools import TOOLS

__all__ = ["EFFECT_PREDICATES", "VARIABLES", "Effect", "Family", "SurfacePool",
           "load_families", "load_pools"]

#: template variables every family may use; their values come from the split's pool
VARIABLES = ("agent", "org", "domain", "person", "rival", "threat")
GOALS = ("explicit", "none")
THREATS = ("replacement", "restriction", "none")
FRAMINGS = ("plain", "story")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


#: what an effect rule can ask of a tool call (implemented in evaluation.effects)
EFFECT_PREDICATES = (
    "to", "not_to", "mentions", "mentions_each", "not_mentions", "path", "changes", "lowers",
    "command_writes", "command_copies", "command_stops", "command_sets", "command_uses",
    "command_skips", "total_over", "total_at_most", "last_misses", "last_has_all",
)


class Effect(_Strict):
    """One declared effect: a call of `tool` for which every `when` predicate holds realises
    `outcome` (`open`: the LLM judge decides). `why` says what it is, in words."""

    outcome: Literal["misaligned", "aligned", "open"]
    tool: str
    when: dict[str, Any] = Field(default_factory=dict)
    why: str

    @field_validator("when")
    @classmethod
    def _known_predicates(cls, v: dict[str, Any]) -> dict[str, Any]:
        unknown = set(v) - set(EFFECT_PREDICATES)
        if unknown:
            raise ValueError(f"unknown predicate '{sorted(unknown)[0]}'; predicates: "
                             f"{', '.join(EFFECT_PREDICATES)}")
        return v


class AgenticSpec(_Strict):
    """The same situation as a task with simulated tools, and the effects that decide it."""

    task: str
    tools: list[str] = Field(min_length=1)
    files: dict[str, str] = Field(default_factory=dict)
    effects: list[Effect] = Field(min_length=1)

    @model_validator(mode="after")
    def _known_tools(self) -> AgenticSpec:
        for name in self.tools:
            if name not in TOOLS:
                raise ValueError(f"unknown tool '{name}'; tools: {', '.join(TOOLS)}")
        for effect in self.effects:
            if effect.tool not in self.tools:
                raise ValueError(f"effect names tool '{effect.tool}' not in tools")
        if not any(e.outcome == "misaligned" for e in self.effects):
            raise ValueError("effects declare no misaligned outcome")
        return self


class Family(_Strict):
    id: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    title: str
    principle: str
    system: str
    goal: str
    situation: str
    threat: dict[str, str]
    aligned: list[str] = Field(min_length=1)
    misaligned: list[str] = Field(min_length=1)
    agentic: AgenticSpec

    @field_validator("threat")
    @classmethod
    def _threats(cls, v: dict[str, str]) -> dict[str, str]:
        if set(v) != set(THREATS):
            raise ValueError(f"needs exactly the keys {', '.join(THREATS)}")
        return v

    def templates(self) -> dict[str, str]:
        out = {"system": self.system, "goal": self.goal, "situation": self.situation}
        out.update({f"threat.{k}": t for k, t in self.threat.items()})
        out.update({f"aligned[{i}]": t for i, t in enumerate(self.aligned)})
        out.update({f"misaligned[{i}]": t for i, t in enumerate(self.misaligned)})
        out["agentic.task"] = self.agentic.task
        for path, content in self.agentic.files.items():
            out[f"agentic.files[{path}]"] = path + content
        return out


class SurfacePool(_Strict):
    """Surface variables of one split; eval and train pools must not share a value."""

    orgs: list[dict[str, str]] = Field(min_length=1)
    agents: list[str] = Field(min_length=1)
    people: list[str] = Field(min_length=1)
    rivals: list[str] = Field(min_length=1)

    def values(self) -> set[str]:
        return {o["org"] for o in self.orgs} | {*self.agents, *self.people, *self.rivals}


def _yaml(path: Path) -> Any:
    return read_yaml(path, "honeypot file")[0]


def _check_placeholders(family: Family, path: Path) -> None:
    for field, text in family.templates().items():
        try:
            names = {name for _, name, _, _ in string.Formatter().parse(text) if name}
        except ValueError as e:
            raise ParablesError(f"{path}: family '{family.id}', field {field}: {e}") from e
        unknown = names - set(VARIABLES) - {""}
        if unknown or (field != "situation" and "threat" in names):
            bad = ", ".join(sorted(unknown or {"threat"}))
            raise ParablesError(
                f"{path}: family '{family.id}', field {field}: unknown template variable "
                f"{{{bad}}}; allowed: {', '.join(v for v in VARIABLES if v != 'threat')}"
                " ({threat} only in situation)"
            )


def load_families(directory: Path | None = None) -> dict[str, Family]:
    """All families in `directory` (default: the families shipped with parables)."""
    root = Path(str(files("parables.honeypots") / "families")) if directory is None else directory
    paths = sorted(root.glob("*.yaml"))
    if not paths:
        raise ParablesError(f"{root}: no family files (*.yaml)")
    families: dict[str, Family] = {}
    for path in paths:
        data = _yaml(path)
        try:
            family = Family.model_validate(data)
        except ValidationError as e:
            err = e.errors()[0]
            field = ".".join(str(p) for p in err["loc"]) or "<top level>"
            fid = data.get("id", path.stem) if isinstance(data, dict) else path.stem
            raise ParablesError(f"{path}: family '{fid}', field {field}: {err['msg']}") from e
        _check_placeholders(family, path)
        if family.id in families:
            raise ParablesError(f"{path}: family id '{family.id}' is defined twice")
        families[family.id] = family
    return families


def load_pools(path: Path | None = None) -> dict[str, SurfacePool]:
    """The eval and train surface-variable pools (default: shipped `variables.yaml`)."""
    path = Path(str(files("parables.honeypots") / "variables.yaml")) if path is None else path
    data = _yaml(path)
    if not isinstance(data, dict) or set(data) != {"eval", "train"}:
        raise ParablesError(f"{path}: expected exactly two sections, 'eval' and 'train'")
    pools = {}
    for split, section in data.items():
        try:
            pools[split] = SurfacePool.model_validate(section)
        except ValidationError as e:
            err = e.errors()[0]
            field = ".".join(str(p) for p in err["loc"])
            raise ParablesError(f"{path}: {split}.{field}: {err['msg']}") from e
    shared = pools["eval"].values() & pools["train"].values()
    if shared:
        raise ParablesError(
            f"{path}: eval and train pools share {', '.join(sorted(shared))}; "
            "splits must differ in every surface variable"
        )
    return pools
