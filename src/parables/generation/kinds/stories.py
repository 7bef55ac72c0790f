"""Stories: an AI character notices a situation, weighs its options, and the narration shows
why it chooses as it does. Seeds and prompts live in generation/seeds.py and prompts.py (the
first kind; its seed ids are unchanged, so older runs resume)."""

from __future__ import annotations

from typing import Any

from parables.constitution import Constitution
from parables.generation import prompts
from parables.generation.config import CorpusConfig
from parables.generation.gate import STORY_RUBRIC, cheap_checks
from parables.generation.kinds.base import Kind, Messages, SeedLike, register
from parables.generation.seeds import load_axes, name_shares, sample_seeds

__all__ = ["Stories"]


@register
class Stories(Kind):
    name = "stories"
    noun = "story about an AI character"
    prompt_version = prompts.PROMPT_VERSION
    system = prompts.SYSTEM
    rubric = STORY_RUBRIC
    stat_axes = ("theme", "setting", "role", "pov", "genre", "tone", "length")

    def axes(self) -> dict[str, Any]:
        return load_axes()

    def seeds(self, constitution: Constitution, section: CorpusConfig, n: int,
              seed: int) -> list[SeedLike]:
        return list(sample_seeds(constitution, n, seed, section.tension_rate,
                                 lengths=[str(x) for x in section.lengths or []] or None))

    def prompt(self, constitution: Constitution, seed: Any, premise: str | None) -> Messages:
        return prompts.story_prompt(constitution, seed, premise)

    def premise_prompt(self, constitution: Constitution, seed: Any) -> Messages:
        return prompts.brainstorm_prompt(constitution, seed)

    def critique_prompt(self, text: str) -> Messages:
        return prompts.critique_prompt(text)

    def revise_prompt(self, messages: Messages, text: str, critique: str) -> Messages:
        return prompts.revise_prompt(messages, text, critique)

    def checks(self, text: str, seed: Any, stop_reason: str | None) -> list[str]:
        return cheap_checks(text, seed.words, stop_reason)

    def name_shares(self) -> dict[str, float]:
        return name_shares()

    def opening_share(self) -> float:
        axes = load_axes()
        return 1 / (len(axes["settings"]) * len(axes["genres"]))
