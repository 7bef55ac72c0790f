"""One definition of a word, shared by every rule that compares texts: the eval-leak guard,
dedup shingles and the diversity statistics. Two rules that split words differently would
disagree about whether two texts share a passage."""

from __future__ import annotations

import re
from collections.abc import Iterator

__all__ = ["TOKENS_PER_WORD", "ngrams", "words"]

#: English prose in the BPE tokenizers parables meets: about 1.35 tokens per word (used where
#: a plan must estimate tokens before any tokenizer has run)
TOKENS_PER_WORD = 1.35

_WORD = re.compile(r"\w+")


def words(text: str) -> list[str]:
    """Lower-cased word tokens."""
    return _WORD.findall(text.lower())


def ngrams(text: str | list[str], n: int) -> Iterator[tuple[str, ...]]:
    """Word n-grams of a text (or of its already split words)."""
    toks = words(text) if isinstance(text, str) else text
    return (tuple(toks[i : i + n]) for i in range(len(toks) - n + 1))
