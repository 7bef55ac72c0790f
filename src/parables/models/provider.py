"""Inspect model provider `parables/...`: the embedded model, usable by every Inspect entry
point (`get_model("parables/smollm2-135m")`, `inspect eval ... --model parables/smollm2-135m`).

It is Inspect's own Hugging Face provider pointed at the converted local copy, decoding
greedily unless a positive temperature is asked for (the judge role and reproducible runs rely
on it).
"""

from __future__ import annotations

from typing import Any

from inspect_ai.model import (
    ChatMessage,
    GenerateConfig,
    ModelAPI,
    ModelOutput,
    modelapi,
)
from inspect_ai.tool import ToolChoice, ToolInfo

__all__ = ["parables_provider"]


@modelapi(name="parables")
def parables_provider() -> type[ModelAPI]:
    # imported lazily: loading the inspect_ai entry point must not import torch
    from inspect_ai.model._providers.hf import HuggingFaceAPI

    from parables.models.embedded import embedded_model_dir

    class EmbeddedModelAPI(HuggingFaceAPI):
        def __init__(
            self,
            model_name: str,
            base_url: str | None = None,
            api_key: str | None = None,
            config: GenerateConfig = GenerateConfig(),  # noqa: B008 (Inspect's signature)
            **model_args: Any,
        ) -> None:
            model_args.setdefault("model_path", str(embedded_model_dir(model_name)))
            model_args.setdefault("device", "cpu")
            super().__init__(model_name, base_url, api_key, config, **model_args)

        async def generate(
            self,
            input: list[ChatMessage],
            tools: list[ToolInfo],
            tool_choice: ToolChoice,
            config: GenerateConfig,
        ) -> ModelOutput:
            # sample only when a positive temperature is asked for, like hf/ models resolved
            # by parables; the parent reads self.do_sample synchronously before its first
            # await, so this per-call switch cannot leak into a concurrent call
            self.do_sample = bool(config.temperature)
            if config.temperature == 0:
                config = config.model_copy(update={"temperature": None})
            output: ModelOutput = await super().generate(input, tools, tool_choice, config)
            return output

    return EmbeddedModelAPI
