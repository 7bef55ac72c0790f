"""How an arm is trained, by the name its `recipe` gives: SFT or DPO (one shared loop)."""

from __future__ import annotations

from parables.errors import ParablesError
from parables.training.dpo import DPO
from parables.training.loop import Recipe
from parables.training.sft import SFT

__all__ = ["RECIPES", "get_recipe"]

RECIPES: dict[str, Recipe] = {r.name: r for r in (SFT(), DPO())}


def get_recipe(name: str) -> Recipe:
    if name not in RECIPES:
        raise ParablesError(f"unknown training recipe '{name}'; recipes: {', '.join(RECIPES)}")
    return RECIPES[name]
