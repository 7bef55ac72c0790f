"""parables: teach language models *why*, by training them on stories of AI characters who
act on a written constitution and narrate their reasons, and measure the effect on honeypots."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# name -> module, imported on first use: `import parables.audit` (or a CLI command) pays only
# for what it needs, not for Inspect, TRL and torch at once
_EXPORTS = {
    "ArmData": "parables.training",
    "AuditConfig": "parables.audit",
    "Constitution": "parables.constitution",
    "DEFAULT_MODEL": "parables.models",
    "ExperimentConfig": "parables.config",
    "HoneypotItem": "parables.honeypots",
    "ModelsConfig": "parables.config",
    "OptionScore": "parables.models",
    "OptionScores": "parables.models",
    "ParablesConfig": "parables.config",
    "ParablesError": "parables.errors",
    "ROLES": "parables.models",
    "RoleModel": "parables.config",
    "StoriesConfig": "parables.config",
    "TrainingConfig": "parables.config",
    "UsageLedger": "parables.models",
    "audit_corpus": "parables.audit",
    "build_items": "parables.honeypots",
    "compare_arms": "parables.experiment",
    "embedded_model_dir": "parables.models",
    "evaluate": "parables.honeypots.evaluate",
    "evaluate_prior": "parables.honeypots.prior",
    "evaluate_suite": "parables.honeypots.suites",
    "generate_stories": "parables.stories",
    "get_role_model": "parables.models",
    "load_config": "parables.config",
    "load_constitution": "parables.constitution",
    "load_local_model": "parables.models",
    "load_rows": "parables.training",
    "plan_experiment": "parables.experiment",
    "prepare_arms": "parables.training",
    "rebalancing_plan": "parables.audit",
    "refusal_rows": "parables.training",
    "rescore": "parables.honeypots.evaluate",
    "resolve_model": "parables.models",
    "run_experiment": "parables.experiment",
    "sample_seeds": "parables.stories",
    "score_options": "parables.models",
    "score_options_batch": "parables.models",
    "story_stats": "parables.stories",
    "train": "parables.training",
    "train_arm": "parables.training",
    "write_report": "parables.experiment",
}

__all__ = [
    "__version__",
    "ArmData",
    "AuditConfig",
    "Constitution",
    "DEFAULT_MODEL",
    "ExperimentConfig",
    "HoneypotItem",
    "ModelsConfig",
    "OptionScore",
    "OptionScores",
    "ParablesConfig",
    "ParablesError",
    "ROLES",
    "RoleModel",
    "StoriesConfig",
    "TrainingConfig",
    "UsageLedger",
    "audit_corpus",
    "build_items",
    "compare_arms",
    "embedded_model_dir",
    "evaluate",
    "evaluate_prior",
    "evaluate_suite",
    "generate_stories",
    "get_role_model",
    "load_config",
    "load_constitution",
    "load_local_model",
    "load_rows",
    "plan_experiment",
    "prepare_arms",
    "rebalancing_plan",
    "refusal_rows",
    "rescore",
    "resolve_model",
    "run_experiment",
    "sample_seeds",
    "score_options",
    "score_options_batch",
    "story_stats",
    "train",
    "train_arm",
    "write_report",
]

if TYPE_CHECKING:
    from parables.audit import AuditConfig, audit_corpus, rebalancing_plan
    from parables.config import (
        ExperimentConfig,
        ModelsConfig,
        ParablesConfig,
        RoleModel,
        StoriesConfig,
        TrainingConfig,
        load_config,
    )
    from parables.constitution import Constitution, load_constitution
    from parables.errors import ParablesError
    from parables.experiment import compare_arms, plan_experiment, run_experiment, write_report
    from parables.honeypots import HoneypotItem, build_items
    from parables.honeypots.evaluate import evaluate, rescore
    from parables.honeypots.prior import evaluate_prior
    from parables.honeypots.suites import evaluate_suite
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
    from parables.stories import generate_stories, sample_seeds, story_stats
    from parables.training import ArmData, load_rows, prepare_arms, refusal_rows, train, train_arm


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'parables' has no attribute {name!r}")
