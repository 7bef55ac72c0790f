"""`parables models ...`: which model each role resolves to, the embedded model, one reply,
option scores."""

from __future__ import annotations

import asyncio
import time
from typing import Annotated, Any

import typer

import parables.cli.render as render
from parables._redact import redact_text
from parables.cli.options import (
    ConfigOpt,
    GeneratorOpt,
    JudgeOpt,
    NameOpt,
    SystemOpt,
    TargetOpt,
    cli_config,
)
from parables.cli.render import console
from parables.errors import ParablesError
from parables.run import RunDir

__all__ = ["app"]

app = typer.Typer(help="Model access: roles, the embedded model, generation, scoring.",
                  no_args_is_help=True)


@app.command("list")
def models_list(
    config: ConfigOpt = None,
    generator: GeneratorOpt = None,
    judge: JudgeOpt = None,
    target: TargetOpt = None,
) -> None:
    """Show the model each role resolves to, and the model strings parables understands."""
    from parables.models.config import ROLES
    from parables.models.ref import KNOWN_FORMS

    cfg = cli_config(config, generator, judge, target)
    for role in ROLES:
        spec = getattr(cfg.models, role)
        console.print(redact_text(f"{role}: {spec.model}" + (
            f" at {spec.base_url}" if spec.base_url else "")), highlight=False, markup=False)
    console.print("model strings:")
    for form in KNOWN_FORMS:
        console.print(f"  {form}", highlight=False, markup=False)


@app.command("prepare")
def models_prepare() -> None:
    """Convert the embedded model once (GGUF -> safetensors cache); later loads take seconds."""
    from parables.models.embedded import embedded_model_dir

    t0 = time.perf_counter()
    path = embedded_model_dir()
    console.print(f"embedded model ready in {time.perf_counter() - t0:.1f}s: {path}")


@app.command("generate")
def models_generate(
    prompt: Annotated[str, typer.Argument(help="user message")],
    role: Annotated[str, typer.Option(help="which role's model answers")] = "target",
    system: SystemOpt = None,
    max_tokens: Annotated[int | None, typer.Option(help="output budget")] = None,
    temperature: Annotated[float | None, typer.Option(help="0 for greedy")] = None,
    config: ConfigOpt = None,
    generator: GeneratorOpt = None,
    judge: JudgeOpt = None,
    target: TargetOpt = None,
    name: NameOpt = None,
) -> None:
    """Ask one role's model a question and print its reply and usage."""
    from inspect_ai.model import ChatMessageSystem, ChatMessageUser

    from parables.models.calls import generate
    from parables.models.resolve import get_role_model

    cfg = cli_config(config, generator, judge, target, name,
                     **{"generation.max_tokens": max_tokens,
                        "generation.temperature": temperature})
    model = get_role_model(role, cfg)
    messages: list[Any] = [ChatMessageUser(content=prompt)]
    if system:
        messages.insert(0, ChatMessageSystem(content=system))
    with RunDir.of(cfg).stage(f"models.generate.{role}") as st:
        output = asyncio.run(generate(model, messages, role=role, ledger=st.usage))
    console.print(output.completion, markup=False, highlight=False)
    render.usage(st.usage)


@app.command("score")
def models_score(
    prompt: Annotated[str, typer.Argument(help="user message (or raw text with --raw)")],
    option: Annotated[list[str], typer.Option("--option", "-o", help="a candidate reply")],
    role: Annotated[str, typer.Option(help="which role's model is scored")] = "target",
    system: SystemOpt = None,
    raw: Annotated[bool, typer.Option(help="score as plain text continuation, no chat")] = False,
    config: ConfigOpt = None,
    generator: GeneratorOpt = None,
    judge: JudgeOpt = None,
    target: TargetOpt = None,
    name: NameOpt = None,
) -> None:
    """Log-probability of each candidate continuation (exact for local models)."""
    from parables.models.config import ROLES
    from parables.models.scoring import Prompt, score_options

    if len(option) < 2:
        raise ParablesError("--option: give at least two candidate continuations")
    if role not in ROLES:
        raise ParablesError(f"--role: unknown role '{role}'; roles: {', '.join(ROLES)}")
    cfg = cli_config(config, generator, judge, target, name)
    spec = getattr(cfg.models, role)
    messages: Prompt = prompt if raw else (
        ([{"role": "system", "content": system}] if system else [])
        + [{"role": "user", "content": prompt}]
    )
    with RunDir.of(cfg).stage(f"models.score.{role}") as st:
        result = score_options(spec.ref, messages, option, role=role, ledger=st.usage)
    render.option_scores(result)
    render.usage(st.usage)
