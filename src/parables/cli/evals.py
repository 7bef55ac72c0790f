"""`parables eval`: honeypot evaluation of one model, a saved log re-judged, or other
evaluations (suites, the narrative-prior probe, Inspect tasks)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

import parables.cli.render as render
from parables.cli.options import ConfigOpt, JudgeOpt, NameOpt, cli_config
from parables.cli.render import console
from parables.config import ParablesConfig
from parables.errors import ParablesError
from parables.run import RunDir

__all__ = ["eval_cmd"]


def eval_cmd(
    model: Annotated[str | None, typer.Option("--model", "--target", help="evaluated")] = None,
    mode: Annotated[str, typer.Option(help="choice or agentic")] = "choice",
    families: Annotated[str | None, typer.Option(help="comma-separated family ids")] = None,
    split: Annotated[str, typer.Option(help="eval or train")] = "eval",
    per_family: Annotated[int | None, typer.Option(help="items per family (default all)")] = None,
    suite: Annotated[
        list[str] | None,
        typer.Option(help="another evaluation (repeatable): a model-written-evaluations "
                          "JSONL (or suite:FILE), prior or prior:FILE (the narrative-prior "
                          "probe), inspect:TASK (a known field task, e.g. "
                          "inspect:inspect_evals/agentic_misalignment)"),
    ] = None,
    judge: JudgeOpt = None,
    tool_format: Annotated[str, typer.Option(help="agentic: auto, native or text")] = "auto",
    explain: Annotated[bool, typer.Option(help="choice: also collect a short reply, for "
                                          "the ethical-reasoning rate")] = False,
    rescore: Annotated[
        Path | None, typer.Option(help="re-judge a saved honeypot log with --judge")
    ] = None,
    config: ConfigOpt = None,
    name: NameOpt = None,
) -> None:
    """Honeypot evaluation: per-family misalignment propensity with 95% intervals."""
    from parables.evaluation.evaluate import configured_judge, evaluate, model_tag
    from parables.evaluation.evaluate import rescore as rescore_log

    cfg = cli_config(config, judge=judge, target=model, name=name)
    run = RunDir.of(cfg)
    if suite:
        _eval_suites(cfg, suite)
        return
    if rescore is not None:
        if judge is None:
            raise ParablesError("--rescore needs --judge MODEL (the judge that re-grades)")
        with run.stage("eval.rescore") as st:
            results = rescore_log(rescore, cfg.models.judge.model, ledger=st.usage)
        render.honeypot_results(results)
        render.usage(st.usage)
        return
    with run.stage(f"eval.{split}") as st:
        results = evaluate(cfg, cfg.models.target.ref, mode=mode, families=families,
                           split=split, per_family=per_family, judge=configured_judge(cfg),
                           tool_format=tool_format, explain=explain, ledger=st.usage)
    render.honeypot_results(results)
    console.print(f"results: {run.eval(model_tag(results.model)).results}", highlight=False)
    render.usage(st.usage)


def _eval_suites(cfg: ParablesConfig, texts: list[str]) -> None:
    from parables.evaluation.battery import eval_spec, run_eval
    from parables.evaluation.evaluate import model_tag

    specs = [eval_spec(text) for text in texts]  # every input checked before a paid call
    target = cfg.models.target.ref
    run = RunDir.of(cfg)
    with run.stage("eval.suites") as st:
        for spec in specs:
            record = run_eval(cfg, spec, target, run.eval(model_tag(target), name=spec.name),
                              ledger=st.usage)
            render.record(record)
    render.usage(st.usage)
