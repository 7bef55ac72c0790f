"""Options that several commands take, declared once (as `Annotated` types a command's
signature reuses), and the config a command's options build.

An option that only one command takes is declared in that command's signature; a command that
is another one with an option fixed (`stories generate` is `generate --kind stories`) is made
with `with_preset`, so it takes the other's options without declaring them again."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from parables.config import ParablesConfig, load_config

__all__ = [
    "ConfigOpt",
    "FieldOpt",
    "FirstPassOpt",
    "GeneratorOpt",
    "JudgeOpt",
    "KindOpt",
    "MaxDocsOpt",
    "NameOpt",
    "OutOpt",
    "PathsArg",
    "SplitOpt",
    "SystemOpt",
    "TargetOpt",
    "TermsOpt",
    "cli_config",
    "with_preset",
]

# --- the run's config and its models -----------------------------------------------------------
ConfigOpt = Annotated[
    Path | None, typer.Option("--config", "-c", help="YAML config file", show_default=False)
]
GeneratorOpt = Annotated[str | None, typer.Option(help="generator model (writes stories)")]
JudgeOpt = Annotated[str | None, typer.Option(help="judge model (grades)")]
TargetOpt = Annotated[str | None, typer.Option(help="target model (evaluated)")]
NameOpt = Annotated[str | None, typer.Option("--name", help="run name: output in runs/<name>")]

# --- models and corpora ------------------------------------------------------------------------
SystemOpt = Annotated[str | None, typer.Option(help="system message")]
KindOpt = Annotated[str, typer.Option("--kind", help="corpus kind: stories, documents or "
                                               "advice")]

# --- the corpus audit --------------------------------------------------------------------------
PathsArg = Annotated[list[str], typer.Argument(
    help="JSONL / JSONL.gz / Parquet / text files, or hf:<dataset>[:<config>]")]
FieldOpt = Annotated[str, typer.Option(help="the text field (JSONL, Parquet, HF)")]
SplitOpt = Annotated[str, typer.Option(help="split of an hf: dataset")]
TermsOpt = Annotated[Path | None, typer.Option(help="YAML of AI-mention terms")]
FirstPassOpt = Annotated[str, typer.Option(
    help="both (keywords + detector), detector (finds AIs no keyword names) or keywords")]
MaxDocsOpt = Annotated[int | None, typer.Option(help="stop after N documents")]
OutOpt = Annotated[Path | None, typer.Option(help="output dir (default runs/<name>/audit)")]


def cli_config(
    config: Path | None,
    generator: str | None = None,
    judge: str | None = None,
    target: str | None = None,
    name: str | None = None,
    **extra: Any,
) -> ParablesConfig:
    """The config file (or the defaults) with the options given on the command line on top;
    `extra` maps dotted config fields to option values (None: not given, the file's value
    stays)."""
    overrides = {
        "models.generator": generator,
        "models.judge": judge,
        "models.target": target,
        "name": name,
        **extra,
    }
    return load_config(config, overrides)


def with_preset(command: Callable[..., None], doc: str, **preset: Any) -> Callable[..., None]:
    """`command` with the options in `preset` fixed (they leave its command line); `doc` is the
    new command's help. Typer reads a command's options from its signature, and this one's is
    `command`'s without the preset ones: every other option is `command`'s own declaration."""
    signature = inspect.signature(command, eval_str=True)

    def preset_command(**options: Any) -> None:
        command(**preset, **options)

    kept = [p for name, p in signature.parameters.items() if name not in preset]
    preset_command.__signature__ = signature.replace(parameters=kept)  # type: ignore[attr-defined]
    preset_command.__doc__ = doc
    return preset_command
