"""parables: teach language models *why*, by training them on stories of AI characters who
act on a written constitution and narrate their reasons, and measure the effect on honeypots."""

from __future__ import annotations

__version__ = "0.1.0"

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

__all__ = [
    "DEFAULT_MODEL",
    "Constitution",
    "HoneypotItem",
    "StoriesConfig",
    "build_items",
    "evaluate",
    "evaluate_prior",
    "evaluate_suite",
    "generate_stories",
    "load_constitution",
    "rescore",
    "sample_seeds",
    "story_stats",
    "ArmData",
    "TrainingConfig",
    "load_rows",
    "prepare_arms",
    "refusal_rows",
    "train",
    "train_arm",
    "AuditConfig",
    "ExperimentConfig",
    "audit_corpus",
    "compare_arms",
    "plan_experiment",
    "rebalancing_plan",
    "run_experiment",
    "write_report",
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
