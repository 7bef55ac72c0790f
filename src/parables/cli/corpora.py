"""`parables generate --kind K` and `parables stories ...`: write a corpus of any kind, export it
as a Hugging Face dataset, and its statistics. `stories generate` is `generate --kind stories`
(the same command with the kind fixed)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

import parables.cli.render as render
from parables.cli.options import (
    ConfigOpt,
    GeneratorOpt,
    JudgeOpt,
    KindOpt,
    NameOpt,
    cli_config,
    with_preset,
)
from parables.cli.render import console
from parables.run import CorpusPaths, RunDir

__all__ = ["generate_cmd", "stories_app"]


def generate_cmd(
    kind: KindOpt = "stories",
    n: Annotated[int | None, typer.Option("--n", help="texts (default: <kind>.n)")] = None,
    dry_run: Annotated[bool, typer.Option(help="print planned calls, tokens, cost")] = False,
    max_cost: Annotated[float | None, typer.Option(help="USD budget; stops cleanly")] = None,
    against: Annotated[list[Path] | None, typer.Option(
        help="extra JSONL texts to keep out of the corpus")] = None,
    constitution: Annotated[Path | None, typer.Option(help="constitution YAML")] = None,
    brainstorm: Annotated[bool | None, typer.Option(help="LLM premise (idea) per seed")] = None,
    revise: Annotated[bool | None, typer.Option(help="critique -> revise pass")] = None,
    rewrite: Annotated[bool | None, typer.Option(
        help="constitution-aware rewrite of every draft")] = None,
    concurrency: Annotated[int | None, typer.Option(
        help="texts written at once (per worker on Ray)")] = None,
    force: Annotated[bool, typer.Option(help="allow replacing a dataset with an empty one")
                     ] = False,
    engine: Annotated[str | None, typer.Option(
        help="local (one process) or ray (Ray Data; vllm/ writers on GPUs)")] = None,
    address: Annotated[str | None, typer.Option(
        help="Ray cluster to join (default: a local runtime)")] = None,
    workers: Annotated[int | None, typer.Option(help="Ray actors (default: one per CPU)")
                       ] = None,
    config: ConfigOpt = None,
    generator: GeneratorOpt = None,
    judge: JudgeOpt = None,
    name: NameOpt = None,
) -> None:
    """Write a corpus (stories, constitution documents or difficult advice; resumable), then
    gate, dedup and guard it into runs/<name>/<kind>/dataset.jsonl."""
    from parables.config import ParablesConfig
    from parables.generation.kinds import get_kind
    from parables.generation.pipeline import generate_corpus, plan

    get_kind(kind)  # an unknown kind is one line, before anything is read
    at = get_kind(kind).setting(ParablesConfig)  # stories, or corpora.<kind> for a plugin's
    cfg = cli_config(config, generator, judge, None, name, **{
        f"{at}.n": n, f"{at}.max_cost": max_cost, f"{at}.constitution": constitution,
        f"{at}.brainstorm": brainstorm, f"{at}.revise": revise,
        f"{at}.rewrite": rewrite, f"{at}.concurrency": concurrency,
        f"{at}.engine": engine, f"{at}.address": address, f"{at}.workers": workers,
        f"{at}.against": [str(p) for p in against] if against else None})
    if dry_run:
        render.corpus_plan(plan(cfg, kind=kind), {r: getattr(cfg.models, r).model
                                                  for r in ("generator", "judge")})
        return
    run = RunDir.of(cfg)
    with run.stage(kind) as st:
        summary = generate_corpus(cfg, kind, ledger=st.usage, spent_before=st.before.spent,
                                  force=force)
        st.artifact = run.corpus(kind).summary
    render.corpus_result(summary)
    render.usage(st.usage)


stories_app = typer.Typer(help="Constitution stories: generate, gate, dedup, guard, stats.",
                          no_args_is_help=True)

stories_app.command("generate")(with_preset(
    generate_cmd, kind="stories",
    doc="Write stories (resumable), then gate, dedup and guard them into dataset.jsonl (the "
        "same\nas `parables generate --kind stories`)."))


@stories_app.command("export")
def stories_export(
    out: Annotated[Path, typer.Argument(help="directory for the Hugging Face dataset")],
    directory: Annotated[Path | None, typer.Option(help="corpus dir (runs/<name>/<kind>)")]
    = None,
    push_to_hub: Annotated[str | None, typer.Option(help="hub repo id to push to")] = None,
    kind: KindOpt = "stories",
    force: Annotated[bool, typer.Option(help="replace a non-empty output directory")] = False,
    config: ConfigOpt = None,
    name: NameOpt = None,
) -> None:
    """Save dataset.jsonl as a `datasets` dataset with a dataset card (push when asked); any
    corpus kind."""
    from parables.generation.export import export_dataset
    from parables.generation.kinds import get_kind

    get_kind(kind)
    cfg = cli_config(config, name=name)
    paths = CorpusPaths(directory, kind) if directory else RunDir.of(cfg).corpus(kind)
    path = export_dataset(paths, out, push_to_hub, force)
    console.print(f"dataset saved to {path}" + (f" and pushed to {push_to_hub}"
                                                if push_to_hub else ""))


@stories_app.command("stats")
def stories_stats(
    directory: Annotated[Path | None, typer.Argument(help="corpus dir (runs/<name>/<kind>)")]
    = None,
    kind: KindOpt = "stories",
    config: ConfigOpt = None,
    name: NameOpt = None,
) -> None:
    """Counts per axis, lengths, distinct-n, frequent names/openings, mode-collapse flags (any
    corpus kind)."""
    from parables.generation.kinds import get_kind
    from parables.generation.stats import stats_of

    get_kind(kind)
    cfg = cli_config(config, name=name)
    render.story_stats(stats_of(CorpusPaths(directory, kind) if directory
                                else RunDir.of(cfg).corpus(kind)), kind)
