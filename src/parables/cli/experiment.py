"""`parables run` (a whole experiment from its YAML) and `parables demo` (the same on the
embedded model at laptop scale)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer

import parables.cli.render as render
from parables.cli.options import NameOpt, cli_config
from parables.cli.render import console
from parables.config import ParablesConfig

__all__ = ["demo", "run_cmd"]


def run_cmd(
    experiment: Annotated[Path, typer.Argument(help="experiment YAML (see examples/)")],
    dry_run: Annotated[bool, typer.Option(help="print planned calls, tokens and cost")] = False,
    force: Annotated[bool, typer.Option(help="reuse a run directory that holds another "
                                        "config's results (stages that differ are redone)")
                     ] = False,
    name: NameOpt = None,
) -> None:
    """The whole experiment: stories -> arms -> training -> honeypot eval -> report."""
    cfg = cli_config(experiment, name=name)
    if dry_run:
        from parables.experiment.plan import describe_training, plan_experiment

        render.experiment_plan(cfg.name, plan_experiment(cfg), describe_training(cfg))
        return
    _run_and_print(cfg, force)


def demo(
    name: Annotated[str, typer.Option(help="run name: output in runs/<name>")] = "demo",
    force: Annotated[bool, typer.Option(help="reuse a run directory of another config")
                     ] = False,
) -> None:
    """The whole experiment on the embedded model at laptop scale (no key, GPU or network)."""
    from parables.experiment.demo import demo_config

    cfg = demo_config(name)
    console.print("parables demo: stories -> model organism -> training arms -> honeypots "
                  "and prior probe -> report, on the embedded 135M model (about 11 minutes "
                  "on 2 CPU cores)")
    _run_and_print(cfg, force)


def _run_and_print(cfg: ParablesConfig, force: bool) -> None:
    from parables.experiment.runner import run_experiment

    t0 = time.perf_counter()
    result = run_experiment(cfg, force=force, console=console)
    render.experiment(result, time.perf_counter() - t0)
