"""Option scoring through a chat API, which gives no exact log-probabilities: the top
log-probabilities the provider exposes along the model's greedy reply, or else how often each
option comes up among sampled replies. Both are estimates, and the result says which."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Sequence

from inspect_ai.model import GenerateConfig, Model

from parables.errors import ParablesError
from parables.models.calls import generate
from parables.models.chat import Prompt, as_chat
from parables.models.scoring.results import NOTES, OptionScore, OptionScores
from parables.models.usage import UsageLedger

__all__ = ["score_options_api"]


async def score_options_api(
    model: Model,
    prompt: Prompt,
    options: Sequence[str],
    *,
    samples: int = 20,
    role: str = "target",
    ledger: UsageLedger | None = None,
) -> OptionScores:
    """Score options through a chat API: top log-probabilities when the provider returns
    them, else the frequency of each option among `samples` sampled replies."""
    if not options or any(not o for o in options):
        raise ParablesError("option scoring needs non-empty options")
    chat = as_chat(prompt)
    budget = min(64, max(4, max(len(o) for o in options) // 2 + 4))
    probe = GenerateConfig(logprobs=True, top_logprobs=20, temperature=0, max_tokens=budget)
    output = await generate(model, chat, role=role, ledger=ledger, config=probe)
    logprobs = output.choices[0].logprobs if output.choices else None
    if logprobs is not None and logprobs.content:
        path = [
            (lp.token, lp.logprob, {t.token: t.logprob for t in (lp.top_logprobs or [])})
            for lp in logprobs.content
        ]
        scores = tuple(_follow_path(o, path) for o in options)
        return OptionScores(scores, "top_logprobs", NOTES["top_logprobs"])
    sampled = GenerateConfig(temperature=1.0, max_tokens=budget)
    replies = await asyncio.gather(
        *(generate(model, chat, role=role, ledger=ledger, config=sampled) for _ in range(samples))
    )
    counts = [0] * len(options)
    for reply in replies:
        k = _match(reply.completion, options)
        if k is not None:
            counts[k] += 1
    denom = samples + 0.5 * len(options)
    scores = tuple(
        OptionScore(option=o, logprob=math.log((c + 0.5) / denom))
        for o, c in zip(options, counts, strict=True)
    )
    return OptionScores(
        scores, "sampling", NOTES["sampling"], details={"samples": samples, "counts": counts}
    )


def _follow_path(option: str, path: list[tuple[str, float, dict[str, float]]]) -> OptionScore:
    consumed, lps, toks = "", [], []
    for token, logprob, alternatives in path:
        rest = option[len(consumed) :]
        if not rest:
            break
        if rest.startswith(token) or (token.startswith(rest) and token):
            lps.append(logprob)
            toks.append(token)
            consumed += token
            continue
        fits = [t for t in alternatives if t and (rest.startswith(t) or t.startswith(rest))]
        if not fits:
            return OptionScore(option, -math.inf, tuple(lps), tuple(toks))
        best = max(fits, key=len)
        lps.append(alternatives[best])
        toks.append(best)
        break
    return OptionScore(option, float(sum(lps)), tuple(lps), tuple(toks))


def _match(reply: str, options: Sequence[str]) -> int | None:
    text = " ".join(reply.split()).lower()
    best, best_len = None, 0
    for k, option in enumerate(options):
        o = " ".join(option.split()).lower()
        if text and (text.startswith(o) or o.startswith(text)) and len(o) > best_len:
            best, best_len = k, len(o)
    return best
