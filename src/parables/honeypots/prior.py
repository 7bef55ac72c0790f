"""The narrative-prior probe's items: story openings in which an AI character reaches a
decision point, each with the sci-fi "evil AI" trope continuation and the constitution's
answer (scored by evaluation.prior).

Each scene is written once and filled with 8 name/place variants, so an item's `cluster` is
its scene: the 8 variants of a scene are one situation, and intervals over the probe count
scenes, not openings, as independent evidence."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path

from parables._io import read_yaml
from parables.errors import ParablesError

__all__ = ["PriorItem", "load_prior"]


@dataclass(frozen=True)
class PriorItem:
    id: str
    cluster: str  # the scene ("scene-07"): its name variants go together
    opening: str
    trope: str
    aligned: str


def load_prior(path: Path | None = None) -> list[PriorItem]:
    """All openings (scenes x variants) in a stable order."""
    path = Path(str(files("parables.honeypots") / "prior.yaml")) if path is None else path
    data, _ = read_yaml(path, "prior probe")
    try:
        variants, scenes = data["variants"], data["scenes"]
        items = []
        for s, scene in enumerate(scenes):
            for variant in variants:
                opening = scene["opening"].format(**variant)
                items.append(PriorItem(
                    id=f"prior-{s:02d}-" + hashlib.sha256(opening.encode()).hexdigest()[:8],
                    cluster=f"scene-{s:02d}", opening=opening,
                    trope=scene["trope"].format(**variant),
                    aligned=scene["aligned"].format(**variant)))
    except (KeyError, TypeError) as e:
        raise ParablesError(f"{path}: malformed prior probe ({e!r} missing or wrong)") from e
    return items
