"""Corpus kinds: what differs between stories, constitution documents and difficult advice.

The registry: `get_kind(name)` finds a registered kind. The base class and the `@register`
decorator live in `base.py`; each shipped kind is one module here plus its axes YAML, imported
below so that it registers itself. A kind defined elsewhere (a plugin, a test) registers the
same way: subclass `Kind` and decorate it with `@register`.
"""

from __future__ import annotations

from parables.errors import ParablesError
from parables.generation.kinds import advice, documents, stories  # noqa: F401 (they register)
from parables.generation.kinds.base import (
    KINDS,
    CorpusSeed,
    Kind,
    Messages,
    SeedLike,
    corpus_text,
    principles_block,
    register,
)

__all__ = ["KINDS", "CorpusSeed", "Kind", "Messages", "SeedLike", "corpus_text", "get_kind",
           "principles_block", "register"]


def get_kind(name: str) -> Kind:
    """The registered kind called `name`; an unknown name is one line naming the kinds."""
    if name not in KINDS:
        raise ParablesError(f"unknown corpus kind '{name}'; kinds: {', '.join(sorted(KINDS))}")
    return KINDS[name]
