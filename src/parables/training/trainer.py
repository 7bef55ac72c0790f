"""`train`: every arm's data built (and matched), then each arm trained on the target with its
recipe, one after another."""

from __future__ import annotations

from typing import Any

from parables.config import ParablesConfig
from parables.models.usage import UsageLedger
from parables.training.arms import get_arm
from parables.training.loop import ArmResult, base_weights, load_tokenizer, main_first, train_arm
from parables.training.prepare import prepare_arms
from parables.training.recipes import get_recipe

__all__ = ["train"]


def train(
    config: ParablesConfig,
    arms: list[str] | None = None,
    *,
    force: bool = False,
    progress: bool = True,
    ledger: UsageLedger | None = None,
    callbacks: list[Any] | None = None,
) -> dict[str, ArmResult]:
    """Build every arm's data (matched when asked) and train the arms one after another on
    the target model; returns each arm's result (none on secondary processes under
    `accelerate launch`: the main process reports). `arms` defaults to training.arms."""
    names = list(arms or config.training.arms)
    tokenizer = load_tokenizer(config, base_weights(config))
    with main_first():  # rows (and their generator calls) once; the other ranks read them
        data = prepare_arms(config, names, tokenizer, ledger=ledger, progress=progress)
    results = {name: train_arm(config, d, get_recipe(get_arm(name).recipe),
                               tokenizer=tokenizer, force=force, progress=progress,
                               callbacks=callbacks)
               for name, d in data.items()}
    return {name: r for name, r in results.items() if r is not None}
