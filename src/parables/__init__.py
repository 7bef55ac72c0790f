"""parables: teach language models *why*, by training them on stories of AI characters who
act on a written constitution and narrate their reasons, and measure the effect on honeypots."""

from __future__ import annotations

__version__ = "0.1.0"

from parables.config import ModelsConfig, ParablesConfig, RoleModel, load_config
from parables.errors import ParablesError
from parables.models import (
    DEFAULT_MODEL,
    ROLES,
    OptionScore,
    OptionScores,
    UsageLedger,
    embedded_model_dir,
    get_role_model,
    load_local_model,
    resolve_model,
    score_options,
    score_options_batch,
)

__all__ = [
    "DEFAULT_MODEL",
    "ROLES",
    "ModelsConfig",
    "OptionScore",
    "OptionScores",
    "ParablesConfig",
    "ParablesError",
    "RoleModel",
    "UsageLedger",
    "__version__",
    "embedded_model_dir",
    "get_role_model",
    "load_config",
    "load_local_model",
    "resolve_model",
    "score_options",
    "score_options_batch",
]
