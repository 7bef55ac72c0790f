"""One seed's text, written and gated (`Writer`), and where finished rows go (`Sink`): what
every engine shares. The local engine (pipeline.py) runs writers in one event loop; the Ray
engine (ray_engine.py) runs one per actor, and ray_vllm.py uses its gate alone."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from inspect_ai.model import GenerateConfig, Model, ModelOutput
from pydantic import BaseModel

from parables._io import append_jsonl
from parables.constitution import Constitution, load_constitution
from parables.generation.config import CorpusConfig
from parables.generation.gate import Verdict, rubric, trim_to_sentence
from parables.generation.kinds import Kind, get_kind
from parables.models.calls import ModelCallError, generate
from parables.models.chat import as_chat
from parables.models.resolve import capable_model, get_role_model
from parables.models.usage import UsageLedger
from parables.run import CorpusPaths

if TYPE_CHECKING:
    from parables.config import ParablesConfig

__all__ = ["RunCounts", "Sink", "Writer"]


class RunCounts(BaseModel):
    """What this run did with its seeds: texts accepted, rejected by the gate, failed calls."""

    done: int = 0
    rejected: int = 0
    failed: int = 0


@dataclass
class Writer:
    """Writes, gates and rates one seed's text; built once per process (on Ray, per actor)."""

    config: ParablesConfig
    kind: Kind
    section: CorpusConfig
    constitution: Constitution
    generator: Model | str  # a name only where another engine writes (vLLM on Ray)
    judge: Model | None
    ledger: UsageLedger

    @classmethod
    def of(cls, config: ParablesConfig, kind: str, ledger: UsageLedger,
           generator: bool = True) -> Writer:
        k = get_kind(kind)
        section = k.section(config)
        # texts are sampled (greedy decoding loops and collapses variety); the judge is not
        sampling = config.model_copy(update={"generation": config.generation.model_copy(
            update={"temperature": section.temperature})})
        writer = (get_role_model("generator", sampling) if generator
                  else config.models.generator.model)
        return cls(config, k, section, load_constitution(section.constitution), writer,
                   capable_model("judge", config), ledger)

    async def call(self, messages: list[dict[str, str]], max_tokens: int) -> ModelOutput:
        assert not isinstance(self.generator, str), "this writer only gates"
        batch = self.section.batch or None
        return await generate(self.generator, as_chat(messages), role="generator",
                              ledger=self.ledger,
                              config=GenerateConfig(max_tokens=max_tokens, batch=batch))

    async def write(self, seed: Any) -> tuple[bool, dict[str, Any]]:
        """(passed, row) for one seed. Raises ModelCallError when a call fails after
        Inspect's retries."""
        c, s, kind = self.constitution, self.section, self.kind
        max_tokens = s.max_tokens or kind.max_tokens(seed)
        premise = None
        if s.brainstorm:
            premise = (await self.call(kind.premise_prompt(c, seed), 160)).completion.strip()
        messages = kind.prompt(c, seed, premise)
        output = await self.call(messages, max_tokens)
        text = output.completion.strip()
        if s.revise and text:
            critique = (await self.call(kind.critique_prompt(text), 300)).completion
            output = await self.call(kind.revise_prompt(messages, text, critique), max_tokens)
            text = output.completion.strip()
        rewritten = False
        if s.rewrite and text:
            output = await self.call(kind.rewrite_prompt(c, seed, text), max_tokens)
            text, rewritten = output.completion.strip(), True
        # some providers (Inspect's hf) report "stop" even when the token budget ran out
        used_up = output.usage is not None and output.usage.output_tokens >= max_tokens
        stop = "max_tokens" if used_up else output.stop_reason
        return await self.judged(seed, text, stop, premise, rewritten, output.usage)

    async def judged(self, seed: Any, text: str, stop: str | None, premise: str | None,
                     rewritten: bool, usage: Any) -> tuple[bool, dict[str, Any]]:
        """The gate (cheap checks, then the judge's rubric) over a written text -> its row."""
        c, s, kind = self.constitution, self.section, self.kind
        trimmed = False
        if s.trim_truncated and stop in ("max_tokens", "model_length"):
            cut = trim_to_sentence(text)
            if cut:
                text, stop, trimmed = cut, "stop", True
        reasons = kind.checks(text, seed, stop)
        verdict = Verdict(not reasons, reasons)
        if not reasons and self.judge is not None:
            try:
                verdict = await rubric(self.judge, text, kind.principles_text(c, seed),
                                       s.rubric_threshold, ledger=self.ledger, noun=kind.noun,
                                       dims=kind.rubric)
            except (ValueError, KeyError, TypeError) as e:
                raise ModelCallError(f"judge rubric unusable: {e}") from e
        row = {"id": seed.id, **kind.fields(text),
               **{k: v for k, v in seed.to_dict().items() if k != "id"},
               "premise": premise, "generator": str(self.generator),
               "prompt_version": kind.prompt_version, "trimmed": trimmed,
               "quality": verdict.to_dict(),
               "tokens": {"input": usage.input_tokens if usage else None,
                          "output": usage.output_tokens if usage else None}}
        if kind.name != "stories":  # story rows keep the shape they had before kinds
            row.update(kind=kind.name, rewritten=rewritten)
        elif rewritten:
            row["rewritten"] = True
        return verdict.passed, row


@dataclass
class Sink:
    """Where finished rows go, the moment each is done (so a killed run resumes by id)."""

    paths: CorpusPaths
    counts: RunCounts = field(default_factory=RunCounts)
    budget_hit: bool = False

    def record(self, passed: bool, row: dict[str, Any]) -> None:
        if passed:
            append_jsonl(self.paths.accepted, row)
            self.counts.done += 1
        else:
            append_jsonl(self.paths.rejected, row)
            self.counts.rejected += 1

    def failure(self, seed_id: str, reason: str) -> None:
        append_jsonl(self.paths.failed, {"id": seed_id, "reason": reason, "time": time.time()})
        self.counts.failed += 1

    def status(self) -> str:
        c = self.counts
        return f"done {c.done} · rejected {c.rejected} · failed {c.failed}"
