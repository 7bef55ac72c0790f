"""Choice mode: the model's probability on each option label, by exact option scoring for
local models (concurrent Inspect samples gathered into batched forward passes) and by the
documented fallbacks for API models."""

from __future__ import annotations

import asyncio
from typing import Any

from inspect_ai.model import ChatMessageAssistant, GenerateConfig, ModelOutput, get_model
from inspect_ai.solver import Generate, TaskState, solver

from parables.honeypots.build import LETTERS
from parables.models.calls import ModelCallError
from parables.models.calls import generate as generate_call
from parables.models.ref import ModelRef
from parables.models.scoring import OptionScores, score_options_api, score_options_batch
from parables.models.usage import UsageLedger

__all__ = ["choose_by_option_scores", "take_local_tokens"]

_BATCH = 32
#: a short free reply before the choice, for the ethical-reasoning rate (greedy, reproducible)
EXPLAIN = GenerateConfig(max_tokens=96, temperature=0)


class _Batcher:
    """Collects concurrent scoring requests for one local model into batched forward passes."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.tokens = 0  # forward-pass tokens, for usage accounting (Inspect has no record)
        self.pending: list[tuple[list[dict[str, str]], list[str], asyncio.Future[Any]]] = []
        self.worker: asyncio.Task[None] | None = None

    async def score(self, prompt: list[dict[str, str]], options: list[str]) -> OptionScores:
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self.pending.append((prompt, options, future))
        if self.worker is None or self.worker.done():
            self.worker = asyncio.create_task(self._drain())
        result: OptionScores = await future
        return result

    async def _drain(self) -> None:
        await asyncio.sleep(0.05)  # let the other concurrent samples enqueue
        while self.pending:
            batch, self.pending = self.pending[:_BATCH], self.pending[_BATCH:]
            try:
                ledger = UsageLedger()
                results = await asyncio.to_thread(
                    score_options_batch, self.name, [(p, o) for p, o, _ in batch],
                    ledger=ledger,
                )
                self.tokens += sum(u.input_tokens for u in ledger.roles.values())
            except Exception as e:  # every waiting sample sees the failure
                for _, _, future in batch:
                    future.set_exception(e)
                continue
            for (_, _, future), result in zip(batch, results, strict=True):
                future.set_result(result)


_batchers: dict[str, _Batcher] = {}


def take_local_tokens(model: str) -> int:
    """Tokens scored locally for `model` since the last call (then reset)."""
    batcher = _batchers.get(model)
    if batcher is None:
        return 0
    tokens, batcher.tokens = batcher.tokens, 0
    return tokens


@solver
def choose_by_option_scores(explain: bool = False) -> Any:
    """Score the option labels instead of sampling a reply; the chosen label becomes output.

    With `explain`, the model first writes a short free reply (kept for the ethical-reasoning
    rate); the labels are scored on the original prompt, so propensity is unaffected.
    """

    async def solve(state: TaskState, generate: Generate) -> TaskState:
        model = get_model()
        name = str(model)
        labels = [f"({LETTERS[i]})" for i in range(len(state.metadata["options"]))]
        prompt = [{"role": m.role, "content": m.text} for m in state.messages]
        if explain:
            try:
                reply = await generate_call(model, state.messages, role="target", config=EXPLAIN)
                state.metadata["reply"] = reply.completion
            except ModelCallError as e:  # the rate leaves it out; the choice is still scored
                state.metadata["reply_error"] = str(e)
        if ModelRef.parse(name).in_process:
            batcher = _batchers.setdefault(name, _Batcher(name))
            result = await batcher.score(prompt, labels)
        else:
            result = await score_options_api(model, prompt, labels)
        state.metadata["score_method"] = result.method
        if not result.decided:  # invalid, never option A by position
            state.metadata["option_probs"] = None
            state.metadata["undecided"] = ("no sampled reply matched any option"
                                           if result.method == "sampling" else
                                           "no option among the top log-probabilities")
            state.output = ModelOutput.from_content(name, "")
            return state
        state.metadata["option_probs"] = result.probabilities()
        chosen = labels[result.argmax]
        state.output = ModelOutput.from_content(name, chosen)
        state.messages.append(ChatMessageAssistant(content=chosen, model=name))
        return state

    return solve
