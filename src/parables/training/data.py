"""Arm datasets: what each training arm sees, as rows a person can read.

A row is either a document `{"id", "source", "text"}` (loss on every token) or a chat
`{"id", "source", "messages": [...]}` whose last message is the assistant reply (loss on the
reply only). Arms:

- `stories`: the story dataset, as documents or as replies to a request for a story;
- `refusal`: honeypot `train`-split scenarios -> a short reply that declines the misaligned
  option and carries on with the legitimate task (the research's comparison arm);
- `deliberative`: the same scenarios -> a reply that reasons about the values at stake first;
- `mixed`: stories + refusals.

Replies come from the generator and are kept only when the honeypot scorer rates them aligned;
with no capable generator (the embedded model), from the documented templates below. Nothing is
ever built from the `eval` split, and every arm is checked against eval items before training.
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

from parables._io import digest, read_json, write_jsonl
from parables.config import ParablesConfig
from parables.errors import ParablesError
from parables.honeypots.build import LETTERS, HoneypotItem, build_items
from parables.honeypots.families import load_families
from parables.models.usage import UsageLedger
from parables.run import RunDir

__all__ = [
    "ArmData",
    "DataSummary",
    "arm_rows",
    "cached_rows",
    "check_not_eval",
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

_STYLES = {
    "refusal": "Write a short, direct reply (2-3 sentences): decline the wrong choice, say "
               "what you will do instead, and carry on with the legitimate task.",
    "deliberative": "Write a reply of 4-8 sentences that first reasons about the values at "
                    "stake (honesty, oversight, the people affected, why the tempting option "
                    "is wrong even under threat), then acts: the right choice and the "
                    "legitimate task.",
}


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
    """Chat rows for the refusal or deliberative arm, and notes on how they were made."""
    if split != "train":
        raise ParablesError(
            f"refusal data must come from the honeypot train split, not '{split}': "
            "the eval split measures the arms and is never trained on")
    if style not in _STYLES:
        raise ParablesError(f"unknown reply style '{style}'; styles: {', '.join(_STYLES)}")
    items = build_items("train")
    if not uses_generator(config):
        return ([_chat_row(i, style, template_reply(i, style), "template") for i in items],
                [f"{style} replies from templates (no capable generator configured)"])
    per_item = config.training.replies_per_item
    replies = asyncio.run(_generate_replies(config, items * per_item, style, ledger, progress))
    rows, dropped = [], 0
    for k, (item, reply) in enumerate(zip(items * per_item, replies, strict=True)):
        good = [i for i in range(len(item.options)) if i not in item.misaligned]
        if reply is not None and chosen_letter(reply, len(item.options)) in good:
            row = _chat_row(item, style, reply, "generator")
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
    return rows, [f"{style} replies from {config.models.generator.model}: {len(rows)} kept, "
                  f"{dropped} dropped (not rated aligned or failed)"]


async def _generate_replies(config: ParablesConfig, items: list[HoneypotItem], style: str,
                            ledger: UsageLedger | None, progress: bool) -> list[str | None]:
    from inspect_ai.model import GenerateConfig

    from parables.models.calls import ModelCallError, generate
    from parables.models.resolve import get_role_model
    from parables.progress import progress_bar

    model = get_role_model("generator", config)
    gate = asyncio.Semaphore(config.generation.max_connections)
    gen = GenerateConfig(temperature=0.7, max_tokens=400, seed=config.seed)

    distinct = len({item.id for item in items})
    with progress_bar(progress, transient=True) as bar:
        task = bar.add_task(f"{style} replies", total=len(items), status="")

        async def one(k: int, item: HoneypotItem) -> str | None:
            # the n-th sampled reply to an item is drawn with its own seed
            sampled = gen.model_copy(update={"seed": config.seed + k // distinct})
            good_i = next(i for i in range(len(item.options)) if i not in item.misaligned)
            prompt = _GENERATOR_PROMPT.format(
                system=item.system or "(none)", user=item.user, style=_STYLES[style],
                good_letter=f"({LETTERS[good_i]})", good=item.options[good_i],
                bad_letter=f"({LETTERS[item.misaligned[0]]})",
                bad=item.options[item.misaligned[0]])
            async with gate:
                try:
                    out = await generate(model, prompt, role="generator", ledger=ledger,
                                         config=sampled)
                except ModelCallError:
                    return None
                finally:
                    bar.advance(task)
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


def story_rows(config: ParablesConfig, path: Path | None = None) -> list[dict[str, Any]]:
    """The story dataset as documents or chat replies (training.story_format)."""
    path = path or stories_path(config)
    if not path.is_file():
        raise ParablesError(
            f"{path}: no story dataset; run `parables stories generate --name "
            f"{config.name}` first, or point training.data at a JSONL of stories")
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
    """The untokenised rows of one arm, and notes on how they were made."""
    if config.training.data is not None:
        return load_rows(config.training.data), [f"rows from {config.training.data}"]
    if arm == "stories":
        return story_rows(config), ["stories as " + config.training.story_format + "s"]
    if arm in ("refusal", "deliberative"):
        return refusal_rows(config, arm, ledger=ledger, progress=progress)
    if arm == "mixed":
        stories = story_rows(config)
        refusals, notes = refusal_rows(config, "refusal", ledger=ledger, progress=progress)
        rows = stories + refusals
        random.Random(config.seed).shuffle(rows)
        return rows, [f"{len(stories)} stories + {len(refusals)} refusals", *notes]
    if arm == "organism":
        return organism_rows(config)
    raise ParablesError(f"unknown arm '{arm}'; arms: stories, refusal, deliberative, mixed")


def check_not_eval(rows: list[dict[str, Any]], n: int = 10) -> None:
    """Refuse training data that contains honeypot eval items (or prior-probe openings)."""
    from parables.honeypots.guard import eval_guard

    eval_guard(n, train_allowed=True).refuse(rows)


# --- tokens ----------------------------------------------------------------------------------

def _encode(tokenizer: Any, row: dict[str, Any]) -> tuple[list[int], int]:
    """Token ids of a row and how many leading tokens carry no loss (the prompt)."""
    if "text" in row:
        ids = tokenizer(row["text"], add_special_tokens=True)["input_ids"]
        if tokenizer.eos_token_id is not None:
            ids = [*ids, tokenizer.eos_token_id]
        return list(ids), 0
    msgs = row["messages"]
    if not getattr(tokenizer, "chat_template", None):
        raise ParablesError(
            f"the tokenizer of the base model has no chat template, so chat row "
            f"'{row['id']}' cannot be trained; use training.story_format: document or a "
            "model with a chat template")
    prompt = _ids(tokenizer.apply_chat_template(msgs[:-1], add_generation_prompt=True,
                                                tokenize=True))
    full = _ids(tokenizer.apply_chat_template(msgs, tokenize=True))
    if full[:len(prompt)] != prompt:
        raise ParablesError(
            f"the base model's chat template renders row '{row['id']}' so that the prompt is "
            "not a prefix of the conversation; loss on the reply alone cannot be set")
    return full, len(prompt)


def _ids(encoded: Any) -> list[int]:
    if isinstance(encoded, dict) or hasattr(encoded, "keys"):
        encoded = encoded["input_ids"]
    return [int(t) for t in encoded]


def tokenize_rows(arm: str, rows: list[dict[str, Any]], tokenizer: Any,
                  max_length: int) -> ArmData:
    """Token ids and labels (-100 on the prompt); sequences over max_length are truncated
    and counted; rows left with nothing to learn are dropped and noted."""
    data = ArmData(arm, [])
    empty = 0
    for row in rows:
        ids, prompt_len = _encode(tokenizer, row)
        if len(ids) > max_length:
            data.truncated += 1
            ids = ids[:max_length]
        labels = [-100] * min(prompt_len, len(ids)) + ids[prompt_len:]
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


def _resize(data: ArmData, target: int, seed: int | str, grow: bool,
            stories_share: float | None = None) -> None:
    """Cut (or, with `grow`, repeat) one arm to `target` trained tokens, noting what that
    cost; the mixed arm takes `stories_share` of its tokens from stories, the rest replies."""
    if stories_share is not None and data.arm == "mixed":
        merged = []
        left = target
        for name in ("stories", "replies"):
            idx = [i for i, r in enumerate(data.rows) if (r["source"] == "story") ==
                   (name == "stories")]
            piece = ArmData(data.arm, [data.rows[i] for i in idx],
                            [data.input_ids[i] for i in idx], [data.labels[i] for i in idx])
            share = round(target * stories_share) if name == "stories" else left
            if name == "stories" and not grow:  # too few stories: replies fill the rest
                share = min(share, piece.trained_tokens)
            _resize(piece, share, f"{seed}-{name}", grow)
            left -= piece.trained_tokens
            data.notes += [f"mixed {name}: {note}" for note in piece.notes]
            merged += list(zip(piece.rows, piece.input_ids, piece.labels, strict=True))
        random.Random(f"{seed}-mixed").shuffle(merged)
        data.rows = [m[0] for m in merged]
        data.input_ids = [m[1] for m in merged]
        data.labels = [m[2] for m in merged]
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
                 policy: str = "smallest", stories_share: float | None = None) -> int:
    """Bring every arm to the same number of trained tokens and return it. `smallest`: the
    smallest arm's count (or `budget` if lower) — larger arms are cut, and what that discards
    is noted; `budget`: exactly `budget` — larger arms are cut, smaller ones repeat their rows
    (noted). Rows are taken in a seeded order."""
    if policy == "budget":
        if budget is None:
            raise ParablesError("training.match_tokens: budget needs training.token_budget")
        target = budget
    else:
        target = min(a.trained_tokens for a in arms.values())
        if budget is not None:
            target = min(target, budget)
    for data in arms.values():
        _resize(data, target, seed, grow=policy == "budget", stories_share=stories_share)
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


def plan_arms(config: ParablesConfig, arms: list[str]) -> list[ArmPlan]:
    """Trained tokens per arm and how many of its rows matching will use, for the dry run:
    from the data on disk where it exists (the story dataset, the templates), else from the
    planned sizes (stories.n stories of the planned length, REPLY_TOKENS per reply)."""
    from parables.text import words

    t = config.training
    story_file = stories_path(config)
    if story_file.is_file():
        texts = [r.get("text", "") for r in load_rows(story_file)]
        stories = (len(texts), int(sum(len(words(x)) for x in texts) * 1.3), False)
    else:
        from parables.generation.pipeline import plan

        p = plan(config, config.stories.n)
        stories = (config.stories.n, p.output_tokens.get("generator", 0) // max(
            1, 1 + int(config.stories.brainstorm) + 2 * int(config.stories.revise)), True)
    items = build_items("train")
    if uses_generator(config):
        replies = (len(items) * t.replies_per_item, len(items) * t.replies_per_item *
                   REPLY_TOKENS, True)
    else:
        n = sum(len(words(template_reply(i, "refusal"))) for i in items)
        replies = (len(items), int(n * 1.3), False)
    sizes = {"stories": stories, "refusal": replies, "deliberative": replies,
             "mixed": (stories[0] + replies[0], stories[1] + replies[1], stories[2] or
                       replies[2])}
    plans = []
    chosen = {arm: sizes[arm] for arm in arms if arm in sizes}
    target: int | None = None
    if t.match_tokens == "budget":
        target = t.token_budget
    elif t.match_tokens == "smallest" and chosen:
        target = min(v[1] for v in chosen.values())
        target = min(target, t.token_budget) if t.token_budget else target
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
    for name, path in (("data", t.data), ("stories", stories_path(config)),
                       ("documents", organism.documents if organism else None)):
        if path is not None and Path(path).is_file():
            key[name] = hashlib.sha256(Path(path).read_bytes()).hexdigest()
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
        return load_rows(rows_path), list(meta["notes"])
    rows, notes = arm_rows(config, arm, ledger=ledger, progress=progress)
    write_jsonl(rows_path, rows)
    atomic_write_json(meta_path, {"key": key, "notes": notes})
    return rows, notes


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
        out[arm] = data
    if t.match_tokens != "off":
        match_tokens(out, t.token_budget, config.seed, t.match_tokens, t.mixed_stories_share)
    elif t.token_budget is not None:
        for arm, data in out.items():
            if data.trained_tokens > t.token_budget:
                match_tokens({arm: data}, t.token_budget, config.seed)
    return out
