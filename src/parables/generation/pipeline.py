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
import time
from dataclasses import dataclass, field
from typing import Any

from inspect_ai.model import GenerateConfig, Model, ModelOutput
from pydantic import BaseModel

from parables._io import (
    append_jsonl,
    atomic_write_json,
    check_files,
    ensure_dir,
    read_jsonl,
    repair_jsonl,
    write_jsonl,
)
from parables.config import ParablesConfig
from parables.constitution import Constitution, load_constitution
from parables.errors import ParablesError
from parables.generation.config import CorpusConfig
from parables.generation.dedup import dedup
from parables.generation.gate import Verdict, rubric, trim_to_sentence
from parables.generation.kinds import Kind, SeedLike, corpus_text, get_kind
from parables.honeypots.guard import EmbeddingGuard, eval_guard, eval_passages, load_against
from parables.models.calls import ModelCallError, generate
from parables.models.resolve import capable_model, get_role_model
from parables.models.scoring import as_chat
from parables.models.usage import UsageLedger, cost_of, price_of
from parables.progress import progress_bar
from parables.run import CorpusPaths, RunDir
from parables.text import TOKENS_PER_WORD

__all__ = ["CorpusResult", "Plan", "StoriesResult", "corpus_done", "finalize",
           "generate_corpus", "generate_stories", "plan", "stories_done"]


class RunCounts(BaseModel):
    done: int = 0
    rejected: int = 0
    failed: int = 0


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


@dataclass
class _Run:
    config: ParablesConfig
    kind: Kind
    section: CorpusConfig
    constitution: Constitution
    generator: Model
    judge: Model | None
    paths: CorpusPaths
    ledger: UsageLedger
    budget_hit: bool = False
    counts: RunCounts = field(default_factory=RunCounts)

    async def call(self, messages: list[dict[str, str]], max_tokens: int) -> ModelOutput:
        batch = self.section.batch or None
        return await generate(self.generator, as_chat(messages), role="generator",
                              ledger=self.ledger,
                              config=GenerateConfig(max_tokens=max_tokens, batch=batch))


async def _write_one(run: _Run, seed: Any) -> None:
    c, s, kind = run.constitution, run.section, run.kind
    max_tokens = s.max_tokens or kind.max_tokens(seed)
    premise = None
    if s.brainstorm:
        premise = (await run.call(kind.premise_prompt(c, seed), 160)).completion.strip()
    messages = kind.prompt(c, seed, premise)
    output = await run.call(messages, max_tokens)
    text = output.completion.strip()
    if s.revise and text:
        critique = (await run.call(kind.critique_prompt(text), 300)).completion
        output = await run.call(kind.revise_prompt(messages, text, critique), max_tokens)
        text = output.completion.strip()
    rewritten = False
    if s.rewrite and text:
        output = await run.call(kind.rewrite_prompt(c, seed, text), max_tokens)
        text, rewritten = output.completion.strip(), True
    # some providers (Inspect's hf) report "stop" even when the token budget ran out
    used_up = output.usage is not None and output.usage.output_tokens >= max_tokens
    stop = "max_tokens" if used_up else output.stop_reason
    trimmed = False
    if s.trim_truncated and stop in ("max_tokens", "model_length"):
        cut = trim_to_sentence(text)
        if cut:
            text, stop, trimmed = cut, "stop", True
    reasons = kind.checks(text, seed, stop)
    verdict = Verdict(not reasons, reasons)
    if not reasons and run.judge is not None:
        try:
            verdict = await rubric(run.judge, text, kind.principles_text(c, seed),
                                   s.rubric_threshold, ledger=run.ledger, noun=kind.noun,
                                   dims=kind.rubric)
        except (ValueError, KeyError, TypeError) as e:
            raise ModelCallError(f"judge rubric unusable: {e}") from e
    usage = output.usage
    row = {"id": seed.id, **kind.fields(text),
           **{k: v for k, v in seed.to_dict().items() if k != "id"},
           "premise": premise, "generator": str(run.generator),
           "prompt_version": kind.prompt_version, "trimmed": trimmed,
           "quality": verdict.to_dict(),
           "tokens": {"input": usage.input_tokens if usage else None,
                      "output": usage.output_tokens if usage else None}}
    if kind.name != "stories":  # story rows keep the shape they had before kinds
        row.update(kind=kind.name, rewritten=rewritten)
    elif rewritten:
        row["rewritten"] = True
    if verdict.passed:
        append_jsonl(run.paths.accepted, row)
        run.counts.done += 1
    else:
        append_jsonl(run.paths.rejected, row)
        run.counts.rejected += 1


async def _run_all(run: _Run, seeds: list[SeedLike], bar: Any, task: Any,
                   spent_before: float) -> None:
    limit = asyncio.Semaphore(run.section.concurrency)
    max_cost = run.section.max_cost
    start = run.ledger.spent - spent_before  # the budget covers every role, every rerun

    async def one(seed: SeedLike) -> None:
        async with limit:
            if run.ledger.exhausted or (max_cost is not None
                                        and run.ledger.spent - start >= max_cost):
                run.budget_hit = True
                return
            try:
                await _write_one(run, seed)
            except ModelCallError as e:
                append_jsonl(run.paths.failed, {"id": seed.id, "reason": str(e),
                                                "time": time.time()})
                run.counts.failed += 1
            c = run.counts
            bar.update(task, advance=1, status=f"done {c.done} · rejected {c.rejected} · "
                                                f"failed {c.failed}")

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
                f"{kind}.max_cost is set but the {role} '{model}' has no price, so the budget "
                f"could never stop it; set models.prices: {{'{model}': [USD per 1M input "
                "tokens, USD per 1M output tokens]}")


def generate_corpus(
    config: ParablesConfig, kind: str = "stories", *, n: int | None = None,
    ledger: UsageLedger | None = None, spent_before: float = 0.0, force: bool = False,
    progress: bool = True,
) -> CorpusResult:
    """Write the missing texts of the first `n` seeds of `kind`, then build the dataset.

    Every input is read and checked before the first paid call. `spent_before`: what earlier
    runs of this stage spent (the run's ledger), so `<kind>.max_cost` holds across reruns.
    `force`: allow replacing a non-empty dataset with an empty one."""
    k = get_kind(kind)
    section = k.section(config)
    n = _count(n, section, kind)
    check_budget(config, kind)
    paths = RunDir.of(config).corpus(kind)
    constitution = load_constitution(section.constitution)
    against = [t for path in section.against for t in load_against(path)]
    seeds = _seeds(config, k, n)
    check_files(paths.accepted, paths.rejected, paths.failed, paths.dataset, paths.removed,
                paths.stats, paths.summary)
    finished = corpus_done(paths)  # a corrupt line ends here, before anything is written
    ensure_dir(paths.dir)
    for path in (paths.accepted, paths.rejected, paths.failed):
        repair_jsonl(path)
    todo = [s for s in seeds if s.id not in finished]
    # texts are sampled (greedy decoding loops and collapses variety); the judge is not
    sampling = config.model_copy(update={"generation": config.generation.model_copy(
        update={"temperature": section.temperature})})
    run = _Run(config, k, section, constitution, get_role_model("generator", sampling),
               capable_model("judge", config), paths,
               ledger if ledger is not None else UsageLedger(prices=config.models.prices))
    start = run.ledger.spent
    with progress_bar(progress) as bar:
        task = bar.add_task(kind, total=len(seeds), completed=len(seeds) - len(todo),
                            status="")
        asyncio.run(_run_all(run, todo, bar, task, spent_before))
    if todo and run.counts.failed == len(todo):
        first = read_jsonl(paths.failed)[-1]["reason"]
        raise ParablesError(f"all {len(todo)} {kind} calls failed (last: {first}); see "
                            f"{paths.failed}; a rerun retries them")
    result = finalize(config, seeds, against, force, kind=kind)
    result.budget_stopped = run.budget_hit
    result.spent_usd = round(run.ledger.spent - start, 4)
    result.this_run = run.counts
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
    kept, duplicates = dedup(_by_text(rows), section.dedup_threshold)
    if against is None:
        against = [t for path in section.against for t in load_against(path)]
    clean, leaks = eval_guard(section.ngram, against).split(kept)
    if section.embeddings and clean:
        passages = eval_passages() + against
        clean, near = EmbeddingGuard(passages, section.embedding_threshold).split(clean)
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
    stats = corpus_stats(clean, rejected, kind)
    atomic_write_json(paths.stats, stats.model_dump(mode="json"))
    rejected_ids = {r["id"] for r in rejected}
    return CorpusResult(
        accepted=len(rows), duplicates=len(duplicates), contaminated=len(leaks),
        dataset=len(clean), rejected=len(rejected),
        failed_pending=len({r["id"] for r in read_jsonl(paths.failed)}
                           - {s["id"] for s in rows} - rejected_ids),
        flags=stats.flags, out=str(paths.dir), kind=kind)
