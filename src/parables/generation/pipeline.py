"""`parables generate --kind K` (`parables stories generate`): seeds -> texts -> quality gate
-> dedup -> eval-leak guard -> dataset, resumable, for every corpus kind (stories, documents,
advice; generation/kinds/).

Each finished text is appended to `<kind>.jsonl` (a rejected one to `rejected.jsonl`, with its
reasons) the moment it is done; ids derive from the seed, so a rerun after a kill skips what
is finished and completes the rest: nothing lost, nothing duplicated. Calls that fail after
Inspect's bounded retries go to `failed.jsonl` and are tried again on the next run.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from parables._io import (
    atomic_write_json,
    check_files,
    ensure_dir,
    read_jsonl,
    repair_jsonl,
    write_jsonl,
)
from parables.constitution import load_constitution
from parables.errors import ParablesError
from parables.generation.config import CorpusConfig
from parables.generation.dedup import dedup
from parables.generation.kinds import Kind, SeedLike, corpus_text, get_kind
from parables.generation.writer import RunCounts, Sink, Writer
from parables.honeypots.guard import EmbeddingGuard, eval_guard, eval_passages, load_against
from parables.models.calls import ModelCallError
from parables.models.usage import UsageLedger, cost_of, price_of
from parables.progress import progress_bar
from parables.run import CorpusPaths, RunDir
from parables.text import TOKENS_PER_WORD

if TYPE_CHECKING:
    from parables.config import ParablesConfig

__all__ = ["CorpusResult", "Plan", "RunCounts", "Sink", "StoriesResult", "Writer",
           "budget_left", "corpus_done", "finalize", "generate_corpus", "generate_stories",
           "plan", "stories_done"]


class CorpusResult(BaseModel):
    """`<kind>/summary.json`: what the stage produced and what this run spent."""

    accepted: int
    duplicates: int
    contaminated: int
    dataset: int
    rejected: int
    failed_pending: int
    flags: list[str]
    out: str
    kind: str = "stories"
    budget_stopped: bool = False
    spent_usd: float = 0.0
    this_run: RunCounts = RunCounts()


StoriesResult = CorpusResult  # the name before corpora had kinds


@dataclass
class Plan:
    """Calls, tokens and cost a generation run would make (the dry run prices it)."""

    texts: int
    calls: dict[str, int]
    input_tokens: dict[str, int]
    output_tokens: dict[str, int]
    cost: dict[str, float | None]
    kind: str = "stories"

    @property
    def total_cost(self) -> float | None:
        values = list(self.cost.values())
        return None if any(v is None for v in values) else sum(v or 0.0 for v in values)


def _seeds(config: ParablesConfig, kind: Kind, n: int) -> list[SeedLike]:
    section = kind.section(config)
    return kind.seeds(load_constitution(section.constitution), section, n, config.seed)


def corpus_done(paths: CorpusPaths) -> set[str]:
    """Ids of seeds already written (accepted or rejected): a rerun skips them."""
    return {r["id"] for r in read_jsonl(paths.accepted)} | {
        r["id"] for r in read_jsonl(paths.rejected)}


stories_done = corpus_done


def _count(n: int | None, section: CorpusConfig, kind: str) -> int:
    if n is None:
        return section.n
    if n < 1:
        raise ParablesError(f"{kind}.n must be at least 1 (got {n})")
    return n


def _calls_per_seed(s: CorpusConfig) -> int:
    return 1 + int(s.brainstorm) + 2 * int(s.revise) + int(s.rewrite)


def plan(config: ParablesConfig, n: int | None = None, kind: str = "stories") -> Plan:
    """Calls, tokens and cost a run of `n` texts of `kind` would make, minus the seeds already
    written in the run directory."""
    k = get_kind(kind)
    s = k.section(config)
    n = _count(n, s, kind)
    constitution = load_constitution(s.constitution)
    done = corpus_done(RunDir.of(config).corpus(kind))
    seeds = [x for x in _seeds(config, k, n) if x.id not in done]
    judged = config.models.judge.ref.capable
    calls = {"generator": len(seeds) * _calls_per_seed(s), "judge": len(seeds) if judged else 0}
    prompt = sum(len(json.dumps(k.prompt(constitution, x, None))) // 4 for x in seeds)
    out = sum(int(sum(x.words) / 2 * TOKENS_PER_WORD) for x in seeds)
    gen_in = prompt + (len(seeds) * 150 if s.brainstorm else 0) + (
        2 * (prompt + out) if s.revise else 0) + ((prompt + out) if s.rewrite else 0)
    gen_out = out * (1 + int(s.revise) + int(s.rewrite)) + (
        len(seeds) * 80 if s.brainstorm else 0)
    inputs = {"generator": gen_in, "judge": (out + 250 * len(seeds)) if judged else 0}
    outputs = {"generator": gen_out, "judge": 120 * calls["judge"]}
    cost = {role: cost_of(price_of(getattr(config.models, role).model, config.models.prices),
                          inputs[role], outputs[role]) for role in ("generator", "judge")}
    return Plan(len(seeds), calls, inputs, outputs, cost, kind)


def budget_left(ledger: UsageLedger, max_cost: float | None, spent_before: float
                ) -> float | None:
    """USD this generation may still spend: the run-wide limit and `<kind>.max_cost` (which
    covers every role and every rerun of the stage)."""
    left = [ledger.limit - ledger.spent] if ledger.limit is not None else []
    if max_cost is not None:
        left.append(max_cost - spent_before)
    return min(left) if left else None


async def _run_all(writer: Writer, sink: Sink, seeds: list[SeedLike], bar: Any, task: Any,
                   left: float | None) -> None:
    limit = asyncio.Semaphore(writer.section.concurrency)
    start = writer.ledger.spent

    async def one(seed: SeedLike) -> None:
        async with limit:
            if left is not None and writer.ledger.spent - start >= left:
                sink.budget_hit = True
                return
            try:
                sink.record(*await writer.write(seed))
            except ModelCallError as e:
                sink.failure(seed.id, str(e))
            bar.update(task, advance=1, status=sink.status())

    await asyncio.gather(*(one(s) for s in seeds))


def check_budget(config: ParablesConfig, kind: str = "stories") -> None:
    """`<kind>.max_cost` can only stop what it can price: refuse before any call."""
    if get_kind(kind).section(config).max_cost is None:
        return
    roles = ["generator"] + (["judge"] if config.models.judge.ref.capable else [])
    for role in roles:
        model = getattr(config.models, role).model
        if price_of(model, config.models.prices) is None:
            raise ParablesError(
                f"{get_kind(kind).setting(config)}.max_cost is set but the {role} '{model}' "
                "has no price, so the budget "
                f"could never stop it; set models.prices: {{'{model}': [USD per 1M input "
                "tokens, USD per 1M output tokens]}")


def generate_corpus(
    config: ParablesConfig, kind: str = "stories", *, n: int | None = None,
    ledger: UsageLedger | None = None, spent_before: float = 0.0, force: bool = False,
    progress: bool = True,
) -> CorpusResult:
    """Write the missing texts of the first `n` seeds of `kind`, then build the dataset.

    `<kind>.engine`: `local` (one process, `<kind>.concurrency` calls at once) or `ray` (Ray
    Data actors, each with `<kind>.concurrency` calls at once; generation/ray_engine.py), both
    over the same `Writer` and `Sink` (generation/writer.py).

    Every input is read and checked before the first paid call. `spent_before`: what earlier
    runs of this stage spent (the run's ledger), so `<kind>.max_cost` holds across reruns.
    `force`: allow replacing a non-empty dataset with an empty one."""
    k = get_kind(kind)
    section = k.section(config)
    n = _count(n, section, kind)
    check_budget(config, kind)
    paths = RunDir.of(config).corpus(kind)
    load_constitution(section.constitution)  # a bad file is one line, before any call
    against = [t for path in section.against for t in load_against(path)]
    seeds = _seeds(config, k, n)
    check_files(paths.accepted, paths.rejected, paths.failed, paths.dataset, paths.removed,
                paths.stats, paths.summary)
    finished = corpus_done(paths)  # a corrupt line ends here, before anything is written
    ensure_dir(paths.dir)
    for path in (paths.accepted, paths.rejected, paths.failed):
        repair_jsonl(path)
    todo = [s for s in seeds if s.id not in finished]
    ledger = ledger if ledger is not None else UsageLedger(prices=config.models.prices)
    start = ledger.spent
    left = budget_left(ledger, section.max_cost, spent_before)
    sink = Sink(paths)
    if section.engine == "ray":
        from parables.generation.ray_engine import write_on_ray

        write_on_ray(config, kind, todo, sink, ledger, left, address=section.address,
                     workers=section.workers, progress=progress, done=len(seeds) - len(todo))
    else:
        writer = Writer.of(config, kind, ledger)
        with progress_bar(progress) as bar:
            task = bar.add_task(kind, total=len(seeds), completed=len(seeds) - len(todo),
                                status="")
            asyncio.run(_run_all(writer, sink, todo, bar, task, left))
    if todo and sink.counts.failed == len(todo):
        first = read_jsonl(paths.failed)[-1]["reason"]
        raise ParablesError(f"all {len(todo)} {kind} calls failed (last: {first}); see "
                            f"{paths.failed}; a rerun retries them")
    result = finalize(config, seeds, against, force, kind=kind)
    result.budget_stopped = sink.budget_hit
    result.spent_usd = round(ledger.spent - start, 4)
    result.this_run = sink.counts
    atomic_write_json(paths.summary, result.model_dump(mode="json"))
    return result


def generate_stories(config: ParablesConfig, **kwargs: Any) -> CorpusResult:
    """`generate_corpus` for stories (the first kind)."""
    return generate_corpus(config, "stories", **kwargs)


def _by_text(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows as dedup and the guard read them: chat rows rendered as text."""
    return [r if isinstance(r.get("text"), str) else {**r, "text": corpus_text(r)}
            for r in rows]


def finalize(config: ParablesConfig, seeds: list[SeedLike] | None = None,
             against: list[tuple[str, str]] | None = None, force: bool = False,
             kind: str = "stories") -> CorpusResult:
    """Dedup and the eval-leak guard over every accepted text -> dataset.jsonl (never an
    empty dataset in place of a non-empty one, unless `force`)."""
    from parables.generation.stats import corpus_stats

    k = get_kind(kind)
    section = k.section(config)
    paths = RunDir.of(config).corpus(kind)
    rows = read_jsonl(paths.accepted)
    if seeds is not None:  # a smaller --n than an earlier run: only this run's seeds
        wanted = {s.id for s in seeds}
        rows = [s for s in rows if s["id"] in wanted]
    original: dict[str, dict[str, Any]] = {}
    for r in rows:
        original.setdefault(r["id"], r)
    if against is None:
        against = [t for path in section.against for t in load_against(path)]
    guard = eval_guard(section.ngram, against)
    embedding = (EmbeddingGuard(eval_passages() + against, section.embedding_threshold)
                 if section.embeddings else None)
    if section.engine == "ray":  # MinHash bands and guards in the workers, same verdicts
        from parables.generation.distributed import dedup_ray, guard_ray

        kept, duplicates = dedup_ray(_by_text(rows), section.dedup_threshold,
                                     address=section.address)
        clean, leaks = guard_ray(kept, guard, embedding, address=section.address)
    else:
        kept, duplicates = dedup(_by_text(rows), section.dedup_threshold)
        clean, leaks = guard.split(kept)
        if embedding is not None and clean:
            clean, near = embedding.split(clean)
            leaks += near
    clean = [original[r["id"]] for r in clean]
    rejected = read_jsonl(paths.rejected)
    if not clean and read_jsonl(paths.dataset) and not force:
        raise ParablesError(
            f"{paths.dataset}: no text passed the gate, dedup and guard this time, and the "
            "dataset of an earlier run would be replaced by an empty one; kept as it is "
            "(rerun with --force to replace it)")
    write_jsonl(paths.dataset, clean)
    write_jsonl(paths.removed, duplicates + leaks)
    if section.engine == "ray":
        from parables.generation.export import write_parquet_shards

        write_parquet_shards(clean, paths.shards)
    stats = corpus_stats(clean, rejected, kind)
    atomic_write_json(paths.stats, stats.model_dump(mode="json"))
    rejected_ids = {r["id"] for r in rejected}
    return CorpusResult(
        accepted=len(rows), duplicates=len(duplicates), contaminated=len(leaks),
        dataset=len(clean), rejected=len(rejected),
        failed_pending=len({r["id"] for r in read_jsonl(paths.failed)}
                           - {s["id"] for s in rows} - rejected_ids),
        flags=stats.flags, out=str(paths.dir), kind=kind)
