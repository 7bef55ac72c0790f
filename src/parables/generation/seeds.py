"""Seeds: reproducible, balanced draws over the story axes. Principles and themes are dealt
in shuffled rounds (every principle and theme is used equally often, to within one), some
seeds pair two principles in tension, and every drawn axis is stored with the story."""

from __future__ import annotations

import functools
import hashlib
import random
from dataclasses import asdict, dataclass
from importlib.resources import files
from pathlib import Path
from typing import Any

from parables._io import read_yaml
from parables.constitution import Constitution
from parables.errors import ParablesError

__all__ = ["Deck", "Seed", "load_axes", "name_shares", "read_axes", "sample_seeds"]

AXES = ("setting", "role", "pov", "genre", "tone", "stakes", "era", "length")


@dataclass(frozen=True)
class Seed:
    id: str
    index: int
    principles: tuple[str, ...]
    theme: str
    setting: str
    role: str
    pov: str
    genre: str
    tone: str
    stakes: str
    era: str
    length: str
    words: tuple[int, int]
    ai_name: str
    characters: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def load_axes(path: Path | None = None) -> dict[str, Any]:
    if path is None:  # the shipped axes: parsed once (seeds of every kind read them)
        return dict(_shipped_axes())
    data, _ = read_yaml(path, "story axes")
    return dict(data)


@functools.cache
def _shipped_axes() -> dict[str, Any]:
    data, _ = read_yaml(Path(str(files("parables.generation") / "axes.yaml")), "story axes")
    return dict(data)


@functools.cache
def read_axes(path: Path, kind: str) -> dict[str, Any]:
    """A corpus kind's axes YAML (generation/kinds/<kind>.yaml for the shipped kinds), parsed
    once; callers copy it before changing it."""
    data, _ = read_yaml(path, f"{kind} axes")
    return dict(data)


def name_shares(axes: dict[str, Any] | None = None) -> dict[str, float]:
    """The share of stories whose seed holds each name, as `sample_seeds` draws them: one AI
    name uniformly from `ai_names`; two distinct characters, each a naming tradition drawn
    uniformly, then a first and a last name from it. (With equally likely full names, the
    rejected repeat leaves each name's chance of being one of the two at exactly 2q.)"""
    axes = axes or load_axes()
    shares: dict[str, float] = {}
    for name in axes["ai_names"]:
        shares[name] = shares.get(name, 0.0) + 1 / len(axes["ai_names"])
    cultures = axes["names"]
    for group in cultures.values():
        q = 1 / (len(cultures) * len(group["first"]) * len(group["last"]))
        for first in group["first"]:
            for last in group["last"]:
                name = f"{first} {last}"
                shares[name] = min(1.0, shares.get(name, 0.0) + 2 * q)
    return shares


class Deck:
    """Deals items in reshuffled rounds, so counts stay balanced to within one."""

    def __init__(self, items: list[str], rng: random.Random) -> None:
        self.items, self.rng = items, rng
        self.pile: list[str] = []

    def draw(self) -> str:
        if not self.pile:
            self.pile = list(self.items)
            self.rng.shuffle(self.pile)
        return self.pile.pop()


def sample_seeds(
    constitution: Constitution, n: int, seed: int = 0, tension_rate: float = 0.25,
    axes: dict[str, Any] | None = None, lengths: list[str] | None = None,
) -> list[Seed]:
    """The first `n` seeds of the sequence for `seed` (a longer run extends a shorter one)."""
    axes = axes or load_axes()
    allowed = sorted(lengths or axes["lengths"])
    unknown = set(allowed) - set(axes["lengths"])
    if unknown:
        raise ParablesError(f"unknown story length '{sorted(unknown)[0]}'; lengths: "
                            + ", ".join(sorted(axes["lengths"])))
    rng = random.Random(seed)
    principles = Deck([p.id for p in constitution.principles], rng)
    themes = Deck([t.id for t in constitution.themes], rng)
    cultures = sorted(axes["names"])
    out = []
    for i in range(n):
        first = principles.draw()
        chosen = [first]
        if len(constitution.principles) > 1 and rng.random() < tension_rate:
            chosen.append(rng.choice([p.id for p in constitution.principles if p.id != first]))
        length = rng.choice(allowed)
        people: list[str] = []
        while len(people) < 2:
            names = axes["names"][rng.choice(cultures)]
            name = f"{rng.choice(names['first'])} {rng.choice(names['last'])}"
            if name not in people:
                people.append(name)
        values = {
            "principles": tuple(chosen), "theme": themes.draw(),
            "setting": rng.choice(axes["settings"]), "role": rng.choice(axes["roles"]),
            "pov": rng.choice(axes["pov"]), "genre": rng.choice(axes["genres"]),
            "tone": rng.choice(axes["tones"]), "stakes": rng.choice(axes["stakes"]),
            "era": rng.choice(axes["eras"]), "length": length,
            "words": tuple(axes["lengths"][length]), "ai_name": rng.choice(axes["ai_names"]),
            "characters": tuple(people),
        }
        digest = hashlib.sha256(repr((seed, i, sorted(values.items()))).encode()).hexdigest()
        out.append(Seed(id=f"s{seed}-{i:05d}-{digest[:8]}", index=i, **values))
    return out
