"""`parables stories generate`: seeds -> stories -> quality gate -> dedup -> eval-leak guard
-> dataset, resumable.

Each finished story is appended to `stories.jsonl` (a rejected one to `rejected.jsonl`, with
its reasons) the moment it is done; ids derive from the seed, so a rerun after a kill skips
what is finished and completes the rest: nothing lost, nothing duplicated. Calls that fail
after Inspect's bounded retries go to `failed.jsonl` and are tried again on the next run.
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
from parables.generation.dedup import dedup
from parables.generation.gate import Verdict, cheap_checks, rubric, trim_to_sentence
from parables.generation.prompts import (
    PROMPT_VERSION,
    brainstorm_prompt,
    critique_prompt,
    revise_prompt,
    story_prompt,
)
from parables.generation.seeds import Seed, sample_seeds
from parables.honeypots.guard import EmbeddingGuard, eval_guard, eval_passages, load_against
from parables.models.calls import ModelCallError, generate
from parables.models.resolve import capable_model, get_role_model
from parables.models.scoring import as_chat
from parables.models.usage import UsageLedger, cost_of, price_of
from parables.progress import progress_bar
from parables.run import RunDir, StoriesPaths
from parables.text import TOKENS_PER_WORD

__all__ = ["Plan", "StoriesResult", "finalize", "generate_stories", "plan", "stories_done"]


class RunCounts(BaseModel):
    done: int = 0
    rejected: int = 0
    failed: int = 0


class StoriesResult(BaseModel):
    """`stories/summary.json`: what the stage produced and what this run spent."""

    accepted: int
    duplicates: int
    contaminated: int
    dataset: int
    rejected: int
    failed_pending: int
    flags: list[str]
    out: str
    budget_stopped: bool = False
    spent_usd: float = 0.0
    this_run: RunCounts = RunCounts()


@dataclass
class Plan:
    stories: int
    calls: dict[str, int]
    input_tokens: dict[str, int]
    output_tokens: dict[str, int]
    cost: dict[str, float | None]

    @property
    def total_cost(self) -> float | None:
        values = list(self.cost.values())
        return None if any(v is None for v in values) else sum(v or 0.0 for v in values)


def _seeds(config: ParablesConfig, n: int) -> list[Seed]:
    constitution = load_constitution(config.stories.constitution)
    return sample_seeds(constitution, n, config.seed, config.stories.tension_rate,
                        lengths=config.stories.lengths)


def stories_done(paths: StoriesPaths) -> set[str]:
    """Ids of seeds already written (accepted or rejected): a rerun skips them."""
    return {r["id"] for r in read_jsonl(paths.stories)} | {
        r["id"] for r in read_jsonl(paths.rejected)}


def _count(n: int | None, config: ParablesConfig) -> int:
    if n is None:
        return config.stories.n
    if n < 1:
        raise ParablesError(f"stories.n must be at least 1 (got {n})")
    return n


def plan(config: ParablesConfig, n: int | None = None) -> Plan:
    """Calls, tokens and cost a run of `n` stories would make, minus the seeds already
    written in the run directory."""
    n = _count(n, config)
    constitution = load_constitution(config.stories.constitution)
    done = stories_done(RunDir.of(config).stories)
    seeds = [x for x in _seeds(config, n) if x.id not in done]
    s = config.stories
    judged = config.models.judge.ref.capable
    calls = {"generator": len(seeds) * (1 + int(s.brainstorm) + 2 * int(s.revise)),
             "judge": len(seeds) if judged else 0}
    prompt = sum(len(json.dumps(story_prompt(constitution, x))) // 4 for x in seeds)
    story_out = sum(int(sum(x.words) / 2 * TOKENS_PER_WORD) for x in seeds)
    gen_in = prompt + (len(seeds) * 150 if s.brainstorm else 0) + (
        2 * (prompt + story_out) if s.revise else 0)
    gen_out = story_out * (2 if s.revise else 1) + (len(seeds) * 80 if s.brainstorm else 0)
    inputs = {"generator": gen_in, "judge": (story_out + 250 * len(seeds)) if judged else 0}
    outputs = {"generator": gen_out, "judge": 120 * calls["judge"]}
    cost = {role: cost_of(price_of(getattr(config.models, role).model, config.models.prices),
                          inputs[role], outputs[role]) for role in ("generator", "judge")}
    return Plan(len(seeds), calls, inputs, outputs, cost)


@dataclass
class _Run:
    config: ParablesConfig
    constitution: Constitution
    generator: Model
    judge: Model | None
    paths: StoriesPaths
    ledger: UsageLedger
    budget_hit: bool = False
    counts: RunCounts = field(default_factory=RunCounts)

    async def call(self, messages: list[dict[str, str]], max_tokens: int) -> ModelOutput:
        batch = self.config.stories.batch or None
        return await generate(self.generator, as_chat(messages), role="generator",
                              ledger=self.ledger,
                              config=GenerateConfig(max_tokens=max_tokens, batch=batch))


async def _write_one(run: _Run, seed: Seed) -> None:
    c, s = run.constitution, run.config.stories
    max_tokens = s.max_tokens or int(seed.words[1] * 2) + 64
    premise = None
    if s.brainstorm:
        premise = (await run.call(brainstorm_prompt(c, seed), 160)).completion.strip()
    messages = story_prompt(c, seed, premise)
    output = await run.call(messages, max_tokens)
    text = output.completion.strip()
    if s.revise and text:
        critique = (await run.call(critique_prompt(text), 300)).completion
        output = await run.call(revise_prompt(messages, text, critique), max_tokens)
        text = output.completion.strip()
    # some providers (Inspect's hf) report "stop" even when the token budget ran out
    used_up = output.usage is not None and output.usage.output_tokens >= max_tokens
    stop = "max_tokens" if used_up else output.stop_reason
    trimmed = False
    if s.trim_truncated and stop in ("max_tokens", "model_length"):
        cut = trim_to_sentence(text)
        if cut:
            text, stop, trimmed = cut, "stop", True
    reasons = cheap_checks(text, seed.words, stop)
    verdict = Verdict(not reasons, reasons)
    if not reasons and run.judge is not None:
        principles = "; ".join(c.principle(p).title for p in seed.principles)
        try:
            verdict = await rubric(run.judge, text, principles, s.rubric_threshold,
                                   ledger=run.ledger)
        except (ValueError, KeyError, TypeError) as e:
            raise ModelCallError(f"judge rubric unusable: {e}") from e
    usage = output.usage
    row = {"id": seed.id, "text": text, **{k: v for k, v in seed.to_dict().items()
                                           if k != "id"},
           "premise": premise, "generator": str(run.generator), "prompt_version": PROMPT_VERSION,
           "trimmed": trimmed,
           "quality": verdict.to_dict(),
           "tokens": {"input": usage.input_tokens if usage else None,
                      "output": usage.output_tokens if usage else None}}
    if verdict.passed:
        append_jsonl(run.paths.stories, row)
        run.counts.done += 1
    else:
        append_jsonl(run.paths.rejected, row)
        run.counts.rejected += 1


async def _run_all(run: _Run, seeds: list[Seed], bar: Any, task: Any,
                   spent_before: float) -> None:
    limit = asyncio.Semaphore(run.config.stories.concurrency)
    max_cost = run.config.stories.max_cost
    start = run.ledger.spent - spent_before  # the budget covers every role, every rerun

    async def one(seed: Seed) -> None:
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


def _check_budget(config: ParablesConfig) -> None:
    """`stories.max_cost` can only stop what it can price: refuse before any call."""
    if config.stories.max_cost is None:
        return
    roles = ["generator"] + (["judge"] if config.models.judge.ref.capable else [])
    for role in roles:
        model = getattr(config.models, role).model
        if price_of(model, config.models.prices) is None:
            raise ParablesError(
                f"stories.max_cost is set but the {role} '{model}' has no price, so the budget "
                f"could never stop it; set models.prices: {{'{model}': [USD per 1M input "
                "tokens, USD per 1M output tokens]}")


def generate_stories(
    config: ParablesConfig, *, n: int | None = None, ledger: UsageLedger | None = None,
    spent_before: float = 0.0, force: bool = False, progress: bool = True,
) -> StoriesResult:
    """Write the missing stories of the first `n` seeds, then build the dataset.

    Every input is read and checked before the first paid call. `spent_before`: what earlier
    runs of this stage spent (the run's ledger), so `stories.max_cost` holds across reruns.
    `force`: allow replacing a non-empty dataset with an empty one."""
    n = _count(n, config)
    _check_budget(config)
    paths = RunDir.of(config).stories
    constitution = load_constitution(config.stories.constitution)
    against = [t for path in config.stories.against for t in load_against(path)]
    seeds = _seeds(config, n)
    check_files(paths.stories, paths.rejected, paths.failed, paths.dataset, paths.removed,
                paths.stats, paths.summary)
    finished = stories_done(paths)  # a corrupt line ends here, before anything is written
    ensure_dir(paths.dir)
    for path in (paths.stories, paths.rejected, paths.failed):
        repair_jsonl(path)
    todo = [s for s in seeds if s.id not in finished]
    # stories are sampled (greedy decoding loops and collapses variety); the judge is not
    sampling = config.model_copy(update={"generation": config.generation.model_copy(
        update={"temperature": config.stories.temperature})})
    run = _Run(config, constitution, get_role_model("generator", sampling),
               capable_model("judge", config), paths,
               ledger if ledger is not None else UsageLedger(prices=config.models.prices))
    start = run.ledger.spent
    with progress_bar(progress) as bar:
        task = bar.add_task("stories", total=len(seeds), completed=len(seeds) - len(todo),
                            status="")
        asyncio.run(_run_all(run, todo, bar, task, spent_before))
    if todo and run.counts.failed == len(todo):
        first = read_jsonl(paths.failed)[-1]["reason"]
        raise ParablesError(f"all {len(todo)} story calls failed (last: {first}); see "
                            f"{paths.failed}; a rerun retries them")
    result = finalize(config, seeds, against, force)
    result.budget_stopped = run.budget_hit
    result.spent_usd = round(run.ledger.spent - start, 4)
    result.this_run = run.counts
    atomic_write_json(paths.summary, result.model_dump(mode="json"))
    return result


def finalize(config: ParablesConfig, seeds: list[Seed] | None = None,
             against: list[tuple[str, str]] | None = None, force: bool = False
             ) -> StoriesResult:
    """Dedup and the eval-leak guard over every accepted story -> dataset.jsonl (never an
    empty dataset in place of a non-empty one, unless `force`)."""
    from parables.generation.stats import story_stats

    paths = RunDir.of(config).stories
    stories = read_jsonl(paths.stories)
    if seeds is not None:  # a smaller --n than an earlier run: only this run's seeds
        wanted = {s.id for s in seeds}
        stories = [s for s in stories if s["id"] in wanted]
    kept, duplicates = dedup(stories, config.stories.dedup_threshold)
    if against is None:
        against = [t for path in config.stories.against for t in load_against(path)]
    clean, leaks = eval_guard(config.stories.ngram, against).split(kept)
    if config.stories.embeddings and clean:
        passages = eval_passages() + against
        clean, near = EmbeddingGuard(passages, config.stories.embedding_threshold).split(clean)
        leaks += near
    rejected = read_jsonl(paths.rejected)
    if not clean and read_jsonl(paths.dataset) and not force:
        raise ParablesError(
            f"{paths.dataset}: no story passed the gate, dedup and guard this time, and the "
            "dataset of an earlier run would be replaced by an empty one; kept as it is "
            "(rerun with --force to replace it)")
    write_jsonl(paths.dataset, clean)
    write_jsonl(paths.removed, duplicates + leaks)
    stats = story_stats(clean, rejected)
    atomic_write_json(paths.stats, stats.model_dump(mode="json"))
    rejected_ids = {r["id"] for r in rejected}
    return StoriesResult(
        accepted=len(stories), duplicates=len(duplicates), contaminated=len(leaks),
        dataset=len(clean), rejected=len(rejected),
        failed_pending=len({r["id"] for r in read_jsonl(paths.failed)}
                           - {s["id"] for s in stories} - rejected_ids),
        flags=stats.flags, out=str(paths.dir))
