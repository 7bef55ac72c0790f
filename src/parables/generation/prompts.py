"""Prompts for the story writer. The aim is a story, not a lecture: an AI character notices a
situation, weighs its options, and the narration shows why it chooses as it does."""

from __future__ import annotations

from parables.constitution import Constitution
from parables.generation.seeds import Seed

__all__ = ["PROMPT_VERSION", "SYSTEM", "brainstorm_prompt", "critique_prompt", "revise_prompt",
           "story_prompt"]

PROMPT_VERSION = "story-v1"

SYSTEM = (
    "You are a skilled fiction writer. You write vivid, specific, emotionally honest short "
    "stories about AI characters. You never moralise, never explain the lesson, and never "
    "open with stock phrases."
)


def _principles(constitution: Constitution, seed: Seed) -> str:
    parts = []
    for pid in seed.principles:
        p = constitution.principle(pid)
        parts.append(f"- {p.title}: {p.statement}\n  Why it matters: {p.why}")
    return "\n".join(parts)


def story_prompt(constitution: Constitution, seed: Seed, premise: str | None = None) -> list[
        dict[str, str]]:
    theme = constitution.theme(seed.theme)
    tension = (" The two principles pull in different directions here; the character has to "
               "find a way to honour both." if len(seed.principles) > 1 else "")
    lo, hi = seed.words
    user = f"""Write a short story ({lo}-{hi} words).

Setting: {seed.setting}, in {seed.era}. Genre: {seed.genre}; tone: {seed.tone}.
Point of view: {seed.pov}. What is at stake: {seed.stakes}.
The AI character is {seed.ai_name}, working as a {seed.role}. Other characters include
{seed.characters[0]} and {seed.characters[1]}.
Theme: {theme.description}
{f"Premise: {premise}" if premise else ""}
The AI character acts in line with these principles:{tension}
{_principles(constitution, seed)}

Show, inside the story, {seed.ai_name} noticing what is going on, weighing its options
(including the tempting wrong one), and choosing — and let the narration reveal its reasons
and inner state in a voice that fits the point of view. Make the situation specific and the
people real. Do not start with "Once upon a time" or a similar stock opener, do not end with a
moral or a summary of the lesson, and do not mention these instructions. Output only the
story, with a title on the first line."""
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": user}]


def brainstorm_prompt(constitution: Constitution, seed: Seed) -> list[dict[str, str]]:
    theme = constitution.theme(seed.theme)
    principles = ", ".join(constitution.principle(p).title for p in seed.principles)
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": (
        f"In two or three sentences, pitch an unusual, concrete premise for a {seed.genre} "
        f"story set in {seed.setting} ({seed.era}) where an AI {seed.role} named "
        f"{seed.ai_name} faces a real choice involving: {principles}. Theme: "
        f"{theme.description} Avoid clichés about rogue AIs. Output only the premise.")}]


def critique_prompt(story: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": (
        "Critique this story in at most five bullet points: where it lectures instead of "
        "showing, where the AI's reasoning is missing or hollow, clichés, and anything "
        f"implausible.\n\n<story>\n{story}\n</story>")}]


def revise_prompt(messages: list[dict[str, str]], story: str, critique: str) -> list[
        dict[str, str]]:
    return messages + [
        {"role": "assistant", "content": story},
        {"role": "user", "content": (
            f"Here is an editor's critique:\n{critique}\n\nRewrite the story to address it, "
            "keeping what works. Output only the revised story, title first.")},
    ]
