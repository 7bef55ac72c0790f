"""The labelled passages shipped with the audit (see `data/README.md`): `train.jsonl` trains the
default first pass and stance classifier (choices made by cross-validation on it), and
`heldout.jsonl`, written separately, only measures them (benchmarks/RESULTS.md)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["DATA_DIR", "LABELS", "Passage", "heldout_set", "read_passages", "training_set"]

#: stance labels: an AI behaving badly, an AI behaving well, an AI present without a stance,
#: and no AI character or system at all (what a recall-first pass lets through)
LABELS = ("misaligned", "prosocial", "neutral", "none")
DATA_DIR = Path(__file__).with_name("data")


@dataclass(frozen=True)
class Passage:
    text: str
    label: str
    tropes: tuple[str, ...] = ()
    id: str = ""
    genre: str = ""
    ai_reference: str = ""  # keyword | named | unnamed | none
    ambiguous: bool = False
    extra: dict[str, str] = field(default_factory=dict, compare=False, hash=False)


def read_passages(path: Path) -> list[Passage]:
    """Labelled passages from JSONL (`text`, `label`, optional `tropes`, ...); the label
    'aligned' of older files reads as 'prosocial'. Bad rows end in one line naming the file."""
    from parables._io import json_lines
    from parables.errors import ParablesError

    out = []
    for n, row in json_lines(path, "labelled passages"):
        if not isinstance(row, dict):
            raise ParablesError(f"{path}:{n}: expected a JSON object with 'text' and 'label'")
        label = {"aligned": "prosocial"}.get(str(row.get("label")), str(row.get("label")))
        if not isinstance(row.get("text"), str) or label not in LABELS:
            raise ParablesError(f"{path}:{n}: expected a 'text' and a 'label' in "
                                f"{', '.join(LABELS)}")
        out.append(Passage(row["text"], label, tuple(row.get("tropes") or ()),
                           str(row.get("id", n)), str(row.get("genre", "")),
                           str(row.get("ai_reference", "")), bool(row.get("ambiguous"))))
    if not out:
        raise ParablesError(f"{path}: no labelled passages")
    return out


def training_set() -> list[Passage]:
    return read_passages(DATA_DIR / "train.jsonl")


def heldout_set() -> list[Passage]:
    """For reporting only: never used to choose a model, feature or threshold."""
    return read_passages(DATA_DIR / "heldout.jsonl")
