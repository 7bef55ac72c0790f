"""The first pass: which passages of a document go to the stance classifier.

Two finders, used together by default (`--first-pass both`):
- keywords: one Aho-Corasick pass (pyahocorasick) over a term list (`terms.yaml` or your
  own); ~100 MB/s per core, but fiction often names its AI without any listed word;
- detector: the recall-first static-embedding detector (`detector.py`), which flags windows
  that portray an AI character or system whatever they call it; several MB/s per core.
Their windows are merged; a merged span longer than two windows is cut into window-sized
candidates (the classifier reads ~128 tokens of each). Everything else is skipped.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["DEFAULT_TERMS", "FIRST_PASSES", "Candidate", "FirstPass", "Prefilter", "load_terms"]

FIRST_PASSES = ("both", "detector", "keywords")

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

    def spans(self, text: str) -> list[tuple[int, int, list[str]]]:
        """Windows around mentions, overlapping ones merged, with the terms found."""
        out: list[tuple[int, int, list[str]]] = []
        for start, end, term in self.mentions(text):
            lo, hi = max(0, start - self.window // 2), min(len(text), end + self.window // 2)
            if out and lo <= out[-1][1]:
                out[-1] = (out[-1][0], max(out[-1][1], hi), out[-1][2] + [term])
            else:
                out.append((lo, hi, [term]))
        return out

    def candidates(self, text: str) -> list[Candidate]:
        return [Candidate(text[lo:hi], lo, sorted(set(terms)))
                for lo, hi, terms in self.spans(text)]


class FirstPass:
    """Keywords, the detector, or both (their windows merged); see the module docstring."""

    def __init__(self, mode: str = "both", terms: list[str] | None = None,
                 window: int = 600, detector: Any = None) -> None:
        from parables.audit.detector import default_detector
        from parables.errors import ParablesError

        if mode not in FIRST_PASSES:
            raise ParablesError(f"first pass '{mode}': expected one of {', '.join(FIRST_PASSES)}")
        self.mode, self.window = mode, window
        self.keywords = Prefilter(terms or load_terms(), window) if mode != "detector" else None
        self.detector = (detector or default_detector()) if mode != "keywords" else None

    def candidates(self, text: str) -> list[Candidate]:
        spans: list[tuple[int, int, list[str]]] = []
        if self.keywords is not None:
            spans += self.keywords.spans(text)
        if self.detector is not None:
            spans += [(lo, hi, ["(detector)"]) for lo, hi in self.detector.spans(text)]
        spans.sort(key=lambda s: s[0])
        merged: list[tuple[int, int, list[str]]] = []
        for lo, hi, found in spans:
            if merged and lo <= merged[-1][1]:
                merged[-1] = (merged[-1][0], max(merged[-1][1], hi), merged[-1][2] + found)
            else:
                merged.append((lo, hi, list(found)))
        out = []
        for lo, hi, found in merged:
            for a, b in _pieces(text, lo, hi, self.window):
                out.append(Candidate(text[a:b], a, sorted(set(found))))
        return out


def _pieces(text: str, lo: int, hi: int, window: int) -> list[tuple[int, int]]:
    """[lo, hi) itself, or cut into ~window-sized pieces at spaces when over two windows."""
    if hi - lo <= 2 * window:
        return [(lo, hi)]
    out = []
    while hi - lo > window * 3 // 2:
        cut = text.rfind(" ", lo + window // 2, lo + window)
        cut = cut if cut > lo else lo + window
        out.append((lo, cut))
        lo = cut
    out.append((lo, hi))
    return out
