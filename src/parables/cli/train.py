"""`parables train` (fine-tune the target on each arm) and `parables accelerate-config` (the
shipped configs for several GPUs)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

import parables.cli.render as render
from parables.cli.options import ConfigOpt, GeneratorOpt, NameOpt, cli_config
from parables.cli.render import console
from parables.run import RunDir

__all__ = ["accelerate_config_cmd", "train_cmd"]


def train_cmd(
    arm: Annotated[list[str] | None, typer.Option(
        "--arm", help="stories, documents, advice, refusal, deliberative, mixed, dpo, control, "
        "or parts joined with + (e.g. documents+stories); repeat for several")] = None,
    model: Annotated[str | None, typer.Option(
        "--model", "--target", help="base model: parables/smollm2-135m, hf/<id or dir>")] = None,
    method: Annotated[str | None, typer.Option(help="lora or full")] = None,
    epochs: Annotated[float | None, typer.Option(help="passes over the data")] = None,
    max_steps: Annotated[int | None, typer.Option(help="stop after N steps")] = None,
    learning_rate: Annotated[float | None, typer.Option("--lr", help="peak rate")] = None,
    batch_size: Annotated[int | None, typer.Option(help="sequences per step")] = None,
    match_tokens: Annotated[str | None, typer.Option(
        help="equal trained tokens per arm: off, smallest (cut to the smallest arm) or budget "
             "(every arm to --token-budget; smaller arms repeat rows)")] = None,
    token_budget: Annotated[int | None, typer.Option(help="cap each arm's tokens")] = None,
    data: Annotated[Path | None, typer.Option(help="your own JSONL for the arm")] = None,
    story_format: Annotated[str | None, typer.Option(help="document or chat")] = None,
    force: Annotated[bool, typer.Option(help="replace an arm trained with another recipe")
                     ] = False,
    config: ConfigOpt = None,
    generator: GeneratorOpt = None,
    name: NameOpt = None,
) -> None:
    """Fine-tune the target on each arm (TRL + PEFT); resumes from the last checkpoint."""
    from parables.models.ref import ModelRef
    from parables.training.trainer import train

    cfg = cli_config(config, generator, None, model, name, **{
        "training.arms": arm, "training.method": method, "training.epochs": epochs,
        "training.max_steps": max_steps, "training.learning_rate": learning_rate,
        "training.batch_size": batch_size, "training.match_tokens": match_tokens,
        "training.token_budget": token_budget,
        "training.data": str(data) if data else None, "training.story_format": story_format})
    with RunDir.of(cfg).stage("train") as st:
        results = train(cfg, force=force, ledger=st.usage)
    if not results:
        return  # a secondary process under `accelerate launch`; the main one reports
    render.arms(results)
    render.usage(st.usage)
    for a, m in results.items():
        console.print(f"{a}: parables eval --model {ModelRef.weights(Path(m.merged))}",
                      highlight=False, soft_wrap=True)


def accelerate_config_cmd(
    config: Annotated[str, typer.Argument(help="ddp, fsdp or zero3")],
) -> None:
    """Print the path of a shipped `accelerate` config, for several GPUs:
    accelerate launch --config_file $(parables accelerate-config fsdp) -m parables train ..."""
    from parables.training.accelerate import accelerate_config

    print(accelerate_config(config))
