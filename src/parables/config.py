"""Configuration: one YAML file, one pydantic model per section (each beside what it
configures; unknown fields are errors), assembled here.

Every field can be set in a YAML file and overridden on the command line; a bad file ends
in one line naming the file, the line, the field and what was expected.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import Field, ValidationError, field_validator

from parables._io import read_yaml
from parables._schema import Strict, config_dump, config_hash, validation_message
from parables.errors import ParablesError
from parables.experiment.config import ExperimentConfig
from parables.generation.config import AdviceConfig, CorpusConfig, DocumentsConfig, StoriesConfig
from parables.models.config import DEFAULT_MODEL, GenerationConfig, ModelsConfig, RoleModel
from parables.training.config import TrainingConfig

__all__ = [
    "DEFAULT_MODEL",
    "AdviceConfig",
    "DocumentsConfig",
    "ExperimentConfig",
    "GenerationConfig",
    "ModelsConfig",
    "ParablesConfig",
    "RoleModel",
    "StoriesConfig",
    "TrainingConfig",
    "config_dump",
    "config_hash",
    "load_config",
]


class ParablesConfig(Strict):
    """Top-level configuration: the run's name and seed, then one section per stage."""

    name: str = Field("default", pattern=r"^[A-Za-z0-9._-]+$",
                      description="run name (a folder under runs_dir)")
    runs_dir: Path = Field(Path("runs"), description="run directories live under here")
    seed: int = Field(0, description="seeds sampling, data order and judges")
    max_cost: float | None = Field(
        None, gt=0, description="USD budget for every paid call of the run: every role, every "
        "stage, every rerun (stories.max_cost can cap the stories within it)")
    models: ModelsConfig = Field(default_factory=ModelsConfig)
    generation: GenerationConfig = Field(default_factory=GenerationConfig)
    stories: StoriesConfig = Field(default_factory=StoriesConfig)
    documents: DocumentsConfig = Field(default_factory=DocumentsConfig)
    advice: AdviceConfig = Field(default_factory=AdviceConfig)
    corpora: dict[str, CorpusConfig] = Field(
        default_factory=dict, description="settings of corpus kinds without a section of their "
        "own (kinds registered by a plugin), by kind: the fields every kind shares")
    training: TrainingConfig = Field(default_factory=TrainingConfig)
    experiment: ExperimentConfig = Field(default_factory=ExperimentConfig)

    @field_validator("corpora")
    @classmethod
    def _other_kinds(cls, v: dict[str, CorpusConfig]) -> dict[str, CorpusConfig]:
        from parables.generation.kinds import KINDS

        for kind in v:
            if kind in cls.model_fields:
                raise ValueError(f"corpora: '{kind}' has its own section ({kind}:); set it "
                                 "there")
            if kind not in KINDS:
                raise ValueError(f"corpora: no corpus kind '{kind}'; kinds: "
                                 + ", ".join(sorted(KINDS)))
        return v

    @field_validator("name")
    @classmethod
    def _inside_runs_dir(cls, v: str) -> str:
        if v in (".", ".."):
            raise ValueError("a run name cannot be '.' or '..' (it must be a folder inside "
                             "runs_dir)")
        return v


#: fields that moved between versions: old dotted name -> where it lives now
MOVED = {
    "stories.prices": "models.prices (prices of every role, not only the stories')",
    **{f"experiment.{k}": f"experiment.evals[].{k} (an entry of kind honeypots)"
       for k in ("mode", "per_family", "families", "judge", "explain")},
}


def load_config(
    path: str | Path | None = None,
    overrides: dict[str, Any] | None = None,
    cls: type[ParablesConfig] = ParablesConfig,
) -> ParablesConfig:
    """Load a YAML config (or the defaults when `path` is None) and apply dotted overrides.

    `overrides` maps dotted field names (`models.generator`) to values; None values are
    ignored so CLI options that were not given leave the file's value in place.
    """
    data: dict[str, Any] = {}
    node: yaml.Node | None = None
    source = str(path) if path is not None else "<defaults>"
    if path is not None:
        p = Path(path)
        loaded, node = read_yaml(p, "config")
        if loaded is None:
            loaded = {}
        if not isinstance(loaded, dict):
            raise ParablesError(
                f"{p}: expected a mapping of config fields at the top level, "
                f"got {type(loaded).__name__}"
            )
        data = loaded
    for dotted, value in (overrides or {}).items():
        if value is not None:
            _set_dotted(data, dotted, value)
    try:
        return cls.model_validate(data)
    except ValidationError as e:
        raise ParablesError(validation_message(e, source, node, cls, MOVED)) from e


def _set_dotted(data: dict[str, Any], dotted: str, value: Any) -> None:
    keys = dotted.split(".")
    cur = data
    for key in keys[:-1]:
        nxt = cur.get(key)
        if not isinstance(nxt, dict):
            nxt = {} if nxt is None else {"model": nxt}
            cur[key] = nxt
        cur = nxt
    leaf = cur.get(keys[-1])
    # a CLI model override of a role given as a mapping keeps its server and args only for a
    # model of the same provider: another provider's key must never go to the file's server
    if isinstance(leaf, dict) and isinstance(value, str) and "model" in leaf:
        same = str(leaf["model"]).split("/", 1)[0] == value.split("/", 1)[0]
        cur[keys[-1]] = {**leaf, "model": value} if same else {"model": value}
    else:
        cur[keys[-1]] = value
