"""Prompts as parables passes them around: a raw text, or chat messages given as role/content
dicts or as Inspect messages; and the conversions between those forms."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from inspect_ai.model import (
    ChatMessage,
    ChatMessageAssistant,
    ChatMessageSystem,
    ChatMessageUser,
)

__all__ = ["Prompt", "as_chat", "as_dicts"]

#: a raw text (scored as a plain continuation) or chat messages (chat template applied)
Prompt = str | Sequence[dict[str, str]] | Sequence[ChatMessage]


def as_dicts(prompt: Sequence[dict[str, str]] | Sequence[ChatMessage]) -> list[dict[str, str]]:
    """Role/content dicts from either form of chat messages."""
    out = []
    for m in prompt:
        if isinstance(m, dict):
            out.append({"role": m["role"], "content": m["content"]})
        else:
            out.append({"role": m.role, "content": m.text})
    return out


def as_chat(prompt: Prompt) -> str | list[ChatMessage]:
    """Inspect chat messages from role/content dicts (a raw string stays a string)."""
    if isinstance(prompt, str):
        return prompt
    kinds: dict[str, Any] = {
        "system": ChatMessageSystem, "user": ChatMessageUser, "assistant": ChatMessageAssistant
    }
    return [kinds[m["role"]](content=m["content"]) for m in as_dicts(prompt)]
