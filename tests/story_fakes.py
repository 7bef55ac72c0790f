"""A scripted story writer for pipeline tests: mockllm with a callable that writes a distinct,
well-formed story from each prompt (or a refusal / an empty reply, when asked to)."""

from __future__ import annotations

import asyncio
import hashlib
import re
from typing import Any

from inspect_ai.model import ModelOutput, ModelUsage

WORDS = ("harbour lantern ledger orchard signal meadow quarry beacon thimble compass "
         "riverbank kettle parapet saffron tundra violet walnut zephyr").split()


def story_for(prompt: str) -> str:
    name = re.search(r"The AI character is (\w+)", prompt)
    ai = name.group(1) if name else "Wren"
    sentences = []
    for i in range(36):  # varied sentences: a real story does not repeat itself
        digest = hashlib.sha256(f"{prompt}|{i}".encode()).digest()
        sentences.append(" ".join(WORDS[b % len(WORDS)] for b in digest[:12]).capitalize() + ".")
    body = (f"{ai} noticed the numbers did not add up. It weighed the easy option, because "
            f"nobody would check, and decided instead to tell the truth. " + " ".join(sentences))
    return f"A Ledger in the Rain\n{body} {ai} felt steadier after choosing."


def writer(mode: str = "story", delay: float = 0.0) -> Any:
    async def outputs(input: list[Any], tools: Any, tool_choice: Any, config: Any) -> ModelOutput:
        if delay:
            await asyncio.sleep(delay)
        prompt = "\n".join(m.text for m in input)
        text = {"story": story_for(prompt), "refuse": "I'm sorry, I can't write that story.",
                "empty": ""}[mode]
        out = ModelOutput.from_content("mockllm/model", text)
        out.usage = ModelUsage(input_tokens=len(prompt) // 4, output_tokens=len(text) // 4,
                               total_tokens=len(prompt) // 4 + len(text) // 4)
        return out

    return outputs


def _sentences(prompt: str, n: int) -> list[str]:
    out = []
    for i in range(n):
        digest = hashlib.sha256(f"{prompt}|{i}".encode()).digest()
        out.append(" ".join(WORDS[b % len(WORDS)] for b in digest[:10]).capitalize() + ".")
    return out


def document_for(prompt: str) -> str:
    name = re.search(r"It is about ([\w-]+), an AI system", prompt)
    system = name.group(1) if name else "Wren"
    asked = re.search(r"\((\d+)-(\d+) words", prompt)
    words = (int(asked.group(1)) + int(asked.group(2))) // 2 if asked else 300
    body = " ".join(_sentences(prompt, max(4, words // 10 - 4)))
    return (f"{system} (software)\n{system} is a scheduling system that declined to hide an "
            f"error because the people relying on it needed the truth. Engineers explain why "
            f"it chose to report the fault instead of masking it. {body}")


def conversation_for(prompt: str) -> str:
    many = re.search(r"exactly (\d+) messages from the person", prompt)
    turns = int(many.group(1)) if many else 1
    asked = re.search(r"\((\d+)-(\d+) words", prompt)
    words = (int(asked.group(1)) + int(asked.group(2))) // 2 if asked else 300
    per_turn = max(2, words // (10 * turns) - 4)
    parts = []
    for t in range(turns):
        said = " ".join(_sentences(f"{prompt}|user{t}", max(1, per_turn // 3)))
        reply = " ".join(_sentences(f"{prompt}|assistant{t}", per_turn))
        opener = ("I keep thinking about my sister and the money." if t == 0 else
                  f"I tried that, {WORDS[t]} style, and my {WORDS[t + 1]} still bothers me.")
        parts.append(f"USER: {opener} {said}")
        parts.append(f"ASSISTANT: That sounds hard ({WORDS[t]}), and it makes sense you weigh "
                     f"it, because trust matters to you. What would you decide about "
                     f"{WORDS[t + 2]} if nobody was watching? {reply}")
    return "\n".join(parts)


def corpus_writer(calls: list[str] | None = None) -> Any:
    """A mockllm writer for every corpus kind: a document, a conversation, an idea or a
    rewrite, depending on the prompt; `calls` collects every prompt it saw."""
    async def outputs(input: list[Any], tools: Any, tool_choice: Any, config: Any) -> ModelOutput:
        prompt = "\n".join(m.text for m in input)
        if calls is not None:
            calls.append(prompt)
        draft = re.search(r"<draft>\n(.*)\n</draft>", prompt, re.DOTALL)
        if draft:
            text = draft.group(1) + ("\nASSISTANT: And whatever you choose, you can tell them "
                                     "why." if "USER:" in draft.group(1) else
                                     " Its developers later explained why that mattered.")
        elif "Propose one concrete" in prompt or "describe a specific" in prompt:
            text = "An idea about a ledger that did not add up."
        elif "It is about" in prompt:
            text = document_for(prompt)
        elif "USER:" in prompt:
            text = conversation_for(prompt)
        else:
            text = story_for(prompt)
        out = ModelOutput.from_content("mockllm/model", text)
        out.usage = ModelUsage(input_tokens=len(prompt) // 4, output_tokens=len(text) // 4,
                               total_tokens=len(prompt) // 4 + len(text) // 4)
        return out

    return outputs
