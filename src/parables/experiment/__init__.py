"""The experiment: runner (stages, skipping, resuming), paired analysis and the report."""

from parables.experiment.analysis import compare_arms
from parables.experiment.report import write_report
from parables.experiment.runner import ExperimentResult, plan_experiment, run_experiment

__all__ = ["ExperimentResult", "compare_arms", "plan_experiment", "run_experiment",
           "write_report"]
