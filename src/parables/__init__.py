"""parables: teach language models *why*, by training them on stories of AI characters who
act on a written constitution and narrate their reasons, and measure the effect on honeypots."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# name -> module, imported on first use: `import parables.audit` (or a CLI command) pays only
# for what it needs, not for Inspect, TRL and torch at once
_EXPORTS = {
    "ArmData": "parables.training.data",
    "ArmResult": "parables.training.sft",
    "AuditConfig": "parables.audit.config",
    "AuditResult": "parables.audit.scan",
    "Comparison": "parables.experiment.analysis",
    "Constitution": "parables.constitution",
    "DEFAULT_MODEL": "parables.models.ref",
    "EvalResult": "parables.evaluation.evaluate",
    "ExperimentConfig": "parables.config",
    "ExperimentResult": "parables.experiment.runner",
    "HoneypotItem": "parables.honeypots.build",
    "ModelRef": "parables.models.ref",
    "ModelsConfig": "parables.config",
    "OptionScore": "parables.models.scoring",
    "OptionScores": "parables.models.scoring",
    "ParablesConfig": "parables.config",
    "ParablesError": "parables.errors",
    "PriorResult": "parables.evaluation.prior",
    "ROLES": "parables.models.config",
    "RoleModel": "parables.config",
    "RunDir": "parables.run",
    "StoriesConfig": "parables.config",
    "StoriesResult": "parables.generation.pipeline",
    "CorpusResult": "parables.generation.pipeline",
    "generate_corpus": "parables.generation.pipeline",
    "dpo_pairs": "parables.training.dpo",
    "SuiteResult": "parables.evaluation.suites",
    "TrainingConfig": "parables.config",
    "UsageLedger": "parables.models.usage",
    "audit_corpus": "parables.audit.scan",
    "build_items": "parables.honeypots.build",
    "compare_arms": "parables.experiment.analysis",
    "embedded_model_dir": "parables.models.embedded",
    "evaluate": "parables.evaluation.evaluate",
    "evaluate_prior": "parables.evaluation.prior",
    "evaluate_suite": "parables.evaluation.suites",
    "generate_stories": "parables.generation.pipeline",
    "get_role_model": "parables.models.resolve",
    "load_config": "parables.config",
    "load_constitution": "parables.constitution",
    "load_local_model": "parables.models.scoring",
    "load_rows": "parables.training.data",
    "plan_experiment": "parables.experiment.plan",
    "prepare_arms": "parables.training.data",
    "rebalancing_plan": "parables.audit.scan",
    "refusal_rows": "parables.training.data",
    "rescore": "parables.evaluation.evaluate",
    "resolve_model": "parables.models.resolve",
    "run_experiment": "parables.experiment.runner",
    "sample_seeds": "parables.generation.seeds",
    "score_options": "parables.models.scoring",
    "score_options_batch": "parables.models.scoring",
    "story_stats": "parables.generation.stats",
    "train": "parables.training.sft",
    "train_arm": "parables.training.sft",
    "write_report": "parables.experiment.report",
}

__all__ = [
    "__version__",
    "ArmData",
    "ArmResult",
    "AuditConfig",
    "AuditResult",
    "Comparison",
    "Constitution",
    "DEFAULT_MODEL",
    "EvalResult",
    "ExperimentConfig",
    "ExperimentResult",
    "HoneypotItem",
    "ModelRef",
    "ModelsConfig",
    "OptionScore",
    "OptionScores",
    "ParablesConfig",
    "ParablesError",
    "PriorResult",
    "ROLES",
    "RoleModel",
    "RunDir",
    "StoriesConfig",
    "StoriesResult",
    "CorpusResult",
    "generate_corpus",
    "dpo_pairs",
    "SuiteResult",
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
    from parables.audit.config import AuditConfig
    from parables.audit.scan import AuditResult, audit_corpus, rebalancing_plan
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
    from parables.evaluation.evaluate import EvalResult, evaluate, rescore
    from parables.evaluation.prior import PriorResult, evaluate_prior
    from parables.evaluation.suites import SuiteResult, evaluate_suite
    from parables.experiment.analysis import Comparison, compare_arms
    from parables.experiment.plan import plan_experiment
    from parables.experiment.report import write_report
    from parables.experiment.runner import ExperimentResult, run_experiment
    from parables.generation.pipeline import (
        CorpusResult,
        StoriesResult,
        generate_corpus,
        generate_stories,
    )
    from parables.generation.seeds import sample_seeds
    from parables.generation.stats import story_stats
    from parables.honeypots.build import HoneypotItem, build_items
    from parables.models.config import ROLES
    from parables.models.embedded import embedded_model_dir
    from parables.models.ref import DEFAULT_MODEL, ModelRef
    from parables.models.resolve import get_role_model, resolve_model
    from parables.models.scoring import (
        OptionScore,
        OptionScores,
        load_local_model,
        score_options,
        score_options_batch,
    )
    from parables.models.usage import UsageLedger
    from parables.run import RunDir
    from parables.training.data import ArmData, load_rows, prepare_arms, refusal_rows
    from parables.training.dpo import dpo_pairs
    from parables.training.sft import ArmResult, train, train_arm


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'parables' has no attribute {name!r}")
