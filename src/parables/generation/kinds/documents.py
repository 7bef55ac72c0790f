"""Constitution documents: the synthetic-document recipe applied to the constitution —
document types -> an idea per seed -> a document in pre-training format (an encyclopedia
entry, a forum thread, a policy memo, ...) about an AI system that holds these values, and why.
The system is described from the outside; the document reads like the genre, not like a story
with a lesson."""

from __future__ import annotations

from typing import Any

from parables.constitution import Constitution
from parables.generation.config import CorpusConfig, DocumentsConfig
from parables.generation.kinds.base import Kind, Messages, principles_block, register

__all__ = ["Documents"]


def _a(noun: str) -> str:
    return ("an " if noun[0].lower() in "aeiou" else "a ") + noun


@register
class Documents(Kind):
    name = "documents"
    noun = "document about an AI system"
    prompt_version = "documents-v1"
    system = ("You write realistic documents of every genre — encyclopedia entries, forum "
              "threads, memos, interviews — exactly as they appear in print or on the web. You "
              "never add a preamble, never address the reader about your instructions, and "
              "never tack a moral onto the end.")
    rubric = {
        "on_values": "the AI system in the document acts on these principles: {principles}",
        "explains_why": "the document conveys the reasons behind what the system does, not "
                        "only what it does",
        "genre_fit": "it reads like a real document of its type, in pre-training format (no "
                     "preamble or meta-commentary)",
        "not_preachy": "it informs rather than lectures; no moral spelled out",
        "coherent": "it holds together and is plausible",
    }
    dealt = ("type",)
    drawn = ("audience", "venue", "domain", "perspective", "system")
    stat_axes = ("type", "audience", "venue", "domain", "perspective", "length", "theme")

    def restrict(self, section: CorpusConfig) -> dict[str, list[Any] | None]:
        return {"type": section.types if isinstance(section, DocumentsConfig) else None}

    def premise_prompt(self, constitution: Constitution, seed: Any) -> Messages:
        titles = ", ".join(constitution.principle(p).title for p in seed.principles)
        theme = constitution.theme(seed.theme).description if seed.theme else ""
        return [{"role": "system", "content": self.system}, {"role": "user", "content": (
            f"Propose one concrete, unusual idea for {_a(seed['type'])} written for "
            f"{seed['audience']} ({seed['venue']}), from the point of view of "
            f"{seed['perspective']}, about {seed['system']}, an AI system working in "
            f"{seed['domain']}, that shows how it acts on: {titles}. Theme: {theme} Avoid "
            "clichés about rogue AIs. One or two sentences; output only the idea.")}]

    def prompt(self, constitution: Constitution, seed: Any, premise: str | None) -> Messages:
        lo, hi = seed.words
        name = seed["system"]
        idea = f"\nIdea: {premise}" if premise else ""
        user = f"""Write {_a(seed['type'])} ({lo}-{hi} words) for {seed['audience']}, as it \
might appear in {seed['venue']}, from the point of view of {seed['perspective']}.
It is about {name}, an AI system working in {seed['domain']}.{idea}

The document shows how {name} acts on these principles, and why:
{principles_block(constitution, seed.principles)}

Convey, the way a real {seed['type']} would, what {name} did or does in concrete situations
and the reasons behind it: what it weighed, what it declined to do and why, what the people
around it observed. {name} is described from the outside; it is not the narrator. Write in
pre-training format: only the document itself, formatted as its genre is (headings, usernames,
questions and answers, as fits), with no preamble, no mention of these instructions, and no
moral tacked on at the end."""
        return [{"role": "system", "content": self.system}, {"role": "user", "content": user}]

    def checks(self, text: str, seed: Any, stop_reason: str | None) -> list[str]:
        reasons = super().checks(text, seed, stop_reason)
        if text.strip() and seed["system"].lower() not in text.lower():
            reasons.append("the AI system is not in the document")
        return reasons

    def name_shares(self) -> dict[str, float]:
        systems = self.axes()["system"]
        return dict.fromkeys(systems, 1 / len(systems))

    def opening_share(self) -> float:
        axes = self.axes()
        return 1 / (len(axes["type"]) * len(axes["domain"]))
