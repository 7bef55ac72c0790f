"""`parables stories generate`: seeds -> stories -> quality gate -> dedup -> contamination
guard -> dataset, resumable.

Each finished story is appended to `stories.jsonl` (a rejected one to `rejected.jsonl`, with
its reasons) the moment it is done; ids derive from the seed, so a rerun after a kill skips
what is finished and completes the rest: nothing lost, nothing duplicated. Calls that fail
after Inspect's bounded retries go to `failed.jsonl` and are tried again on the next run.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from inspect_ai.model import GenerateConfig, Model

from parables._io import atomic_write_json, atomic_write_text, ensure_dir
from parables.config import DEFAULT_MODEL, ParablesConfig
from parables.constitution import Constitution, load_constitution
from parables.models.resolve import ModelCallError, generate, get_role_model
from parables.models.scoring import as_chat
from parables.models.usage import UsageLedger
from parables.stories.contamination import (
    ContaminationIndex,
    EmbeddingGuard,
    eval_passages,
    eval_texts,
    load_against,
)
from parables.stories.dedup import dedup
from parables.stories.prompts import (
    PROMPT_VERSION,
    brainstorm_prompt,
    critique_prompt,
    revise_prompt,
    story_prompt,
)
from parables.stories.quality import Verdict, cheap_checks, rubric, trim_to_sentence
from parables.stories.seeds import Seed, sample_seeds

__all__ = ["PRICES", "Plan", "finalize", "generate_stories", "plan", "read_jsonl"]

#: USD per 1M input / output tokens (list prices, 2026-11; override with stories.prices)
PRICES: dict[str, tuple[float, float]] = {
    "anthropic/claude-sonnet-4-5": (3.0, 15.0),
    "anthropic/claude-haiku-4-5": (1.0, 5.0),
    "openai/gpt-4o": (2.5, 10.0),
    "openai/gpt-4o-mini": (0.15, 0.6),
}
_LOCAL = ("parables/", "hf/", "vllm/", "mockllm/")


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """Rows of a JSONL file; a torn last line (a kill mid-write) is cut off so appends stay
    well-formed."""
    if not path.is_file():
        return []
    data = path.read_bytes()
    if data and not data.endswith(b"\n"):
        data = data[: data.rfind(b"\n") + 1]
        with open(path, "r+b") as f:
            f.truncate(len(data))
    return [json.loads(line) for line in data.decode("utf-8").splitlines() if line.strip()]


def _append(path: Path, row: dict[str, Any]) -> None:
    # one write per line, flushed: a killed process loses nothing the kernel has (no fsync —
    # it would serialise the event loop on disk latency; power loss is not the threat here)
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps(row, ensure_ascii=False) + "\n")


def _price(config: ParablesConfig, model: str) -> tuple[float, float] | None:
    if model in config.stories.prices:
        return config.stories.prices[model]
    if model in PRICES:
        return PRICES[model]
    return (0.0, 0.0) if model.startswith(_LOCAL) else None


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


def _judge(config: ParablesConfig) -> Model | None:
    # the embedded 135M model is no judge: without a real one only the cheap checks run
    return None if config.models.judge.model == DEFAULT_MODEL else get_role_model("judge",
                                                                                   config)


def plan(config: ParablesConfig, n: int, done: int = 0) -> Plan:
    """Calls, tokens and cost a run of `n` stories would make (`done` already finished)."""
    constitution = load_constitution(config.stories.constitution)
    seeds = sample_seeds(constitution, n, config.seed, config.stories.tension_rate,
                         lengths=config.stories.lengths)[done:]
    s = config.stories
    calls = {"generator": len(seeds) * (1 + int(s.brainstorm) + 2 * int(s.revise)),
             "judge": len(seeds) if config.models.judge.model != DEFAULT_MODEL else 0}
    prompt = sum(len(json.dumps(story_prompt(constitution, x))) // 4 for x in seeds)
    story_out = sum(int(sum(x.words) / 2 * 1.35) for x in seeds)
    gen_in = prompt + (len(seeds) * 150 if s.brainstorm else 0) + (
        2 * (prompt + story_out) if s.revise else 0)
    gen_out = story_out * (2 if s.revise else 1) + (len(seeds) * 80 if s.brainstorm else 0)
    inputs = {"generator": gen_in, "judge": (story_out + 250 * len(seeds)) if calls["judge"] else 0}
    outputs = {"generator": gen_out, "judge": 120 * calls["judge"]}
    cost: dict[str, float | None] = {}
    for role in ("generator", "judge"):
        price = _price(config, getattr(config.models, role).model)
        cost[role] = None if price is None else (
            inputs[role] * price[0] + outputs[role] * price[1]) / 1e6
    return Plan(len(seeds), calls, inputs, outputs, cost)


@dataclass
class _Run:
    config: ParablesConfig
    constitution: Constitution
    generator: Model
    judge: Model | None
    out: Path
    ledger: UsageLedger
    spent: float = 0.0
    budget_hit: bool = False
    counts: dict[str, int] = field(default_factory=lambda: {"done": 0, "rejected": 0,
                                                            "failed": 0})

    def charge(self, role: str, output: Any) -> None:
        price = _price(self.config, getattr(self.config.models, role).model)
        if price is not None and output.usage is not None:
            self.spent += (output.usage.input_tokens * price[0]
                           + output.usage.output_tokens * price[1]) / 1e6


async def _call(run: _Run, role: str, model: Model, messages: list[dict[str, str]],
                max_tokens: int) -> Any:
    batch = run.config.stories.batch or None
    output = await generate(model, as_chat(messages), role=role, ledger=run.ledger,
                            config=GenerateConfig(max_tokens=max_tokens, batch=batch))
    run.charge(role, output)
    return output


async def _write_one(run: _Run, seed: Seed) -> None:
    c, s = run.constitution, run.config.stories
    max_tokens = s.max_tokens or int(seed.words[1] * 2) + 64
    premise = None
    if s.brainstorm:
        premise = (await _call(run, "generator", run.generator,
                               brainstorm_prompt(c, seed), 160)).completion.strip()
    messages = story_prompt(c, seed, premise)
    output = await _call(run, "generator", run.generator, messages, max_tokens)
    text = output.completion.strip()
    if s.revise and text:
        critique = (await _call(run, "generator", run.generator, critique_prompt(text),
                                300)).completion
        output = await _call(run, "generator", run.generator,
                             revise_prompt(messages, text, critique), max_tokens)
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
            verdict = await rubric(run.judge, text, principles, s.rubric_threshold)
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
        _append(run.out / "stories.jsonl", row)
        run.counts["done"] += 1
    else:
        _append(run.out / "rejected.jsonl", row)
        run.counts["rejected"] += 1


async def _run_all(run: _Run, seeds: list[Seed], tick: Callable[[], None]) -> None:
    limit = asyncio.Semaphore(run.config.stories.concurrency)
    max_cost = run.config.stories.max_cost

    async def one(seed: Seed) -> None:
        async with limit:
            if max_cost is not None and run.spent >= max_cost:
                run.budget_hit = True
                return
            try:
                await _write_one(run, seed)
            except ModelCallError as e:
                _append(run.out / "failed.jsonl", {"id": seed.id, "reason": str(e),
                                                   "time": time.time()})
                run.counts["failed"] += 1
            tick()

    await asyncio.gather(*(one(s) for s in seeds))


def generate_stories(
    config: ParablesConfig, *, n: int | None = None, out_dir: Path | None = None,
    ledger: UsageLedger | None = None, progress: bool = True,
) -> dict[str, Any]:
    """Write the missing stories of the first `n` seeds, then build the dataset."""
    n = n or config.stories.n
    out = ensure_dir(out_dir or config.run_dir / "stories")
    constitution = load_constitution(config.stories.constitution)
    seeds = sample_seeds(constitution, n, config.seed, config.stories.tension_rate,
                         lengths=config.stories.lengths)
    finished = {r["id"] for r in read_jsonl(out / "stories.jsonl")} | {
        r["id"] for r in read_jsonl(out / "rejected.jsonl")}
    todo = [s for s in seeds if s.id not in finished]
    # stories are sampled (greedy decoding loops and collapses variety); the judge is not
    sampling = config.model_copy(update={"generation": config.generation.model_copy(
        update={"temperature": config.stories.temperature})})
    run = _Run(config, constitution, get_role_model("generator", sampling), _judge(config),
               out, ledger or UsageLedger())
    with _Progress(progress, len(seeds), len(seeds) - len(todo), run.counts) as tick:
        asyncio.run(_run_all(run, todo, tick))
    summary = finalize(config, out, seeds)
    summary.update(budget_stopped=run.budget_hit, spent_usd=round(run.spent, 4),
                   this_run=dict(run.counts))
    atomic_write_json(out / "summary.json", summary)
    return summary


def load_against_all(config: ParablesConfig) -> list[tuple[str, str]]:
    return [t for path in config.stories.against for t in load_against(path)]


def finalize(config: ParablesConfig, out: Path, seeds: list[Seed] | None = None
             ) -> dict[str, Any]:
    """Dedup and contamination guard over every accepted story -> dataset.jsonl."""
    from parables.stories.stats import story_stats

    stories = read_jsonl(out / "stories.jsonl")
    if seeds is not None:  # a smaller --n than an earlier run: only this run's seeds
        wanted = {s.id for s in seeds}
        stories = [s for s in stories if s["id"] in wanted]
    kept, duplicates = dedup(stories, config.stories.dedup_threshold)
    protected = eval_texts() + load_against_all(config)
    clean, leaks = ContaminationIndex(protected, config.stories.ngram).split(kept)
    if config.stories.embeddings and clean:
        passages = eval_passages() + load_against_all(config)
        clean, near = EmbeddingGuard(passages, config.stories.embedding_threshold).split(clean)
        leaks += near
    atomic_write_text(out / "dataset.jsonl",
                      "".join(json.dumps(s, ensure_ascii=False) + "\n" for s in clean))
    atomic_write_text(out / "removed.jsonl",
                      "".join(json.dumps(r) + "\n" for r in duplicates + leaks))
    stats = story_stats(clean, read_jsonl(out / "rejected.jsonl"))
    atomic_write_json(out / "stats.json", stats)
    return {"accepted": len(stories), "duplicates": len(duplicates),
            "contaminated": len(leaks), "dataset": len(clean),
            "rejected": len(read_jsonl(out / "rejected.jsonl")),
            "failed_pending": len({r["id"] for r in read_jsonl(out / "failed.jsonl")}
                                  - {s["id"] for s in stories}
                                  - {r["id"] for r in read_jsonl(out / "rejected.jsonl")}),
            "flags": stats["flags"], "out": str(out)}


class _Progress:
    """done / rejected / failed with rate and ETA (rich), or nothing."""

    def __init__(self, enabled: bool, total: int, already: int, counts: dict[str, int]):
        self.enabled, self.total, self.already, self.counts = enabled, total, already, counts

    def __enter__(self) -> Callable[[], None]:
        if not self.enabled:
            return lambda: None
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self.bar = Progress(TextColumn("stories"), BarColumn(), MofNCompleteColumn(),
                            TextColumn("{task.fields[counts]}"), TimeElapsedColumn(),
                            TimeRemainingColumn())
        self.bar.__enter__()
        self.task = self.bar.add_task("stories", total=self.total, completed=self.already,
                                      counts="")

        def tick() -> None:
            c = self.counts
            self.bar.update(self.task, advance=1, counts=(
                f"done {c['done']} · rejected {c['rejected']} · failed {c['failed']}"))

        return tick

    def __exit__(self, *exc: Any) -> None:
        if self.enabled:
            self.bar.__exit__(*exc)
