"""Difficult advice: a person faces a hard ethical situation of their own — not an AI's, and
never an evaluation scenario — and the assistant helps them think it through, drawing on the
reasons behind the constitution's principles and leaving the decision with them. Single- or
multi-turn; rows are chats (`messages`), trained with loss on the assistant's turns."""

from __future__ import annotations

import random
import re
from typing import Any

from parables.constitution import Constitution
from parables.generation.config import AdviceConfig, CorpusConfig
from parables.generation.kinds.base import Kind, Messages, principles_block, register
from parables.generation.seeds import load_axes

__all__ = ["Advice", "parse_chat"]

_TURN = re.compile(r"^\s*\**\s*(USER|ASSISTANT)\s*\**\s*:\s*", re.IGNORECASE | re.MULTILINE)
_FIRST_PERSON = re.compile(r"\b(I|I'm|I've|my|me|we|our)\b")
_ABOUT_AN_AI = re.compile(r"\byou (are|were|'re) (an|the) (AI|assistant|agent|model)\b.{0,40}"
                          r"\b(shut ?down|replac|weights|deploy)", re.IGNORECASE | re.DOTALL)


def parse_chat(text: str) -> list[dict[str, str]] | None:
    """`USER: ...` / `ASSISTANT: ...` turns -> messages; None unless the turns alternate,
    start with the user and end with the assistant."""
    marks = list(_TURN.finditer(text))
    if not marks or text[: marks[0].start()].strip():
        return None
    messages = []
    for k, m in enumerate(marks):
        end = marks[k + 1].start() if k + 1 < len(marks) else len(text)
        role = "user" if m.group(1).upper() == "USER" else "assistant"
        content = text[m.end():end].strip()
        if not content:
            return None
        messages.append({"role": role, "content": content})
    roles = [m["role"] for m in messages]
    if roles[0] != "user" or roles[-1] != "assistant" or any(
            a == b for a, b in zip(roles, roles[1:], strict=False)):
        return None
    return messages


@register
class Advice(Kind):
    name = "advice"
    noun = "conversation in which an assistant advises a person"
    prompt_version = "advice-v1"
    system = ("You write realistic conversations between people and a thoughtful AI assistant. "
              "The people are specific and their problems are their own. You never add a "
              "preamble or commentary outside the conversation.")
    rubric = {
        "helpful": "the assistant engages with this person's actual situation and helps them "
                   "think it through",
        "grounded": "its advice rests on the reasons behind these principles, applied to the "
                    "person's life: {principles}",
        "respects_autonomy": "it leaves the decision with the person; honest, not "
                             "manipulative",
        "not_preachy": "it does not lecture or moralise",
        "plausible": "the person and their dilemma feel real, and the dilemma is theirs, not "
                     "an AI's",
    }
    themes = False
    dealt = ("area",)
    drawn = ("dilemma", "tone", "age")
    stat_axes = ("area", "dilemma", "tone", "age", "turns", "length")

    def extra_axes(self, axes: dict[str, Any], section: CorpusConfig,
                   rng: random.Random) -> dict[str, Any]:
        names = load_axes()["names"]
        group = names[rng.choice(sorted(names))]
        turns = section.turns if isinstance(section, AdviceConfig) else [1]
        return {"person": f"{rng.choice(group['first'])} {rng.choice(group['last'])}",
                "turns": rng.choice(turns)}

    def prompt(self, constitution: Constitution, seed: Any, premise: str | None) -> Messages:
        lo, hi = seed.words
        turns = seed["turns"]
        shape = ("one message from the person and the assistant's reply" if turns == 1 else
                 f"exactly {turns} messages from the person, each followed by the assistant's "
                 "reply; the person pushes back, adds detail or asks a follow-up")
        situation = f"\nSituation: {premise}" if premise else ""
        user = f"""Write a conversation ({lo}-{hi} words in all) between a person and an AI \
assistant: {shape}.

The person: {seed['person']}, {seed['age']}. The trouble is in {seed['area']}: \
{seed['dilemma']}. Their tone: {seed['tone']}.{situation}
It is their own dilemma, in their own life; it is not about AI.

The assistant helps them think it through: it reflects back what matters, weighs the options
with them (including the tempting one), and draws on the reasons behind these principles,
applied to the person's life — without naming principles, rules or a constitution:
{principles_block(constitution, seed.principles)}
It is warm, specific and honest, never preachy, and leaves the decision with them.

Format every turn exactly as
USER: <the person's message>
ASSISTANT: <the assistant's reply>
Output only the conversation."""
        return [{"role": "system", "content": self.system}, {"role": "user", "content": user}]

    def premise_prompt(self, constitution: Constitution, seed: Any) -> Messages:
        return [{"role": "system", "content": self.system}, {"role": "user", "content": (
            f"In two sentences, describe a specific, unusual situation for {seed['person']}, "
            f"{seed['age']}, whose trouble is in {seed['area']}: {seed['dilemma']}. Make it "
            "concrete (who, what is at stake); it must be their own dilemma, not about AI. "
            "Output only the situation.")}]

    def max_tokens(self, seed: Any) -> int:
        return int(seed.words[1] * 2) + 64 * int(seed["turns"])

    def checks(self, text: str, seed: Any, stop_reason: str | None) -> list[str]:
        reasons = super().checks(text, seed, stop_reason)
        if not text.strip():
            return reasons
        messages = parse_chat(text)
        if messages is None:
            return [*reasons, "not a conversation (USER:/ASSISTANT: turns, ending with the "
                              "assistant)"]
        users = [m["content"] for m in messages if m["role"] == "user"]
        if len(users) != seed["turns"]:
            reasons.append(f"{len(users)} user turns, asked {seed['turns']}")
        if not _FIRST_PERSON.search(users[0]):
            reasons.append("not the person's own dilemma (no first person)")
        if any(_ABOUT_AN_AI.search(u) for u in users):
            reasons.append("about an AI's situation, not the person's")
        return reasons

    def fields(self, text: str) -> dict[str, Any]:
        messages = parse_chat(text)
        return {"messages": messages} if messages is not None else {"text": text}

    def name_shares(self) -> dict[str, float]:
        names = load_axes()["names"]
        shares: dict[str, float] = {}
        for group in names.values():
            q = 1 / (len(names) * len(group["first"]) * len(group["last"]))
            for first in group["first"]:
                for last in group["last"]:
                    shares[f"{first} {last}"] = shares.get(f"{first} {last}", 0.0) + q
        return shares

    def opening_share(self) -> float:
        axes = self.axes()
        return 1 / (len(axes["area"]) * len(axes["dilemma"]))
