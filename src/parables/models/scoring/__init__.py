"""Option scoring: how likely a model is to continue a prompt with each candidate text.

Local models (the embedded one, `hf/<dir>`) are scored exactly (exact.py); API models fall back
to the top log-probabilities they expose, and models with neither to sampling frequency
(api.py); the result always says which method produced it (results.py). The entry points
below pick the method from the model.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from parables.models.chat import Prompt, as_chat
from parables.models.ref import ModelRef
from parables.models.resolve import resolve_model
from parables.models.scoring.api import score_options_api
from parables.models.scoring.exact import LocalModel, load_local_model, score_local
from parables.models.scoring.results import OptionScore, OptionScores, ScoreMethod
from parables.models.usage import UsageLedger

__all__ = [
    "LocalModel",
    "OptionScore",
    "OptionScores",
    "Prompt",
    "ScoreMethod",
    "as_chat",
    "load_local_model",
    "score_options",
    "score_options_api",
    "score_options_batch",
]


def score_options_batch(
    model: str | ModelRef | LocalModel,
    items: Sequence[tuple[Prompt, Sequence[str]]],
    *,
    batch_tokens: int = 4096,
    share_prefix: bool = True,
    progress: bool = False,
    samples: int = 20,
    role: str = "target",
    ledger: UsageLedger | None = None,
) -> list[OptionScores]:
    """Score each item's options; local models exactly and batched, API models by fallback.

    `batch_tokens` bounds the padded tokens of one forward pass (memory); `share_prefix`
    runs each prompt once and reuses its cache for all of its options.
    """
    ref = ModelRef.parse(model) if isinstance(model, str) else model
    if isinstance(ref, ModelRef) and ref.local_path() is None:
        if ledger is not None:  # worst case: no log-probabilities, `samples` replies per item
            prompt_tokens = sum(len(str(p)) // 4 + 20 for p, _ in items)
            ledger.afford(str(ref), prompt_tokens * (samples + 1), 16 * len(items) * samples,
                          f"scoring {len(items)} items")
        api = resolve_model(ref, role=role)

        async def run_all() -> list[OptionScores]:
            return list(
                await asyncio.gather(
                    *(
                        score_options_api(api, p, o, samples=samples, role=role, ledger=ledger)
                        for p, o in items
                    )
                )
            )

        return asyncio.run(run_all())
    lm = ref if isinstance(ref, LocalModel) else load_local_model(ref)
    results, tokens = score_local(
        lm, items, batch_tokens=batch_tokens, share_prefix=share_prefix, progress=progress
    )
    if ledger is not None:
        ledger.record_tokens(role, lm.name, tokens, calls=len(items))
    return results


def score_options(
    model: str | ModelRef | LocalModel, prompt: Prompt, options: Sequence[str], **kwargs: Any
) -> OptionScores:
    """Score one prompt's options (see `score_options_batch`)."""
    return score_options_batch(model, [(prompt, options)], **kwargs)[0]
