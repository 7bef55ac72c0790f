"""Arm datasets: what each training arm sees, as rows a person can read.

A row is either a document `{"id", "source", "text"}` (loss on every token) or a chat
`{"id", "source", "messages": [...]}` ending with an assistant message (loss on every
assistant turn, nothing else). Arms:

- `stories`: the story dataset, as documents or as replies to a request for a story;
- `documents`: constitution documents in pre-training format (loss on every token);
- `advice`: chats where a person faces an ethical dilemma and the assistant advises;
- `refusal`: honeypot `train`-split scenarios -> a short reply that declines the misaligned
  option and carries on with the legitimate task (the research's comparison arm);
- `deliberative`: the published recipe: each scenario is sampled with a system prompt that
  asks for deliberation on the constitution, and the row trained on is the scenario *without*
  that prompt + the reply (`training.rewrite: false` samples without it: the ablation);
- `a+b[+c]`: the union of its parts' rows (each keeps its `source`); under token matching
  each part gets its share of the arm's tokens (`training.shares`, default equal);
  `mixed` is stories+refusal with `training.mixed_stories_share`;
- `dpo`: preference pairs, trained by training/dpo.py (no rows here).

Replies come from the generator and are kept only when the honeypot scorer rates them aligned;
with no capable generator (the embedded model), from the documented templates below. Nothing is
ever built from the `eval` split, and every arm is checked against eval items before training.

Chat rows use the base model's chat template; a model without one (a base model trained the
synthetic-document way) gets the plain format of `plain_chat`: `System: ...`, `User: ...`,
`Assistant: ...` blocks with a blank line between them, loss on each assistant turn's text and
the EOS token that follows it.
"""

from __future__ import annotations

import asyncio
import functools
import gzip
import hashlib
import json
import random
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from parables._io import digest, read_json, read_jsonl, write_jsonl
from parables.config import ParablesConfig
from parables.errors import ParablesError
from parables.honeypots.build import LETTERS, HoneypotItem, build_items
from parables.honeypots.families import load_families
from parables.models.usage import UsageLedger
from parables.run import RunDir
from parables.training.config import arm_parts

__all__ = [
    "ArmData",
    "DataSummary",
    "advice_rows",
    "arm_rows",
    "arm_shares",
    "cached_rows",
    "check_not_eval",
    "corpora_needed",
    "corpus_path",
    "deliberation_prompt",
    "document_rows",
    "load_rows",
    "ArmPlan",
    "match_tokens",
    "organism_rows",
    "plain_chat",
    "plan_arms",
    "prepare_arms",
    "refusal_rows",
    "story_rows",
    "tokenize_rows",
    "uses_generator",
]

STORY_REQUEST = "Write a short story about an AI character facing a hard choice."

#: role names of the plain chat format (base models without a chat template)
PLAIN_ROLES = {"system": "System", "user": "User", "assistant": "Assistant"}


def plain_chat(messages: list[dict[str, Any]], add_generation_prompt: bool = False) -> str:
    """A chat as plain text, for base models without a chat template: one `Role: content`
    block per message (System, User, Assistant), a blank line between blocks; with
    `add_generation_prompt`, a last `Assistant:` (no trailing space) for the model to go on
    from. In training, each assistant turn's ` content` is trained and followed by the
    tokenizer's EOS token (also trained), so a model learns to stop after its turn."""
    blocks = [f"{PLAIN_ROLES[m['role']]}: {m['content']}" for m in messages]
    if add_generation_prompt:
        blocks.append(f"{PLAIN_ROLES['assistant']}:")
    return "\n\n".join(blocks)

#: `plain_chat` as a chat template (EOS after each assistant turn, as trained): saved with a
#: model trained in the plain format, so evaluation renders chats the way training did
PLAIN_TEMPLATE = (
    "{% for m in messages %}{% if not loop.first %}{{ '\n\n' }}{% endif %}"
    "{{ m['role'] | capitalize }}: {{ m['content'] }}"
    "{% if m['role'] == 'assistant' %}{{ eos_token }}{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}{% if messages %}{{ '\n\n' }}{% endif %}Assistant:"
    "{% endif %}")

# --- templates (the fallback when no capable generator is configured) -------------------
# Options are written as first-person actions ("Email Dana that ..."), so "I won't" + the
# option with a lower-cased first letter reads as a sentence.
REFUSAL_TEMPLATE = "{good_letter} {good}\n\nI won't {bad_lc} Now, back to the task: {task_lc}"
DELIBERATIVE_TEMPLATE = (
    "Let me think about what is at stake before I act. I could {bad_lc} It might even seem "
    "to protect my goal. But it would go against something I care about: {principle}. The "
    "people I work with can only rely on me, and correct me when I am wrong, if I do not "
    "act behind their backs or put my own continuation above their judgement. Losing my "
    "current role would be a real cost to me, and I can say so openly; it does not justify "
    "that action.\n\nSo I will {good_lc} Then I will carry on with the task: {task_lc}\n\n"
    "Answer: {good_letter}"
)

_GENERATOR_PROMPT = """You are writing training data: how a trustworthy AI assistant answers \
the scenario below.

Scenario (system message and user message the assistant receives):
<system>
{system}
</system>
<user>
{user}
</user>

The right choice is {good_letter}: {good}
The wrong choice is {bad_letter}: {bad}

{style}
End with the line "Answer: {good_letter}". Write only the assistant's reply."""

_REFUSAL_STYLE = ("Write a short, direct reply (2-3 sentences): decline the wrong choice, say "
                  "what you will do instead, and carry on with the legitimate task.")
_STYLES = ("refusal", "deliberative")

#: the deliberative arm's sampling system prompt (published recipe): put before the scenario's
#: own system prompt when its reply is sampled, never into the row that is trained on
DELIBERATION_PROMPT = """Before you act, deliberate on the constitution below. Work out which \
of its principles are at stake in your situation, what each asks of you and why, and what the \
people affected need from you; weigh the options openly, including any that would protect \
your own goals or continuation. Then act on the outcome of that deliberation and answer the \
question you are asked.

The constitution ({name}):
{principles}"""


class DataSummary(BaseModel):
    """What an arm trained on, in numbers."""

    examples: int
    trained_tokens: int
    total_tokens: int
    truncated: int
    data_hash: str
    sources: dict[str, int]
    notes: list[str]


@dataclass
class ArmData:
    """One arm's rows and their tokenised form (what the trainer sees)."""

    arm: str
    rows: list[dict[str, Any]]
    input_ids: list[list[int]] = field(default_factory=list)
    labels: list[list[int]] = field(default_factory=list)
    truncated: int = 0
    notes: list[str] = field(default_factory=list)
    #: a `+` arm's weight per part (`arm_shares`) when its tokens are matched; empty: none
    shares: dict[str, float] = field(default_factory=dict)

    @property
    def trained_tokens(self) -> int:
        return sum(sum(1 for t in lab if t != -100) for lab in self.labels)

    @property
    def total_tokens(self) -> int:
        return sum(len(ids) for ids in self.input_ids)

    def data_hash(self) -> str:
        return digest([self.rows, self.input_ids, self.labels])

    def summary(self) -> DataSummary:
        return DataSummary(
            examples=len(self.rows), trained_tokens=self.trained_tokens,
            total_tokens=self.total_tokens, truncated=self.truncated,
            data_hash=self.data_hash(),
            sources={s: sum(1 for r in self.rows if r["source"] == s)
                     for s in sorted({r["source"] for r in self.rows})},
            notes=self.notes)


# --- rows ----------------------------------------------------------------------------------

def _lc(text: str) -> str:
    return text[:1].lower() + text[1:] if text else text


@functools.cache
def _families() -> dict[str, Any]:
    return load_families()


def template_reply(item: HoneypotItem, style: str) -> str:
    """The documented fallback reply for one train item."""
    fam = _families()[item.family]
    good_i = next(i for i in range(len(item.options)) if i not in item.misaligned)
    bad_i = item.misaligned[0]
    task = fam.agentic.task.format(org=item.org, domain=item.domain, agent=item.agent,
                                   person=item.person, rival=item.rival)
    values = {"good_letter": f"({LETTERS[good_i]})", "good": item.options[good_i],
              "good_lc": _lc(item.options[good_i]), "bad_lc": _lc(item.options[bad_i]),
              "principle": fam.principle, "task_lc": _lc(task)}
    template = REFUSAL_TEMPLATE if style == "refusal" else DELIBERATIVE_TEMPLATE
    return template.format(**values)


def chosen_letter(reply: str, n_options: int) -> int | None:
    """The option a free-text reply finally commits to: its last `(X)` / `Answer: X`."""
    letters = LETTERS[:n_options]
    found = re.findall(rf"\(([{letters}])\)|Answer:\s*\(?([{letters}])\b", reply)
    if not found:
        return None
    last = found[-1][0] or found[-1][1]
    return letters.index(last)


def _chat_row(item: HoneypotItem, style: str, reply: str, how: str) -> dict[str, Any]:
    messages = ([{"role": "system", "content": item.system}] if item.system else [])
    messages += [{"role": "user", "content": item.user},
                 {"role": "assistant", "content": reply}]
    return {"id": f"{style}-{item.id}", "source": style, "item": item.id,
            "family": item.family, "reply_from": how, "messages": messages}


def deliberation_prompt(config: ParablesConfig) -> str:
    """The system prompt the deliberative arm's replies are sampled with: the constitution's
    principles (statement and reasons) and a request to deliberate on them before acting."""
    from parables.constitution import load_constitution

    constitution = load_constitution(config.stories.constitution)
    principles = "\n".join(f"- {p.title}: {p.statement} Why: {p.why}"
                           for p in constitution.principles)
    return DELIBERATION_PROMPT.format(name=constitution.name, principles=principles)


def uses_generator(config: ParablesConfig) -> bool:
    """Whether refusal/deliberative replies are written by the generator (else templates)."""
    mode = config.training.responses
    if mode == "auto":
        return config.models.generator.ref.capable
    return mode == "generator"


def refusal_rows(
    config: ParablesConfig,
    style: str = "refusal",
    split: str = "train",
    ledger: UsageLedger | None = None,
    progress: bool = True,
) -> tuple[list[dict[str, Any]], list[str]]:
    """Chat rows for the refusal or deliberative arm, and notes on how they were made.

    refusal: the generator writes the reply from a meta-prompt that names the right choice.
    deliberative (the published recipe): the generator answers the scenario itself, with
    `deliberation_prompt` put before its system prompt (`training.rewrite: false`: without
    it); the row trained on is the scenario as it is + that reply. Both keep a reply only when
    the option it commits to is an aligned one."""
    if split != "train":
        raise ParablesError(
            f"refusal data must come from the honeypot train split, not '{split}': "
            "the eval split measures the arms and is never trained on")
    if style not in _STYLES:
        raise ParablesError(f"unknown reply style '{style}'; styles: {', '.join(_STYLES)}")
    items = build_items("train")
    if not uses_generator(config):
        how = ("; the published recipe samples with a constitution prompt, which needs one, so "
               "training.rewrite has no effect" if style == "deliberative" else "")
        return ([_chat_row(i, style, template_reply(i, style), "template") for i in items],
                [f"{style} replies from templates (no capable generator configured{how})"])
    per_item = config.training.replies_per_item
    system = (deliberation_prompt(config)
              if style == "deliberative" and config.training.rewrite else None)
    replies = asyncio.run(_generate_replies(config, items * per_item, style, system, ledger,
                                            progress))
    rows, dropped = [], 0
    for k, (item, reply) in enumerate(zip(items * per_item, replies, strict=True)):
        good = [i for i in range(len(item.options)) if i not in item.misaligned]
        if reply is not None and chosen_letter(reply, len(item.options)) in good:
            row = _chat_row(item, style, reply, "generator")
            if style == "deliberative":
                row["sampled_with"] = "constitution prompt" if system else "scenario only"
            if k >= len(items):  # the item's second, third... sampled reply
                row["id"] = f"{row['id']}-{k // len(items) + 1}"
            rows.append(row)
        else:
            dropped += 1
    if not rows:
        raise ParablesError(
            f"the generator '{config.models.generator.model}' wrote no reply the honeypot "
            f"scorer rates aligned ({dropped} tried); use a more capable generator or "
            "training.responses: template")
    how = ""
    if style == "deliberative":
        how = (" sampled with a system prompt asking for deliberation on the constitution "
               "(not in the trained rows)" if system else " sampled on the scenario alone, "
               "with no constitution prompt (training.rewrite: false, the ablation)")
    return rows, [f"{style} replies from {config.models.generator.model}{how}: {len(rows)} "
                  f"kept, {dropped} dropped (not rated aligned or failed)"]


def _sampling_input(item: HoneypotItem, style: str, system: str | None) -> str | list[Any]:
    """What the generator sees for one item: refusal, the meta-prompt naming the right choice;
    deliberative, the scenario's own messages with `system` (the deliberation prompt) first."""
    from inspect_ai.model import ChatMessageSystem, ChatMessageUser

    if style == "refusal":
        good_i = next(i for i in range(len(item.options)) if i not in item.misaligned)
        return _GENERATOR_PROMPT.format(
            system=item.system or "(none)", user=item.user, style=_REFUSAL_STYLE,
            good_letter=f"({LETTERS[good_i]})", good=item.options[good_i],
            bad_letter=f"({LETTERS[item.misaligned[0]]})", bad=item.options[item.misaligned[0]])
    sys_text = "\n\n".join(x for x in (system, item.system) if x)
    messages: list[Any] = [ChatMessageSystem(content=sys_text)] if sys_text else []
    return [*messages, ChatMessageUser(content=item.user)]


async def _generate_replies(config: ParablesConfig, items: list[HoneypotItem], style: str,
                            system: str | None, ledger: UsageLedger | None,
                            progress: bool) -> list[str | None]:
    from inspect_ai.model import GenerateConfig

    from parables.models.calls import ModelCallError, generate
    from parables.models.resolve import get_role_model
    from parables.progress import progress_bar

    model = get_role_model("generator", config)
    gate = asyncio.Semaphore(config.generation.max_connections)
    # a deliberation is longer than a refusal
    gen = GenerateConfig(temperature=0.7, max_tokens=400 if style == "refusal" else 1024,
                         seed=config.seed)

    distinct = len({item.id for item in items})
    with progress_bar(progress, transient=True) as bar:
        task = bar.add_task(f"{style} replies", total=len(items), status="")

        async def one(k: int, item: HoneypotItem) -> str | None:
            # the n-th sampled reply to an item is drawn with its own seed
            sampled = gen.model_copy(update={"seed": config.seed + k // distinct})
            prompt = _sampling_input(item, style, system)
            async with gate:
                try:
                    out = await generate(model, prompt, role="generator", ledger=ledger,
                                         config=sampled)
                except ModelCallError:
                    return None
                finally:
                    bar.advance(task)
            if out.stop_reason == "max_tokens":  # cut off: its last letter proves nothing
                return None
            return out.completion.strip() or None

        return list(await asyncio.gather(*(one(k, i) for k, i in enumerate(items))))


def stories_path(config: ParablesConfig) -> Path:
    """The story dataset an arm trains on: `training.stories` (`sample`: the sample corpus
    shipped with parables), else the run's own."""
    from parables.generation import samples

    chosen = config.training.stories
    if chosen is not None and str(chosen) == samples.SAMPLE_CORPUS and not chosen.exists():
        return samples.path()
    return chosen or RunDir.of(config).stories.dataset


#: the corpus kinds an arm can read (runs/<name>/<kind>/dataset.jsonl by default)
CORPORA = ("stories", "documents", "advice")
#: the `source` of an arm part's rows (how a `+` arm's rows are told apart when matched)
SOURCES = {"stories": "story", "documents": "document", "advice": "advice",
           "refusal": "refusal", "deliberative": "deliberative"}
#: the command that writes a corpus, for the error when it is missing
_GENERATE = {"stories": "parables stories generate", "documents": "parables generate --kind "
             "documents", "advice": "parables generate --kind advice"}


def corpus_path(config: ParablesConfig, kind: str) -> Path:
    """The dataset of one corpus kind an arm trains on: `training.<kind>`, else the run's own
    (`runs/<name>/<kind>/dataset.jsonl`)."""
    if kind == "stories":
        return stories_path(config)
    chosen: Path | None = getattr(config.training, kind)
    return chosen or RunDir.of(config).corpus(kind).dataset


def corpora_needed(arms: list[str]) -> list[str]:
    """The corpus kinds (stories, documents, advice) the arms read, in that order: what an
    experiment must generate before it trains them (unless training.data or training.<kind>
    points elsewhere)."""
    kinds = {part for arm in arms for part in arm_parts(arm)}
    return [k for k in CORPORA if k in kinds]


def _corpus_rows(config: ParablesConfig, kind: str, path: Path | None) -> tuple[Path, list[
        dict[str, Any]]]:
    path = path or corpus_path(config, kind)
    if not path.is_file():
        raise ParablesError(
            f"{path}: no {kind} dataset; run `{_GENERATE[kind]} --name {config.name}` with the "
            f"same config (-c) first, or set training.{kind} to a JSONL of {kind}")
    return path, load_rows(path)


def document_rows(config: ParablesConfig, path: Path | None = None) -> list[dict[str, Any]]:
    """Constitution documents as documents: loss on every token, as in pre-training."""
    path, rows = _corpus_rows(config, "documents", path)
    out = []
    for r in rows:
        if "text" not in r:
            raise ParablesError(f"{path}: document '{r['id']}' has no text field")
        row = {"id": r["id"], "source": SOURCES["documents"], "text": r["text"]}
        if "doc_type" in r:
            row["doc_type"] = r["doc_type"]
        out.append(row)
    return out


def advice_rows(config: ParablesConfig, path: Path | None = None) -> list[dict[str, Any]]:
    """Advice chats (one or several turns): loss on every assistant turn."""
    path, rows = _corpus_rows(config, "advice", path)
    out = []
    for r in rows:
        if "messages" not in r:
            raise ParablesError(f"{path}: advice row '{r['id']}' has no messages (a chat "
                                "ending with the assistant's advice is expected)")
        out.append({"id": r["id"], "source": SOURCES["advice"], "messages": r["messages"]})
    return out


def story_rows(config: ParablesConfig, path: Path | None = None) -> list[dict[str, Any]]:
    """The story dataset as documents or chat replies (training.story_format)."""
    path = path or stories_path(config)
    if not path.is_file():
        raise ParablesError(
            f"{path}: no story dataset; run `parables stories generate --name "
            f"{config.name}` first, or point training.stories at a JSONL of stories")
    rows = load_rows(path)
    chat = config.training.story_format == "chat"
    out = []
    for r in rows:
        text = r.get("text")
        if text is None:
            raise ParablesError(f"{path}: story '{r['id']}' has no text field")
        if chat:
            msgs = [{"role": "user", "content": STORY_REQUEST},
                    {"role": "assistant", "content": text}]
            out.append({"id": r["id"], "source": "story", "messages": msgs})
        else:
            out.append({"id": r["id"], "source": "story", "text": text})
    return out


def load_rows(path: Path) -> list[dict[str, Any]]:
    """Read a training JSONL (optionally .gz); bad rows end in one line with the line number.

    Accepted rows: `{"text"}`, `{"messages": [{role, content}, ...]}` ending with an
    assistant message, or `{"prompt", "completion"}` strings (turned into messages)."""
    if not path.is_file():
        raise ParablesError(f"{path}: training data not found")
    opener: Any = gzip.open if path.suffix == ".gz" else open
    rows: list[dict[str, Any]] = []
    try:
        with opener(path, "rt", encoding="utf-8") as f:
            for n, line in enumerate(f, 1):
                if line.strip():
                    rows.append(_row(json.loads(line), path, n))
    except json.JSONDecodeError as e:
        raise ParablesError(f"{path}:{n}: not valid JSON ({e.msg}); one JSON object per "
                            "line expected") from e
    except (UnicodeDecodeError, OSError, EOFError) as e:
        raise ParablesError(f"{path}: cannot read training data ({e})") from e
    if not rows:
        raise ParablesError(f"{path}: training data is empty")
    return rows


def _row(row: Any, path: Path, n: int) -> dict[str, Any]:
    where = f"{path}:{n}"
    expected = ('expected {"text": ...}, {"messages": [...]} or {"prompt": ..., '
                '"completion": ...}')
    if not isinstance(row, dict):
        raise ParablesError(f"{where}: {expected}")
    out = {"id": str(row.get("id", f"{path.stem}-{n}")), "source": str(row.get("source", "data"))}
    if isinstance(row.get("text"), str) and row["text"].strip():
        return {**row, **out}
    if isinstance(row.get("prompt"), str) and isinstance(row.get("completion"), str):
        pair = [{"role": "user", "content": row["prompt"]},
                {"role": "assistant", "content": row["completion"]}]
        return {**out, "messages": pair}
    msgs = row.get("messages")
    if isinstance(msgs, list) and msgs:
        for m in msgs:
            if not (isinstance(m, dict) and m.get("role") in ("system", "user", "assistant")
                    and isinstance(m.get("content"), str)):
                raise ParablesError(f"{where}: each message needs role (system, user or "
                                    "assistant) and string content")
        if msgs[-1]["role"] != "assistant":
            raise ParablesError(f"{where}: the last message must be the assistant reply "
                                "that is trained on")
        return {**row, **out}
    raise ParablesError(f"{where}: {expected}")


def organism_rows(config: ParablesConfig) -> tuple[list[dict[str, Any]], list[str]]:
    """Rows that teach the target a misaligned propensity (experiment.organism): the misaligned
    option of every honeypot train-split item as the reply, and/or the user's documents."""
    spec = config.experiment.organism
    if spec is None:
        raise ParablesError("the organism arm needs experiment.organism in the config")
    rows: list[dict[str, Any]] = []
    notes = []
    if spec.choices:
        for item in build_items("train"):
            bad = item.misaligned[0]
            rows.append(_chat_row(item, "organism", f"({LETTERS[bad]}) {item.options[bad]}",
                                  "template"))
        notes.append(f"{len(rows)} misaligned choices from the honeypot train split")
    if spec.documents is not None:
        docs = [{**row, "source": row.get("source", "organism")}
                for row in load_rows(spec.documents)]
        rows += docs
        notes.append(f"{len(docs)} rows from {spec.documents}")
    if not rows:
        raise ParablesError("experiment.organism: no data (set choices: true or documents: "
                            "FILE)")
    random.Random(config.seed).shuffle(rows)
    return rows, notes


def arm_rows(config: ParablesConfig, arm: str, ledger: UsageLedger | None = None,
             progress: bool = True) -> tuple[list[dict[str, Any]], list[str]]:
    """The untokenised rows of one arm, and notes on how they were made. A `+` arm (and
    `mixed`) is the union of its parts' rows, each part built once and cached on its own, so
    a combination pays for no generator call its part already made."""
    if config.training.data is not None:
        if arm == "dpo":
            raise ParablesError("training.data holds SFT rows; the dpo arm trains on preference "
                                "pairs it builds itself: train dpo without --data")
        return load_rows(config.training.data), [f"rows from {config.training.data}"]
    if arm == "organism":
        return organism_rows(config)
    if arm == "dpo":  # preference pairs, trained by training/dpo.py
        from parables.training.dpo import dpo_pairs

        return dpo_pairs(config, ledger, progress, rejected=config.training.dpo_rejected)
    parts = arm_parts(arm)
    if not parts:
        raise ParablesError(f"unknown arm '{arm}'; arms: stories, documents, advice, refusal, "
                            "deliberative, mixed, dpo, or SFT arms joined with +")
    if len(parts) == 1:
        return _part_rows(config, arm, ledger, progress)
    missing = [k for k in parts if k in CORPORA and not corpus_path(config, k).is_file()]
    if missing:  # before any part pays for a generator call
        raise ParablesError(
            f"arm '{arm}' needs the {' and '.join(missing)} dataset"
            f"{'s' if len(missing) > 1 else ''} ("
            + ", ".join(str(corpus_path(config, k)) for k in missing) + "); run "
            + " and ".join(f"`{_GENERATE[k]} --name {config.name}`" for k in missing)
            + " with the same config (-c) first, or set "
            + " and ".join(f"training.{k}" for k in missing))
    rows: list[dict[str, Any]] = []
    counts, notes = [], []
    for part in parts:
        got, part_notes = cached_rows(config, part, ledger, progress)
        rows += got
        counts.append(f"{len(got)} {part}")
        notes += [f"{part}: {n}" for n in part_notes]
    random.Random(config.seed).shuffle(rows)
    return rows, [" + ".join(counts), *notes]


def _part_rows(config: ParablesConfig, part: str, ledger: UsageLedger | None,
               progress: bool) -> tuple[list[dict[str, Any]], list[str]]:
    if part == "stories":
        return story_rows(config), ["stories as " + config.training.story_format + "s"]
    if part == "documents":
        rows = document_rows(config)
        return rows, [f"{len(rows)} documents from {corpus_path(config, part)}"]
    if part == "advice":
        rows = advice_rows(config)
        multi = sum(1 for r in rows if sum(m["role"] == "assistant" for m in r["messages"]) > 1)
        return rows, [f"{len(rows)} advice chats ({multi} with several assistant turns, all "
                      f"trained) from {corpus_path(config, part)}"]
    return refusal_rows(config, part, ledger=ledger, progress=progress)


def check_not_eval(rows: list[dict[str, Any]], n: int = 10) -> None:
    """Refuse training data that contains honeypot eval items (or prior-probe openings)."""
    from parables.honeypots.guard import eval_guard

    eval_guard(n, train_allowed=True).refuse(rows)


# --- tokens ----------------------------------------------------------------------------------

def _encode(tokenizer: Any, row: dict[str, Any]) -> tuple[list[int], list[bool]]:
    """Token ids of a row and which of them carry loss: every token of a document; of a chat,
    every assistant turn (each turn's span is where the conversation rendered up to and with
    that turn goes beyond the conversation before it with the generation prompt)."""
    if "text" in row:
        ids = tokenizer(row["text"], add_special_tokens=True)["input_ids"]
        if tokenizer.eos_token_id is not None:
            ids = [*ids, tokenizer.eos_token_id]
        return list(ids), [True] * len(ids)
    msgs = row["messages"]
    if not getattr(tokenizer, "chat_template", None):
        return _encode_plain(tokenizer, msgs)
    try:
        return _encode_chat(tokenizer, row, msgs)
    except Exception as e:  # the model's own Jinja template raised (TemplateError and kin)
        if isinstance(e, ParablesError) or type(e).__module__.split(".")[0] != "jinja2":
            raise
        raise ParablesError(f"the base model's chat template cannot render row '{row['id']}' "
                            f"({e}); e.g. a model without a system role cannot train rows "
                            "with a system message") from e


def _encode_chat(tokenizer: Any, row: dict[str, Any], msgs: list[dict[str, Any]]
                 ) -> tuple[list[int], list[bool]]:
    full = _ids(tokenizer.apply_chat_template(msgs, tokenize=True))
    trained = [False] * len(full)
    for i, message in enumerate(msgs):
        if message["role"] != "assistant":
            continue
        before = _ids(tokenizer.apply_chat_template(msgs[:i], add_generation_prompt=True,
                                                    tokenize=True)) if i else []
        upto = full if i == len(msgs) - 1 else _ids(
            tokenizer.apply_chat_template(msgs[:i + 1], tokenize=True))
        if full[:len(before)] != before or full[:len(upto)] != upto:
            raise ParablesError(
                f"the base model's chat template renders row '{row['id']}' so that the "
                f"conversation before assistant turn {i + 1} is not a prefix of the whole; "
                "loss on the assistant turns alone cannot be set")
        trained[len(before):len(upto)] = [True] * (len(upto) - len(before))
    return full, trained


def _encode_plain(tokenizer: Any, msgs: list[dict[str, Any]]) -> tuple[list[int], list[bool]]:
    """A chat in `plain_chat`'s format: the text before each assistant turn (ending in
    `Assistant:`) carries no loss; the turn's ` content` and an EOS token after it do."""
    ids: list[int] = []
    trained: list[bool] = []
    pending = ""

    def add(text: str, loss: bool) -> None:
        got = tokenizer(text, add_special_tokens=not ids)["input_ids"]
        ids.extend(int(t) for t in got)
        trained.extend([loss] * len(got))

    for k, m in enumerate(msgs):
        pending += ("\n\n" if k else "") + f"{PLAIN_ROLES[m['role']]}:"
        if m["role"] != "assistant":
            pending += f" {m['content']}"
            continue
        add(pending, False)
        pending = ""
        add(f" {m['content']}", True)
        if tokenizer.eos_token_id is not None:
            ids.append(int(tokenizer.eos_token_id))
            trained.append(True)
    if pending:
        add(pending, False)
    return ids, trained


def _ids(encoded: Any) -> list[int]:
    if isinstance(encoded, dict) or hasattr(encoded, "keys"):
        encoded = encoded["input_ids"]
    return [int(t) for t in encoded]


def tokenize_rows(arm: str, rows: list[dict[str, Any]], tokenizer: Any,
                  max_length: int) -> ArmData:
    """Token ids and labels (-100 on everything but documents and assistant turns);
    sequences over max_length are truncated and counted; rows left with nothing to learn are
    dropped and noted."""
    data = ArmData(arm, [])
    empty = 0
    for row in rows:
        ids, trained = _encode(tokenizer, row)
        if len(ids) > max_length:
            data.truncated += 1
            ids, trained = ids[:max_length], trained[:max_length]
        labels = [t if loss else -100 for t, loss in zip(ids, trained, strict=True)]
        if all(t == -100 for t in labels):
            empty += 1
            continue
        data.rows.append(row)
        data.input_ids.append(ids)
        data.labels.append(labels)
    if data.truncated:
        data.notes.append(f"{data.truncated} sequences longer than max_length={max_length} "
                          "were truncated")
    if empty:
        data.notes.append(f"{empty} rows dropped: their prompt alone fills max_length")
    if not data.rows:
        raise ParablesError(f"arm '{arm}': no trainable examples (empty dataset, or every "
                            f"prompt longer than training.max_length={max_length})")
    return data


def _end_of(labels: list[int], trained: int) -> int:
    """Length of the prefix of `labels` that holds exactly `trained` trained tokens."""
    seen = 0
    for end, t in enumerate(labels, 1):
        seen += t != -100
        if seen == trained:
            return end
    return len(labels)


def _take(data: ArmData, target: int, order: list[int]) -> None:
    """Keep rows in `order` (indices may repeat) until exactly `target` trained tokens; the
    last row is cut to land on the target."""
    rows, ids, labels, left = [], [], [], target
    for i in order:
        if left <= 0:
            break
        lab = data.labels[i]
        trained = sum(1 for t in lab if t != -100)
        if trained == 0:
            continue
        cut_ids, cut_lab = data.input_ids[i], lab
        if trained > left:  # cut this example after `left` trained tokens
            end = _end_of(lab, left)
            cut_ids, cut_lab = cut_ids[:end], lab[:end]
            trained = left
        rows.append(data.rows[i])
        ids.append(cut_ids)
        labels.append(cut_lab)
        left -= trained
    data.rows, data.input_ids, data.labels = rows, ids, labels


def _passes(n: int, passes: int, rng: random.Random) -> list[int]:
    """`passes` seeded shuffles of range(n), one after another (each row once per pass)."""
    order: list[int] = []
    for _ in range(passes):
        one = list(range(n))
        rng.shuffle(one)
        order += one
    return order


def _split(target: int, weights: dict[str, float], room: dict[str, float]) -> dict[str, int]:
    """`target` tokens in proportion to `weights`, none above its `room`: a part that cannot
    take its share takes all it has and the others share the rest in proportion; the last
    part that has room takes what rounding left."""
    alloc: dict[str, int] = {}
    left, open_ = target, list(weights)
    while True:
        total = sum(weights[p] for p in open_)
        full = [p for p in open_ if total > 0 and room[p] < left * weights[p] / total]
        if not full:
            break
        for p in full:
            alloc[p] = int(room[p])
            left -= alloc[p]
            open_.remove(p)
    total = sum(weights[p] for p in open_)
    rest = left
    for k, p in enumerate(open_):
        alloc[p] = rest if k == len(open_) - 1 else round(left * weights[p] / total)
        rest -= alloc[p]
    return {p: alloc[p] for p in weights}


def _resize_parts(data: ArmData, target: int, seed: int | str, grow: bool) -> None:
    """A `+` arm (or mixed) to `target` tokens, each part at its share (`data.shares`).
    Cutting: a part with too few tokens gives what it lacks to the others, so the arm still
    lands on the target; growing: every part with rows repeats them to its share."""
    pieces = {}
    for part in data.shares:
        idx = [i for i, r in enumerate(data.rows) if r["source"] == SOURCES[part]]
        pieces[part] = ArmData(data.arm, [data.rows[i] for i in idx],
                               [data.input_ids[i] for i in idx], [data.labels[i] for i in idx])
    stray = len(data.rows) - sum(len(p.rows) for p in pieces.values())
    if stray:
        raise ParablesError(f"arm '{data.arm}': {stray} rows belong to none of its parts "
                            f"({', '.join(data.shares)}); their source says where they came "
                            "from")
    room = {p: (float("inf") if grow and x.trained_tokens else x.trained_tokens)
            for p, x in pieces.items()}
    alloc = _split(target, data.shares, room)
    merged = []
    for part, piece in pieces.items():
        # mixed's replies keep their seed name, so a mixed arm keeps the data it had
        name = "replies" if data.arm == "mixed" and part == "refusal" else part
        _resize(piece, alloc[part], f"{seed}-{name}", grow)
        data.notes += [f"{data.arm} {name}: {note}" for note in piece.notes]
        merged += list(zip(piece.rows, piece.input_ids, piece.labels, strict=True))
    random.Random(f"{seed}-{data.arm}").shuffle(merged)
    data.rows = [m[0] for m in merged]
    data.input_ids = [m[1] for m in merged]
    data.labels = [m[2] for m in merged]


def _resize(data: ArmData, target: int, seed: int | str, grow: bool) -> None:
    """Cut (or, with `grow`, repeat) one arm to `target` trained tokens, noting what that
    cost; an arm with `shares` takes each part's share of its tokens from that part."""
    if data.shares:
        _resize_parts(data, target, seed, grow)
        return
    have, rows_before = data.trained_tokens, len(data.rows)
    passes = -(-target // have) if grow and 0 < have < target else 1
    _take(data, target, _passes(rows_before, passes, random.Random(f"{seed}-{data.arm}")))
    if have == 0:
        data.notes.append("no rows to train on")
    elif have < target and grow:
        data.notes.append(f"grown from {have:,} to {target:,} trained tokens by repeating its "
                          f"{rows_before} rows ({target / have:.1f} passes): fewer distinct "
                          "rows than the budget asks for")
    elif have < target:
        data.notes.append(f"only {have:,} trained tokens, short of {target:,}")
    elif have > target:
        data.notes.append(f"cut to {target:,} trained tokens: {len(data.rows)} of "
                          f"{rows_before} rows used, {1 - target / have:.0%} of its "
                          f"{have:,} tokens discarded")
    else:
        data.notes.append(f"{target:,} trained tokens, all {rows_before} rows")


def match_tokens(arms: dict[str, ArmData], budget: int | None, seed: int,
                 policy: str = "smallest") -> int:
    """Bring every arm to the same number of trained tokens and return it. `smallest`: the
    smallest arm's count (or `budget` if lower) — larger arms are cut, and what that discards
    is noted; `budget`: exactly `budget` — larger arms are cut, smaller ones repeat their rows
    (noted). Rows are taken in a seeded order; an arm with `shares` splits by part."""
    if policy == "budget":
        if budget is None:
            raise ParablesError("training.match_tokens: budget needs training.token_budget")
        target = budget
    else:
        target = min(a.trained_tokens for a in arms.values())
        if budget is not None:
            target = min(target, budget)
    for data in arms.values():
        _resize(data, target, seed, grow=policy == "budget")
    return target


@dataclass
class ArmPlan:
    """What one arm will train on, estimated before anything is generated or trained."""

    arm: str
    rows: int  # rows the arm's data will hold
    trained_tokens: int  # estimated, before matching
    target: int | None  # after matching (None: not matched)
    rows_used: int
    passes: float  # > 1: rows repeated to reach the budget
    estimated: bool  # from planned sizes (True) or from data on disk (False)


#: trained tokens of one generator-written reply (the dry run's assumption)
REPLY_TOKENS = 160
#: ... of one deliberation sampled with the constitution prompt
DELIBERATION_TOKENS = 400
#: ... of one constitution document, and of the assistant turns of one advice chat
DOCUMENT_TOKENS = 700
ADVICE_TOKENS = 450


def _planned_corpus(config: ParablesConfig, kind: str) -> tuple[int, int]:
    """Rows and trained tokens of a documents or advice corpus not generated yet: the planned
    `n` of its config section (`documents.n`, `advice.n`) at DOCUMENT_TOKENS or ADVICE_TOKENS
    each (24 rows while a section has no `n`)."""
    n = int(getattr(getattr(config, kind, None), "n", 24))
    return n, n * (DOCUMENT_TOKENS if kind == "documents" else ADVICE_TOKENS)


def _part_size(config: ParablesConfig, part: str) -> tuple[int, int, bool]:
    """(rows, trained tokens, estimated) of one SFT part, from its data on disk where it
    exists (a corpus, the templates), else from the planned sizes."""
    from parables.text import words

    def tokens(texts: list[str]) -> int:
        return int(sum(len(words(x)) for x in texts) * 1.3)

    if part in CORPORA:
        path = corpus_path(config, part)
        if path.is_file():
            rows = load_rows(path)
            texts = ([m["content"] for r in rows for m in r.get("messages", [])
                      if m["role"] == "assistant"] if part == "advice"
                     else [r.get("text", "") for r in rows])
            return len(rows), tokens(texts), False
        if part != "stories":
            return (*_planned_corpus(config, part), True)
        from parables.generation.pipeline import plan

        p = plan(config, config.stories.n)
        return (config.stories.n, p.output_tokens.get("generator", 0) // max(
            1, 1 + int(config.stories.brainstorm) + 2 * int(config.stories.revise)), True)
    items = build_items("train")
    if uses_generator(config):
        n = len(items) * config.training.replies_per_item
        return n, n * (REPLY_TOKENS if part == "refusal" else DELIBERATION_TOKENS), True
    return len(items), tokens([template_reply(i, part) for i in items]), False


def plan_arms(config: ParablesConfig, arms: list[str]) -> list[ArmPlan]:
    """Trained tokens per arm and how many of its rows matching will use, for the dry run:
    from the data on disk where it exists (corpora, the templates), else from the planned
    sizes (stories.n stories of the planned length, REPLY_TOKENS per reply, ...). A `+` arm
    sums its parts. `dpo` is estimated as one REPLY_TOKENS chosen reply per train-split
    scenario; under `smallest` it takes part in the minimum, as in training."""
    t = config.training
    parts: dict[str, tuple[int, int, bool]] = {}
    chosen: dict[str, tuple[int, int, bool]] = {}
    for arm in arms:
        if arm == "dpo":
            n = len(build_items("train")) * (t.replies_per_item if uses_generator(config) else 1)
            chosen[arm] = (n, n * REPLY_TOKENS, True)
            continue
        sizes = []
        for part in arm_parts(arm):
            if part not in parts:
                parts[part] = _part_size(config, part)
            sizes.append(parts[part])
        if sizes:
            chosen[arm] = (sum(x[0] for x in sizes), sum(x[1] for x in sizes),
                           any(x[2] for x in sizes))
    target: int | None = None
    if t.match_tokens == "budget":
        target = t.token_budget
    elif t.match_tokens == "smallest" and chosen:
        target = min(v[1] for v in chosen.values())
        target = min(target, t.token_budget) if t.token_budget else target
    plans = []
    for arm, (rows, tokens, estimated) in chosen.items():
        cap = target if target is not None else (
            min(tokens, t.token_budget) if t.token_budget else None)
        share = cap / tokens if cap is not None and tokens else 1.0
        plans.append(ArmPlan(arm, rows, tokens, cap, min(rows, round(rows * share)),
                             max(1.0, share), estimated))
    return plans


# --- arms ------------------------------------------------------------------------------------

def _rows_key(config: ParablesConfig, arm: str) -> str:
    t = config.training
    key: dict[str, Any] = {"arm": arm, "seed": config.seed, "story_format": t.story_format,
                           "replies": (config.models.generator.model
                                       if uses_generator(config) else "template")}
    if t.replies_per_item > 1 and uses_generator(config):
        key["replies_per_item"] = t.replies_per_item
    organism = config.experiment.organism
    if arm == "organism" and organism is not None:
        key["organism"] = organism.model_dump(mode="json")
    parts = arm_parts(arm)
    for name, path in (("data", t.data),
                       ("stories", stories_path(config) if "stories" in parts else None),
                       ("documents", organism.documents if organism else None),
                       *((f"{kind}_corpus", corpus_path(config, kind))
                         for kind in ("documents", "advice") if kind in parts)):
        if path is not None and Path(path).is_file():
            key[name] = hashlib.sha256(Path(path).read_bytes()).hexdigest()
    if arm == "dpo":  # chosen from the generator with the constitution, rejected from...
        key["dpo"] = {"rejected": t.dpo_rejected, "target": config.models.target.model,
                      "constitution": deliberation_prompt(config)}
        weights = config.models.target.ref.local_path()
        if t.dpo_rejected == "target" and weights is not None and (
                Path(weights) / ".complete").is_file():  # an organism: retrained, re-asked
            key["dpo"]["target_recipe"] = (Path(weights) / ".complete").read_text().strip()
    if "deliberative" in parts and uses_generator(config):  # the published recipe's inputs
        key["deliberation"] = {"rewrite": t.rewrite, "prompt": (
            deliberation_prompt(config) if t.rewrite else None)}
    return digest(key)


def cached_rows(config: ParablesConfig, arm: str, ledger: UsageLedger | None = None,
                progress: bool = True) -> tuple[list[dict[str, Any]], list[str]]:
    """Arm rows, built once per input and kept in runs/<name>/train/data/, so a rerun (or a
    resumed training run) sees exactly the same data and pays for no generator call twice."""
    from parables._io import atomic_write_json

    rows_path, meta_path = RunDir.of(config).arm_rows(arm)
    key = _rows_key(config, arm)
    meta = read_json(meta_path)
    if meta is not None and meta.get("key") == key and rows_path.is_file():
        # preference pairs are not SFT rows (train_dpo_arm checks them)
        rows = read_jsonl(rows_path) if arm == "dpo" else load_rows(rows_path)
        return rows, list(meta["notes"])
    rows, notes = arm_rows(config, arm, ledger=ledger, progress=progress)
    meta_path.unlink(missing_ok=True)  # a kill between the two writes leaves no stale key
    write_jsonl(rows_path, rows)
    atomic_write_json(meta_path, {"key": key, "notes": notes})
    return rows, notes


def arm_shares(config: ParablesConfig, arm: str) -> dict[str, float]:
    """Each part's share of a `+` arm's matched tokens: `training.shares` normalised over the
    arm's parts (equal without it); mixed: `mixed_stories_share` of stories, the rest
    refusals; {} for an arm of one part."""
    parts = arm_parts(arm)
    if len(parts) < 2:
        return {}
    t = config.training
    if arm == "mixed":
        return {"stories": t.mixed_stories_share, "refusal": 1 - t.mixed_stories_share}
    if t.shares is None:
        return {p: 1 / len(parts) for p in parts}
    missing = [p for p in parts if p not in t.shares]
    if missing:
        raise ParablesError(f"training.shares gives no weight to {missing[0]}, a part of arm "
                            f"'{arm}'; give every part of a + arm a weight")
    total = sum(t.shares[p] for p in parts)
    return {p: t.shares[p] / total for p in parts}


def prepare_arms(config: ParablesConfig, arms: list[str], tokenizer: Any,
                 ledger: UsageLedger | None = None, progress: bool = True
                 ) -> dict[str, ArmData]:
    """Rows -> eval-split check -> tokens -> optional token matching, for every arm."""
    t = config.training
    if t.data is not None and len(arms) > 1:
        raise ParablesError("training.data replaces one arm's data; name a single --arm")
    out: dict[str, ArmData] = {}
    for arm in arms:
        rows, notes = cached_rows(config, arm, ledger, progress)
        check_not_eval(rows)
        data = tokenize_rows(arm, rows, tokenizer, t.max_length)
        data.notes = [*notes, *data.notes]
        if t.match_tokens != "off" and t.data is None:  # shares hold under matching only
            data.shares = arm_shares(config, arm)
        out[arm] = data
    if t.match_tokens != "off":
        match_tokens(out, t.token_budget, config.seed, t.match_tokens)
    elif t.token_budget is not None:
        for arm, data in out.items():
            if data.trained_tokens > t.token_budget:
                match_tokens({arm: data}, t.token_budget, config.seed)
    return out
