"""parables: teach language models *why*, by training them on stories of AI characters who
act on a written constitution and narrate their reasons, and measure the effect on honeypots.

The public API: configuration, the entry point of every stage, and the typed result each
stage returns. Everything else (arm data, recipes, kinds' internals) lives in its subpackage
and may move between releases; the extension points are `parables.generation.kinds`,
`parables.training.arms` and `parables.evaluation.kinds` (one registered class each).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# name -> module, imported on first use: `import parables.audit` (or a CLI command) pays only
# for what it needs, not for Inspect, TRL and torch at once. `__all__` and the imports for
# type checkers below hold the same names (tests/test_api.py).
_EXPORTS = {
    # configuration
    "AdviceConfig": "parables.generation.config",
    "AuditConfig": "parables.audit.config",
    "DocumentsConfig": "parables.generation.config",
    "ExperimentConfig": "parables.experiment.config",
    "GenerationConfig": "parables.models.config",
    "HoneypotsEval": "parables.evaluation.kinds.honeypots",
    "InspectEval": "parables.evaluation.kinds.inspect",
    "ModelsConfig": "parables.models.config",
    "OrganismConfig": "parables.experiment.config",
    "ParablesConfig": "parables.config",
    "PriorEval": "parables.evaluation.kinds.prior",
    "RoleModel": "parables.models.config",
    "ScoreMap": "parables.evaluation.kinds.inspect",
    "StoriesConfig": "parables.generation.config",
    "SuiteEval": "parables.evaluation.kinds.suite",
    "TrainingConfig": "parables.training.config",
    "load_config": "parables.config",
    # the stages
    "audit_corpus": "parables.audit.scan",
    "build_items": "parables.honeypots.build",
    "compare_arms": "parables.experiment.analysis",
    "evaluate": "parables.evaluation.evaluate",
    "evaluate_prior": "parables.evaluation.prior",
    "evaluate_suite": "parables.evaluation.suites",
    "generate_corpus": "parables.generation.pipeline",
    "load_constitution": "parables.constitution",
    "plan_experiment": "parables.experiment.plan",
    "rebalancing_plan": "parables.audit.scan",
    "rescore": "parables.evaluation.evaluate",
    "run_eval": "parables.evaluation.battery",
    "run_experiment": "parables.experiment.runner",
    "train": "parables.training.trainer",
    "write_report": "parables.experiment.report",
    # models
    "DEFAULT_MODEL": "parables.models.ref",
    "ModelRef": "parables.models.ref",
    "ROLES": "parables.models.config",
    "embedded_model_dir": "parables.models.embedded",
    "get_role_model": "parables.models.resolve",
    "resolve_model": "parables.models.resolve",
    "score_options": "parables.models.scoring",
    "score_options_batch": "parables.models.scoring",
    # results and the types they carry
    "ArmResult": "parables.training.loop",
    "AuditResult": "parables.audit.scan",
    "Comparison": "parables.experiment.analysis",
    "Constitution": "parables.constitution",
    "CorpusResult": "parables.generation.pipeline",
    "EvalRecord": "parables.evaluation.record",
    "EvalResult": "parables.evaluation.evaluate",
    "ExperimentResult": "parables.experiment.runner",
    "HoneypotItem": "parables.honeypots.build",
    "OptionScore": "parables.models.scoring",
    "OptionScores": "parables.models.scoring",
    "ParablesError": "parables.errors",
    "PlanRow": "parables.experiment.plan",
    "PriorResult": "parables.evaluation.prior",
    "ReportData": "parables.experiment.report",
    "RunDir": "parables.run",
    "SuiteResult": "parables.evaluation.suites",
    "UsageLedger": "parables.models.usage",
}

__all__ = ["__version__", "AdviceConfig", "ArmResult", "AuditConfig", "AuditResult", "Comparison",
    "Constitution", "CorpusResult", "DEFAULT_MODEL", "DocumentsConfig", "EvalRecord",
    "EvalResult", "ExperimentConfig", "ExperimentResult", "GenerationConfig", "HoneypotItem",
    "HoneypotsEval", "InspectEval", "ModelRef", "ModelsConfig", "OptionScore", "OptionScores",
    "OrganismConfig", "ParablesConfig", "ParablesError", "PlanRow", "PriorEval", "PriorResult",
    "ROLES", "ReportData", "RoleModel", "RunDir", "ScoreMap", "StoriesConfig", "SuiteEval",
    "SuiteResult", "TrainingConfig", "UsageLedger", "audit_corpus", "build_items", "compare_arms",
    "embedded_model_dir", "evaluate", "evaluate_prior", "evaluate_suite", "generate_corpus",
    "get_role_model", "load_config", "load_constitution", "plan_experiment", "rebalancing_plan",
    "rescore", "resolve_model", "run_eval", "run_experiment", "score_options",
    "score_options_batch", "train", "write_report"]

if TYPE_CHECKING:  # the same names, for type checkers (tests/test_api.py keeps them equal)
    from parables.audit.config import AuditConfig
    from parables.audit.scan import AuditResult, audit_corpus, rebalancing_plan
    from parables.config import ParablesConfig, load_config
    from parables.constitution import Constitution, load_constitution
    from parables.errors import ParablesError
    from parables.evaluation.battery import run_eval
    from parables.evaluation.evaluate import EvalResult, evaluate, rescore
    from parables.evaluation.kinds.honeypots import HoneypotsEval
    from parables.evaluation.kinds.inspect import InspectEval, ScoreMap
    from parables.evaluation.kinds.prior import PriorEval
    from parables.evaluation.kinds.suite import SuiteEval
    from parables.evaluation.prior import PriorResult, evaluate_prior
    from parables.evaluation.record import EvalRecord
    from parables.evaluation.suites import SuiteResult, evaluate_suite
    from parables.experiment.analysis import Comparison, compare_arms
    from parables.experiment.config import ExperimentConfig, OrganismConfig
    from parables.experiment.plan import PlanRow, plan_experiment
    from parables.experiment.report import ReportData, write_report
    from parables.experiment.runner import ExperimentResult, run_experiment
    from parables.generation.config import AdviceConfig, DocumentsConfig, StoriesConfig
    from parables.generation.pipeline import CorpusResult, generate_corpus
    from parables.honeypots.build import HoneypotItem, build_items
    from parables.models.config import ROLES, GenerationConfig, ModelsConfig, RoleModel
    from parables.models.embedded import embedded_model_dir
    from parables.models.ref import DEFAULT_MODEL, ModelRef
    from parables.models.resolve import get_role_model, resolve_model
    from parables.models.scoring import (
        OptionScore,
        OptionScores,
        score_options,
        score_options_batch,
    )
    from parables.models.usage import UsageLedger
    from parables.run import RunDir
    from parables.training.config import TrainingConfig
    from parables.training.loop import ArmResult
    from parables.training.trainer import train


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'parables' has no attribute {name!r}")
