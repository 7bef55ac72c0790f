"""`parables generate --engine ray`: the same corpus generation on Ray Data, for corpora one
process cannot drive (hundreds of thousands of texts and more).

Seeds become a Ray dataset. For API writers (any Inspect model string) `map_batches` hands them
to async actors, each holding the same `Writer` the local engine uses (prompts, gate, judge
rubric, in one pass) with `<kind>.concurrency` calls in flight per actor; a `vllm/` writer is
served instead by Ray Data's LLM processor (`ray.data.llm`, vLLM engines on the cluster's GPUs)
and the rows it writes go through the same gate. Every finished row streams back to the
driver, which appends it to the run's files as the local engine does, so the output has the
same row schema, a killed job resumes by seed id, and no shared file system is needed.

Usage is recorded per call in each actor and summed into the run's ledger on the driver; one
budget actor holds what the whole job may still spend, so `max_cost` stops every worker
(texts already in flight finish, as in one process). `import ray` happens only in here.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import pickle
from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING, Any

from parables._ray import connect, import_ray, quiet_ray_data
from parables.errors import ParablesError
from parables.generation.kinds import SeedLike, get_kind
from parables.generation.writer import Sink, Writer
from parables.models.calls import ModelCallError
from parables.models.usage import UsageLedger
from parables.progress import progress_bar

if TYPE_CHECKING:
    from parables.config import ParablesConfig

__all__ = ["provider_env", "write_on_ray"]


class _Budget:
    """What the whole job may still spend (USD), shared by every actor (a Ray actor)."""

    def __init__(self, left: float | None) -> None:
        self.left = left

    def charge(self, cost: float) -> None:
        if self.left is not None:
            self.left -= cost

    def exhausted(self) -> bool:
        return self.left is not None and self.left <= 0


class _WriterActor:
    """One Ray actor: a `Writer` (models built once) and at most `concurrency` texts in
    flight, whatever number of batches Ray hands it at once."""

    def __init__(self, config: ParablesConfig, kind: str, budget: Any,
                 env: dict[str, str]) -> None:
        os.environ.update(env)
        self.writer = Writer.of(config, kind, UsageLedger(prices=config.models.prices))
        self.budget = budget
        self.limit: asyncio.Semaphore | None = None

    async def _one(self, seed: SeedLike) -> dict[str, Any]:
        if self.limit is None:  # created in the actor's event loop
            self.limit = asyncio.Semaphore(self.writer.section.concurrency)
        async with self.limit:
            if await self.budget.exhausted.remote():
                return {"id": seed.id, "status": "budget", "row": "", "usage": "{}"}
            ledger = UsageLedger(prices=self.writer.ledger.prices)  # this text's calls only
            writer = dataclasses.replace(self.writer, ledger=ledger)
            try:
                passed, row = await writer.write(seed)
                status, body = ("accepted" if passed else "rejected"), json.dumps(row)
            except ModelCallError as e:
                status, body = "failed", str(e)
            await self.budget.charge.remote(ledger.spent)
            return {"id": seed.id, "status": status, "row": body,
                    "usage": json.dumps(ledger.to_dict())}

    async def __call__(self, batch: dict[str, Any]) -> AsyncIterator[dict[str, list[Any]]]:
        seeds = [pickle.loads(b) for b in batch["seed"]]
        for done in asyncio.as_completed([self._one(s) for s in seeds]):
            out = await done  # each row leaves as soon as it is written
            yield {k: [v] for k, v in out.items()}


def _check_models(config: ParablesConfig) -> None:
    """The API models every actor will build, built here first: a missing key or an unknown
    model is one line now, not an actor dying on the cluster. (Models with weights load
    where they run, not on the driver.)"""
    from parables.models.resolve import get_role_model

    for role in ("generator", "judge"):
        ref = getattr(config.models, role).ref
        if (role == "judge" and not ref.capable) or ref.in_process or ref.provider in (
                "vllm", "sglang"):
            continue
        get_role_model(role, config)


def provider_env() -> dict[str, str]:
    """The driver's provider credentials and endpoints (`*_API_KEY`, `*_BASE_URL`), which the
    workers need to make the same calls: handed to each actor's constructor (not a runtime
    env, whose contents Ray writes to its logs) and set in the actor's environment."""
    return {k: v for k, v in os.environ.items()
            if k.endswith(("_API_KEY", "_BASE_URL", "_API_BASE"))}


#: batches an actor holds at once: one being written, one queued. Rows reach the driver a
#: batch at a time, so a kill loses (and a rerun pays again for) at most
#: workers x TASKS_PER_ACTOR x concurrency texts
TASKS_PER_ACTOR = 2


def _seed_dataset(ray: Any, seeds: list[SeedLike], batch: int) -> Any:
    """One block per batch: each batch's rows leave its actor as soon as it is done."""
    items = [{"id": s.id, "seed": pickle.dumps(s)} for s in seeds]
    return ray.data.from_items(items, override_num_blocks=-(-len(items) // batch))


def _api_rows(ray: Any, config: ParablesConfig, kind: str, seeds: list[SeedLike],
              left: float | None, workers: int) -> Iterator[dict[str, Any]]:
    section = get_kind(kind).section(config)
    budget = ray.remote(num_cpus=0)(_Budget).remote(left)
    ds = _seed_dataset(ray, seeds, section.concurrency).map_batches(
        _WriterActor, batch_size=section.concurrency, batch_format="numpy", num_cpus=1,
        compute=ray.data.ActorPoolStrategy(size=workers,
                                           max_tasks_in_flight_per_actor=TASKS_PER_ACTOR),
        fn_constructor_kwargs={"config": config, "kind": kind, "budget": budget,
                               "env": provider_env()})
    yield from ds.iter_rows()


def write_on_ray(config: ParablesConfig, kind: str, seeds: list[SeedLike], sink: Sink,
                 ledger: UsageLedger, left: float | None, *, address: str | None = None,
                 workers: int | None = None, progress: bool = True, done: int = 0) -> None:
    """Write `seeds` on Ray (an existing cluster at `address`, else a local runtime) into
    `sink`, charging `ledger`; stop every worker when `left` USD are spent."""
    if not seeds:
        return
    ray = import_ray()
    _check_models(config)
    vllm = config.models.generator.ref.provider == "vllm"
    started = connect(ray, address)
    try:
        cpus = int(ray.cluster_resources().get("CPU", 1))
        n_workers = max(1, min(workers or cpus, cpus, len(seeds)))
        if vllm:
            from parables.generation.ray_vllm import vllm_rows

            rows = vllm_rows(ray, config, kind, seeds, n_workers, provider_env())
        else:
            rows = _api_rows(ray, config, kind, seeds, left, n_workers)
        with progress_bar(progress) as bar, quiet_ray_data(ray):
            task = bar.add_task(f"{kind} (ray, {n_workers} worker"
                                f"{'s' if n_workers > 1 else ''})",
                                total=len(seeds) + done, completed=done, status="")
            for out in rows:
                ledger.merge(UsageLedger.from_dict(json.loads(str(out["usage"]))))
                status = str(out["status"])
                if status == "budget":
                    sink.budget_hit = True
                elif status == "failed":
                    sink.failure(str(out["id"]), str(out["row"]))
                else:
                    sink.record(status == "accepted", json.loads(str(out["row"])))
                bar.update(task, advance=1, status=sink.status())
    except ParablesError:
        raise
    finally:
        if started:
            ray.shutdown()
