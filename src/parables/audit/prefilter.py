"""Prefilter: one Aho-Corasick pass (pyahocorasick) finds mentions of AI characters; windows
around them become the candidate passages the classifier labels. Everything else is skipped
at the speed of a string scan."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

__all__ = ["DEFAULT_TERMS", "Candidate", "Prefilter", "load_terms"]

DEFAULT_TERMS = Path(__file__).with_name("terms.yaml")


@dataclass
class Candidate:
    text: str
    start: int  # character offset in the document
    mentions: list[str]


def load_terms(path: Path | None = None) -> list[str]:
    """Mention patterns: the shipped list (generic terms + named fictional AIs) or your own
    YAML (`terms: [...]`, or groups of lists)."""
    from parables._io import read_yaml
    from parables.errors import ParablesError

    data, _ = read_yaml(path or DEFAULT_TERMS, "audit terms")
    groups = data.get("terms", data) if isinstance(data, dict) else data
    values = groups.values() if isinstance(groups, dict) else [groups]
    terms = sorted({str(t).lower() for group in values for t in (group or []) if str(t).strip()})
    if not terms:
        raise ParablesError(f"{path or DEFAULT_TERMS}: no terms (expected terms: [...])")
    return terms


def _is_word(ch: str) -> bool:
    return ch.isalnum() or ch == "_"


class Prefilter:
    """Whole-word, case-insensitive multi-pattern matcher that cuts windows around mentions
    (overlapping windows are merged)."""

    def __init__(self, terms: list[str], window: int = 600) -> None:
        import ahocorasick

        self.window = window
        self.automaton = ahocorasick.Automaton()
        for term in terms:
            self.automaton.add_word(term, term)
        self.automaton.make_automaton()

    def mentions(self, text: str) -> Iterator[tuple[int, int, str]]:
        """(start, end, term) of every whole-word mention."""
        lower = text.lower()
        if len(lower) != len(text):  # a few characters change length when lower-cased
            lower = "".join(c if len(c.lower()) != 1 else c.lower() for c in text)
        n = len(lower)
        for end, term in self.automaton.iter(lower):
            start = end - len(term) + 1
            if (start == 0 or not _is_word(lower[start - 1])) and (
                    end + 1 >= n or not _is_word(lower[end + 1]) or
                    (lower[end + 1] == "s" and (end + 2 >= n or not _is_word(lower[end + 2])))):
                yield start, end + 1, term

    def candidates(self, text: str) -> list[Candidate]:
        spans: list[list[int]] = []
        found: list[list[str]] = []
        for start, end, term in self.mentions(text):
            lo, hi = max(0, start - self.window // 2), min(len(text), end + self.window // 2)
            if spans and lo <= spans[-1][1]:
                spans[-1][1] = max(spans[-1][1], hi)
                found[-1].append(term)
            else:
                spans.append([lo, hi])
                found.append([term])
        return [Candidate(text[lo:hi], lo, sorted(set(terms)))
                for (lo, hi), terms in zip(spans, found, strict=True)]
