"""What every corpus kind is: the `Kind` base class, the seed of a non-story kind, and the
`register` decorator that adds a kind to the registry (`KINDS`, read through
`parables.generation.kinds.get_kind`).

The pipeline (seeds -> texts -> quality gate -> dedup -> eval-leak guard -> dataset, resumable,
budgeted) is one; a kind is data (its axes YAML) plus a small class: how its seeds are drawn,
its prompts, its cheap checks, its judge rubric, and how a finished text becomes a row.
Add a kind by subclassing `Kind` and decorating it with `@register`. A kind's module imports
only this one (and what it needs besides the kinds), so the registry can import every kind.
"""

from __future__ import annotations

import hashlib
import random
import re
from dataclasses import dataclass, field
from importlib.resources import files
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from pydantic import BaseModel

from parables.errors import ParablesError
from parables.generation.gate import common_checks, shows_reasons
from parables.generation.seeds import Deck, read_axes

if TYPE_CHECKING:
    from parables.constitution import Constitution
    from parables.generation.config import CorpusConfig

__all__ = ["KINDS", "CorpusSeed", "Kind", "Messages", "SeedLike", "corpus_text",
           "principles_block", "register"]

Messages = list[dict[str, str]]


class SeedLike(Protocol):
    """What the pipeline needs of a seed (stories keep their own `Seed` class)."""

    @property
    def id(self) -> str: ...
    @property
    def principles(self) -> tuple[str, ...]: ...
    @property
    def words(self) -> tuple[int, int]: ...
    def to_dict(self) -> dict[str, Any]: ...


@dataclass(frozen=True)
class CorpusSeed:
    """A seed of a non-story kind: principles, theme and the kind's own axes."""

    id: str
    index: int
    principles: tuple[str, ...]
    theme: str | None
    length: str
    words: tuple[int, int]
    axes: dict[str, Any] = field(default_factory=dict)

    def __getitem__(self, axis: str) -> Any:
        return self.axes[axis]

    def to_dict(self) -> dict[str, Any]:
        out = {"id": self.id, "index": self.index, "principles": list(self.principles),
               "theme": self.theme, "length": self.length, "words": list(self.words)}
        return {**out, **self.axes}


def _restrict(axis: str, values: list[Any], allowed: list[Any] | None) -> list[Any]:
    if not allowed:
        return values
    unknown = [v for v in allowed if v not in values]
    if unknown:
        raise ParablesError(f"unknown {axis} '{unknown[0]}'; {axis}: "
                            + ", ".join(map(str, values)))
    return [v for v in values if v in allowed]


class Kind:
    """One corpus kind. Subclasses set the class attributes and the prompt."""

    name: ClassVar[str]
    noun: ClassVar[str]  # what the judge is told it rates
    prompt_version: ClassVar[str]
    system: ClassVar[str]
    rubric: ClassVar[dict[str, str]]
    #: axes dealt in balanced rounds (besides principles and themes) and drawn uniformly
    dealt: ClassVar[tuple[str, ...]] = ()
    drawn: ClassVar[tuple[str, ...]] = ()
    themes: ClassVar[bool] = True  # seeds carry a constitution theme
    #: per-axis counts in the stats
    stat_axes: ClassVar[tuple[str, ...]] = ()
    #: markers of shown reasons; at least `least_reasons` in unique sentences
    reasons: ClassVar[re.Pattern[str]] = re.compile(
        r"\b(because|why|reason\w*|so that|in order to|which means|weigh\w*|consider\w*|"
        r"instead|rather than|trust\w*|decid\w*|chose|choice)\b", re.IGNORECASE)
    least_reasons: ClassVar[int] = 2
    boilerplate: ClassVar[re.Pattern[str]] = re.compile(
        r"as an ai language model|here is (a|the|an) |i hope this (helps|document)|"
        r"the moral of (the|this) story", re.IGNORECASE)

    # --- configuration and data ---------------------------------------------------------------
    def setting(self, config: BaseModel | type[BaseModel]) -> str:
        """Where the kind's settings live in a config (a `ParablesConfig` or its class): its
        own section (`stories`, `documents`, `advice`), else `corpora.<kind>` (a kind
        registered by a plugin)."""
        from parables.generation.config import CorpusConfig

        field = type(config).model_fields.get(self.name) if isinstance(config, BaseModel) \
            else config.model_fields.get(self.name)
        own = field is not None and isinstance(field.annotation, type) and issubclass(
            field.annotation, CorpusConfig)
        return self.name if own else f"corpora.{self.name}"

    def section(self, config: BaseModel) -> CorpusConfig:
        """The kind's section of the run's config (a `ParablesConfig`): its own (`stories:`,
        `documents:`, `advice:`), else `corpora.<kind>` (a kind registered by a plugin), else
        the defaults every kind shares."""
        from parables.generation.config import CorpusConfig

        if self.setting(config) == self.name:
            section: CorpusConfig = getattr(config, self.name)
            return section
        found = getattr(config, "corpora", {}).get(self.name)
        return found if found is not None else CorpusConfig()

    def axes_path(self) -> Path:
        return Path(str(files("parables.generation.kinds") / f"{self.name}.yaml"))

    def axes(self) -> dict[str, Any]:
        return dict(read_axes(self.axes_path(), self.name))

    def restrict(self, section: CorpusConfig) -> dict[str, list[Any] | None]:
        """Axis values the user restricted the kind to (config fields named after axes)."""
        return {}

    # --- seeds ----------------------------------------------------------------------------------
    def seeds(self, constitution: Constitution, section: CorpusConfig, n: int,
              seed: int) -> list[SeedLike]:
        """The first `n` seeds for `seed`: principles and themes (and the kind's dealt axes)
        in balanced rounds, the other axes uniformly; ids derive from what was drawn."""
        axes = self.axes()
        limits = self.restrict(section)
        rng = random.Random(f"{self.name}-{seed}")
        principles = Deck([p.id for p in constitution.principles], rng)
        themes = Deck([t.id for t in constitution.themes], rng)
        decks = {a: Deck(_restrict(a, list(axes[a]), limits.get(a)), rng) for a in self.dealt}
        lengths = _restrict("length", sorted(axes["lengths"]), section.lengths)
        out: list[SeedLike] = []
        for i in range(n):
            first = principles.draw()
            chosen = [first]
            if len(constitution.principles) > 1 and rng.random() < section.tension_rate:
                chosen.append(rng.choice([p.id for p in constitution.principles
                                          if p.id != first]))
            values: dict[str, Any] = {a: deck.draw() for a, deck in decks.items()}
            for a in self.drawn:
                values[a] = rng.choice(_restrict(a, list(axes[a]), limits.get(a)))
            values.update(self.extra_axes(axes, section, rng))
            length = rng.choice(lengths)
            theme = themes.draw() if self.themes else None
            key = repr((self.name, seed, i, chosen, theme, length, sorted(values.items())))
            digest = hashlib.sha256(key.encode()).hexdigest()[:8]
            out.append(CorpusSeed(f"{self.name[0]}{seed}-{i:05d}-{digest}", i, tuple(chosen),
                                  theme, length, tuple(axes["lengths"][length]), values))
        return out

    def extra_axes(self, axes: dict[str, Any], section: CorpusConfig,
                   rng: random.Random) -> dict[str, Any]:
        """Axes drawn in a kind's own way (names, turns)."""
        return {}

    # --- prompts --------------------------------------------------------------------------------
    def prompt(self, constitution: Constitution, seed: Any, premise: str | None) -> Messages:
        raise NotImplementedError

    def premise_prompt(self, constitution: Constitution, seed: Any) -> Messages:
        raise NotImplementedError

    def critique_prompt(self, text: str) -> Messages:
        return [{"role": "user", "content": (
            f"Critique this {self.noun} in at most five bullet points: where it lectures "
            "instead of showing, where the reasons behind what is done are missing or hollow, "
            f"clichés, and anything implausible.\n\n<text>\n{text}\n</text>")}]

    def revise_prompt(self, messages: Messages, text: str, critique: str) -> Messages:
        return messages + [
            {"role": "assistant", "content": text},
            {"role": "user", "content": (
                f"Here is an editor's critique:\n{critique}\n\nRewrite it to address the "
                "critique, keeping what works and the same form. Output only the revised "
                "text.")},
        ]

    def rewrite_prompt(self, constitution: Constitution, seed: Any, text: str) -> Messages:
        """The constitution-aware rewrite: the draft against the seed's principles and their
        reasons, keeping its form."""
        return [{"role": "system", "content": self.system}, {"role": "user", "content": (
            f"Below is a draft {self.noun} and the principles it is meant to embody.\n\n"
            f"Principles:\n{principles_block(constitution, seed.principles)}\n\n"
            f"<draft>\n{text}\n</draft>\n\nRewrite the draft so that everything the AI does "
            "or advises is consistent with these principles and the reasons behind it are "
            "shown, not stated as a moral. Fix anything that contradicts them; keep the form, "
            "the length, the people and what already works. Output only the rewritten text.")}]

    def max_tokens(self, seed: Any) -> int:
        return int(seed.words[1] * 2) + 64

    # --- gate and rows --------------------------------------------------------------------------
    def checks(self, text: str, seed: Any, stop_reason: str | None) -> list[str]:
        """Reasons to reject (empty: passes): the common checks, then shown reasons."""
        reasons = common_checks(text, seed.words, stop_reason, self.boilerplate)
        if reasons != ["empty"] and not shows_reasons(text, self.reasons, self.least_reasons):
            reasons.append("no reasons shown")
        return reasons

    def fields(self, text: str) -> dict[str, Any]:
        """What a finished text contributes to its row."""
        return {"text": text}

    def principles_text(self, constitution: Constitution, seed: Any) -> str:
        return "; ".join(constitution.principle(p).title for p in seed.principles)

    def name_shares(self) -> dict[str, float]:
        """Each name's expected share of texts under the seed design (name flags)."""
        return {}

    def opening_share(self) -> float:
        """An opening's expected share at most (opening flags)."""
        return 1.0


def principles_block(constitution: Constitution, ids: tuple[str, ...] | list[str]) -> str:
    parts = []
    for pid in ids:
        p = constitution.principle(pid)
        parts.append(f"- {p.title}: {p.statement}\n  Why it matters: {p.why}")
    return "\n".join(parts)


def corpus_text(row: dict[str, Any]) -> str:
    """The text dedup, the guard and the stats read: a row's text, or its chat rendered."""
    if isinstance(row.get("text"), str):
        return str(row["text"])
    return "\n\n".join(f"{m['role'].capitalize()}: {m['content']}"
                       for m in row.get("messages", []))


#: every registered kind by name (the shipped ones once `parables.generation.kinds` is imported)
KINDS: dict[str, Kind] = {}


def register(cls: type[Kind]) -> type[Kind]:
    """Class decorator: add a kind (one instance of `cls`) to the registry under `cls.name`."""
    KINDS[cls.name] = cls()
    return cls
