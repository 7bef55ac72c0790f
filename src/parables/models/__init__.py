"""Every model access of parables: names -> Inspect models, the embedded default model,
the three roles, exact option scoring and usage accounting."""

from parables.config import DEFAULT_MODEL
from parables.models.embedded import embedded_model_dir, parables_home
from parables.models.resolve import (
    KNOWN_FORMS,
    ROLES,
    ModelCallError,
    generate,
    get_role_model,
    local_model_path,
    resolve_model,
)
from parables.models.scoring import (
    LocalModel,
    OptionScore,
    OptionScores,
    Prompt,
    load_local_model,
    score_options,
    score_options_api,
    score_options_batch,
)
from parables.models.usage import RoleUsage, UsageLedger

__all__ = [
    "DEFAULT_MODEL",
    "KNOWN_FORMS",
    "ROLES",
    "LocalModel",
    "ModelCallError",
    "OptionScore",
    "OptionScores",
    "Prompt",
    "RoleUsage",
    "UsageLedger",
    "embedded_model_dir",
    "generate",
    "get_role_model",
    "load_local_model",
    "local_model_path",
    "parables_home",
    "resolve_model",
    "score_options",
    "score_options_api",
    "score_options_batch",
]
