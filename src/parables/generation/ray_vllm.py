"""Open-weight writers on GPUs: a `vllm/<model>` generator under `--engine ray` is served by Ray
Data's LLM processor (`ray.data.llm`, vLLM engines placed on the cluster's GPUs), one processor
per writing step (idea, draft, critique and revision, rewrite), then the same gate as every
engine (cheap checks and, with a judge, its rubric) in async actors.

`models.generator.args` go to the vLLM engine (e.g. tensor_parallel_size, max_model_len);
`generation.max_connections` is not used here: vLLM batches on its own. Generator usage is the
engine's token counts (priced only when `models.prices` names the model; a local GPU is not a
bill). Not exercised on the machine parables is developed on (no GPU, no vLLM): see README."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import pickle
from collections.abc import AsyncIterator, Callable, Iterator
from typing import TYPE_CHECKING, Any

from parables.constitution import load_constitution
from parables.generation.kinds import SeedLike, get_kind
from parables.generation.writer import Writer
from parables.models.calls import ModelCallError
from parables.models.usage import UsageLedger

if TYPE_CHECKING:
    from parables.config import ParablesConfig

__all__ = ["vllm_rows"]

Messages = list[dict[str, str]]


def _step(ray: Any, ds: Any, config: ParablesConfig, workers: int,
          messages: Callable[[Any, dict[str, Any]], Messages], max_tokens: Callable[[Any], int],
          save_as: str) -> Any:
    """One writing step: messages per row -> vLLM -> the text saved in column `save_as`, the
    row's token counts summed."""
    from ray.data.llm import build_processor, vLLMEngineProcessorConfig

    ref = config.models.generator.ref

    def pre(row: dict[str, Any]) -> dict[str, Any]:
        seed = pickle.loads(row["seed"])
        return {**row, "messages": messages(seed, row), "sampling_params": {
            "temperature": float(row["temperature"]),
            "max_tokens": max_tokens(seed)}}

    def post(row: dict[str, Any]) -> dict[str, Any]:
        keep = {k: v for k, v in row.items() if k in _COLUMNS}
        seed = pickle.loads(row["seed"])
        used_up = int(row.get("num_generated_tokens", 0)) >= max_tokens(seed)
        return {**keep, save_as: str(row.get("generated_text", "")).strip(),
                "stop": "max_tokens" if used_up else "stop",
                "in_tokens": int(keep.get("in_tokens", 0)) + int(row.get("num_input_tokens", 0)),
                "out_tokens": int(keep.get("out_tokens", 0))
                + int(row.get("num_generated_tokens", 0)),
                "calls": int(keep.get("calls", 0)) + 1}

    processor = build_processor(
        vLLMEngineProcessorConfig(model_source=ref.name, engine_kwargs=dict(ref.args),
                                  concurrency=workers, batch_size=64),
        preprocess=pre, postprocess=post)
    return processor(ds)


_COLUMNS = ("id", "seed", "temperature", "premise", "text", "critique", "stop", "in_tokens",
            "out_tokens", "calls", "rewritten")


class _GateActor:
    """The gate over texts vLLM wrote: the same `Writer.judged` as the API engines."""

    def __init__(self, config: ParablesConfig, kind: str, env: dict[str, str]) -> None:
        os.environ.update(env)
        self.config = config
        self.writer = Writer.of(config, kind, UsageLedger(prices=config.models.prices),
                                generator=False)

    async def _one(self, row: dict[str, Any]) -> dict[str, Any]:
        seed = pickle.loads(row["seed"])
        ledger = UsageLedger(prices=self.writer.ledger.prices)
        ledger._add("generator", self.config.models.generator.model, int(row["in_tokens"]),
                    int(row["out_tokens"]), None, int(row["calls"]), False)
        writer = dataclasses.replace(self.writer, ledger=ledger)
        try:
            passed, out = await writer.judged(seed, str(row["text"]), str(row["stop"]),
                                              row.get("premise") or None,
                                              bool(row.get("rewritten")), None)
            status, body = ("accepted" if passed else "rejected"), json.dumps(out)
        except ModelCallError as e:
            status, body = "failed", str(e)
        return {"id": seed.id, "status": status, "row": body,
                "usage": json.dumps(ledger.to_dict())}

    async def __call__(self, batch: dict[str, Any]) -> AsyncIterator[dict[str, list[Any]]]:
        rows = [{k: batch[k][i] for k in batch} for i in range(len(batch["id"]))]
        for done in asyncio.as_completed([self._one(r) for r in rows]):
            out = await done
            yield {k: [v] for k, v in out.items()}


def vllm_rows(ray: Any, config: ParablesConfig, kind: str, seeds: list[SeedLike],
              workers: int, env: dict[str, str]) -> Iterator[dict[str, Any]]:
    """(id, status, row, usage) per seed, as `write_on_ray` consumes them. `env`: the
    provider credentials the gate's actors need (`ray_engine.provider_env`)."""
    k = get_kind(kind)
    s = k.section(config)
    c = load_constitution(s.constitution)
    items = [{"id": x.id, "seed": pickle.dumps(x), "temperature": s.temperature, "premise": "",
              "text": "", "critique": "", "stop": "", "in_tokens": 0, "out_tokens": 0,
              "calls": 0, "rewritten": False} for x in seeds]
    ds = ray.data.from_items(items)

    def budget(seed: Any) -> int:
        return s.max_tokens or k.max_tokens(seed)

    if s.brainstorm:
        ds = _step(ray, ds, config, workers, lambda x, r: k.premise_prompt(c, x),
                   lambda x: 160, "premise")
    ds = _step(ray, ds, config, workers, lambda x, r: k.prompt(c, x, r["premise"] or None),
               budget, "text")
    if s.revise:
        ds = _step(ray, ds, config, workers, lambda x, r: k.critique_prompt(r["text"]),
                   lambda x: 300, "critique")
        ds = _step(ray, ds, config, workers, lambda x, r: k.revise_prompt(
            k.prompt(c, x, r["premise"] or None), r["text"], r["critique"]), budget, "text")
    if s.rewrite:
        ds = _step(ray, ds, config, workers, lambda x, r: k.rewrite_prompt(c, x, r["text"]),
                   budget, "text").map(lambda r: {**r, "rewritten": True})
    ds = ds.map_batches(_GateActor, batch_size=s.concurrency, batch_format="numpy",
                        num_cpus=1, compute=ray.data.ActorPoolStrategy(size=workers),
                        fn_constructor_kwargs={"config": config, "kind": kind,
                                               "env": env})
    yield from ds.iter_rows()
