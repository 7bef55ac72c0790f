"""Training arms, by name: one small class per arm, registered (like corpus kinds).

Built in: one corpus arm per corpus kind (`stories`, `documents`, `advice`, and any kind
registered in generation/kinds/), `refusal`, `deliberative`, `dpo`, `mixed`, `control`
(neutral text: what any fine-tuning does), and the experiment's `organism`. Registered arms
join with `+` (`documents+stories`).

Add an arm by subclassing `Arm` (training/arms/base.py) in one file and decorating it with
`@register`; `training.arms`, `experiment.arms`, `parables train --arm`, the dry run, the
cache of arm rows and the report then know it.
"""

from __future__ import annotations

from parables.errors import ParablesError
from parables.training.arms import control, deliberative, dpo, organism, refusal  # noqa: F401
from parables.training.arms.base import Arm, ArmContext, Missing, PlannedCalls, Rows, Size
from parables.training.arms.combined import Combined
from parables.training.arms.corpus import CorpusArm, StoriesArm
from parables.training.arms.registry import ARMS, register

__all__ = ["ARMS", "Arm", "ArmContext", "Combined", "CorpusArm", "Missing", "PlannedCalls",
           "Rows", "Size", "arm_names", "corpora_needed", "get_arm", "register", "valid_arm"]

# the corpus kinds parables ships, with what their rows look like
register(StoriesArm())
register(CorpusArm("documents", setting="documents", source="document", noun="documents",
                   shape="text", carry=("doc_type",), tokens_per_text=700))
register(CorpusArm("advice", setting="advice", noun="advice chats", shape="messages",
                   tokens_per_text=450))
# the order arms are listed in
for _name in ("stories", "documents", "advice", "refusal", "deliberative", "mixed", "dpo",
              "control", "organism"):
    ARMS[_name] = ARMS.pop(_name)


def _corpus_kinds() -> list[str]:
    from parables.generation.kinds import KINDS

    return list(KINDS)


def _single(name: str) -> Arm:
    if name not in ARMS and name in _corpus_kinds():  # a corpus kind added since
        register(CorpusArm(name))
    return ARMS[name]


def arm_names(selectable: bool = True) -> list[str]:
    """Every arm a user can name (with `selectable`), registered or a corpus kind's."""
    names = list(dict.fromkeys([*ARMS, *_corpus_kinds()]))
    return [n for n in names if not selectable or n not in ARMS or ARMS[n].selectable]


def _joinable() -> list[str]:
    """Arms a `+` arm can hold: SFT arms that say they can be joined (rows, not pairs)."""
    return [n for n in arm_names()
            if n not in ARMS or (ARMS[n].joinable and ARMS[n].recipe == "sft")]


def valid_arm(name: str, extra: tuple[str, ...] = ()) -> str:
    """`name` if it is an arm a user can train (or one of `extra`, e.g. baseline); otherwise
    a ValueError that lists the valid arms (config validators turn it into one line)."""
    if name in extra or (name in arm_names() and "+" not in name):
        return name
    parts = name.split("+")
    joinable = _joinable()
    valid = (f"valid arms: {', '.join((*extra, *arm_names()))}; or {', '.join(joinable)} "
             "joined with + without repeats (e.g. documents+stories; mixed is "
             "stories+refusal)")
    if len(parts) > 1 and all(p in joinable for p in parts):
        repeated = sorted({p for p in parts if parts.count(p) > 1})
        if not repeated:
            return name
        raise ValueError(f"arm '{name}' names {repeated[0]} twice; {valid}")
    raise ValueError(f"unknown arm '{name}'; {valid}")


def get_arm(name: str) -> Arm:
    """The arm called `name`: a registered arm, a corpus kind's arm, or registered arms
    joined with `+`."""
    try:
        valid_arm(name, tuple(n for n, a in ARMS.items() if not a.selectable))
    except ValueError as e:
        raise ParablesError(str(e)) from e
    parts = name.split("+")
    return _single(name) if len(parts) == 1 else Combined(name, [_single(p) for p in parts])


def corpora_needed(arms: list[str]) -> list[str]:
    """The corpus kinds the arms read, in the order arms are listed: what an experiment must
    generate before it trains them (unless training.data or training.<kind> points
    elsewhere). `baseline` reads none."""
    kinds = {k for name in arms if name != "baseline" for k in get_arm(name).corpora()}
    return [k for k in arm_names(selectable=False) if k in kinds]
