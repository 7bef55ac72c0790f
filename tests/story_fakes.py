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
