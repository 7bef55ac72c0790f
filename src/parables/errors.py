"""Errors a user can cause and fix. The CLI prints them as one line and exits with 2;
every other exception is a bug and keeps its traceback."""

from __future__ import annotations

import re

__all__ = ["ParablesError", "one_line"]

_MARKUP = re.compile(r"\[/?(?:bold|blue|red|green|yellow|italic|dim)[^\]]*\]")


class ParablesError(Exception):
    """A problem with the user's input, environment or configuration (exit code 2)."""


def one_line(text: str) -> str:
    """Collapse a (possibly rich-marked-up, multi-line) message from a library into one line."""
    text = _MARKUP.sub("", text)
    text = re.sub(r"^\s*ERROR:\s*", "", text)
    return re.sub(r"\s+", " ", text).strip()
