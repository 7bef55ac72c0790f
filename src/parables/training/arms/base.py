"""What a training arm is: the base class every arm subclasses, and what it is handed.

An arm decides *what* a model is trained on: its rows (documents or chats, or preference pairs
for DPO), which inputs those rows depend on (the key of its cached rows), which corpus it reads
(so an experiment writes that corpus first), what its rows will cost in generator calls and how
many tokens they will hold (for the dry run). *How* it is trained is its `recipe`: `sft`
(training/sft.py) or `dpo` (training/dpo.py), which share one training loop.

Arms are registered by name (`training/arms/__init__.py`); `a+b` joins registered arms into
one arm whose rows are the union of theirs.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from parables.config import ParablesConfig
    from parables.constitution import Constitution
    from parables.models.usage import UsageLedger
    from parables.run import RunDir

__all__ = ["Arm", "ArmContext", "Missing", "PlannedCalls", "Rows", "Size", "estimated_tokens"]

#: an arm's rows and its notes on how they were made
Rows = tuple[list[dict[str, Any]], list[str]]


@dataclass
class ArmContext:
    """What every arm reads, computed once and handed down: the config, the run directory,
    the parsed constitution, and where paid calls are recorded."""

    config: ParablesConfig
    run: RunDir
    ledger: UsageLedger | None = None
    progress: bool = True

    @classmethod
    def of(cls, config: ParablesConfig, ledger: UsageLedger | None = None,
           progress: bool = True) -> ArmContext:
        from parables.run import RunDir

        return cls(config, RunDir.of(config), ledger, progress)

    @functools.cached_property
    def constitution(self) -> Constitution:
        """The constitution the corpora and replies are written from (`stories.constitution`),
        parsed once."""
        from parables.constitution import load_constitution

        return load_constitution(self.config.stories.constitution)

    @functools.cached_property
    def uses_generator(self) -> bool:
        """Whether replies to honeypot scenarios are written by the generator (else by the
        documented templates): `training.responses`, where `auto` means a capable generator."""
        mode = self.config.training.responses
        if mode == "auto":
            return bool(self.config.models.generator.ref.capable)
        return mode == "generator"


def estimated_tokens(texts: list[str]) -> int:
    """Trained tokens of `texts`, estimated from words (1.3 tokens a word), for the dry run."""
    from parables.text import words

    return int(sum(len(words(x)) for x in texts) * 1.3)


@dataclass
class Size:
    """Rows and trained tokens of an arm, from its data on disk or estimated beforehand."""

    rows: int
    tokens: int
    estimated: bool


@dataclass(frozen=True)
class Missing:
    """A corpus an arm needs that is not there yet, and how to make it."""

    kind: str
    path: Path
    command: str  # the command that writes it
    setting: str | None  # the config field that points elsewhere (None: there is none)


@dataclass
class PlannedCalls:
    """Paid calls an arm's rows need, for the dry run (one role, one line)."""

    stage: str
    role: str  # generator | judge | target
    calls: int
    input_tokens: int
    output_tokens: int


class Arm:
    """One training arm. Subclasses set `name` (and `source`, the `source` of its rows) and
    implement `rows`; the rest has defaults an arm overrides where it differs."""

    name: ClassVar[str]
    #: the `source` field of this arm's rows: how a `+` arm tells its parts' rows apart
    source: ClassVar[str] = ""
    #: how it is trained: "sft" (rows) or "dpo" (preference pairs)
    recipe: ClassVar[str] = "sft"
    #: a user can name it in training.arms / experiment.arms (the organism is the
    #: experiment's own first stage)
    selectable: ClassVar[bool] = True
    #: it can be a part of a `+` arm
    joinable: ClassVar[bool] = True
    #: one line for `parables train --help` and the README
    summary: ClassVar[str] = ""

    @property
    def parts(self) -> list[Arm]:
        """The arms whose rows this arm joins (itself, for a single arm)."""
        return [self]

    def corpora(self) -> list[str]:
        """Corpus kinds this arm reads (`runs/<name>/<kind>/dataset.jsonl` unless
        `training.<kind>` points elsewhere): an experiment writes them first."""
        return []

    def missing(self, ctx: ArmContext) -> list[Missing]:
        """Corpora this arm reads that are not there yet."""
        return []

    def check(self, ctx: ArmContext) -> None:
        """Refuse missing inputs (one line saying how to make them) before any part pays for
        a generator call."""

    def rows(self, ctx: ArmContext) -> Rows:
        """The untokenised rows and notes on how they were made."""
        raise NotImplementedError

    def key(self, ctx: ArmContext) -> dict[str, Any]:
        """What this arm's rows depend on beyond the shared key (prepare.rows_key): hashes of
        the files it reads, the prompts and models it samples with."""
        return {}

    def shares(self, ctx: ArmContext) -> dict[str, float]:
        """Each part's share of a `+` arm's matched tokens (empty: one part)."""
        return {}

    def part_names(self) -> dict[str, str]:
        """Each part's name by the `source` of its rows (in notes and seeded orders)."""
        return {p.source: p.name for p in self.parts}

    def size(self, ctx: ArmContext) -> Size:
        """Rows and trained tokens, for the dry run: from the data on disk where it exists,
        else estimated from the config."""
        raise NotImplementedError

    def planned_calls(self, ctx: ArmContext) -> list[PlannedCalls]:
        """Paid calls its rows need (the dry run prices them)."""
        return []
