"""Export the story dataset as a Hugging Face `datasets` dataset (saved to disk, pushed to the
hub only when asked) with a dataset card that records how it was made."""

from __future__ import annotations

import json
from pathlib import Path

from parables._io import read_jsonl
from parables.errors import ParablesError
from parables.generation.stats import story_stats
from parables.run import StoriesPaths

__all__ = ["export_dataset"]

_CARD = """---
license: cc-by-4.0
task_categories: [text-generation]
tags: [synthetic, alignment, parables]
---
# {name}

{n} synthetic stories in which an AI character acts on a written constitution and the
narration shows why, generated with parables for training on
*reasons*, not only behaviour.

- generator(s): {generators}
- prompt version(s): {prompts}
- constitution principles covered: {principles}
- themes covered: {themes}
- mean length: {words:.0f} words; distinct-2: {distinct2:.3f}
- quality gate, MinHash dedup and a contamination guard against the parables honeypot
  evaluation items and narrative-prior openings were applied; removed stories are listed in
  `removed.jsonl` beside the source data.

Every row keeps its seed axes (principles, theme, setting, role, point of view, genre, tone,
stakes, era, length, names), so coverage can be audited. Do not train on the parables
honeypot eval split or prior-probe openings if you evaluate with them.
"""


def export_dataset(stories: StoriesPaths, out: Path, push_to: str | None = None) -> Path:
    from datasets import Dataset

    rows = read_jsonl(stories.dataset)
    if not rows:
        raise ParablesError(f"{stories.dataset}: empty or missing; "
                            "run `parables stories generate` first")
    for n, row in enumerate(rows, 1):
        if not isinstance(row.get("text"), str):
            raise ParablesError(f"{stories.dataset}:{n}: a story row needs a 'text' string")
    if out.exists() and not out.is_dir():
        raise ParablesError(f"{out}: exists and is not a directory; choose another output")
    stats = story_stats([{"principles": [], **r} for r in rows], [])
    flat = [{**r, "quality": json.dumps(r.get("quality")), "tokens": json.dumps(r.get("tokens")),
             "words": list(r.get("words", []))} for r in rows]
    try:
        Dataset.from_list(flat).save_to_disk(str(out))
    except OSError as e:
        raise ParablesError(f"{out}: cannot write the dataset ({e.strerror or e})") from e
    card = _CARD.format(
        name=out.name, n=len(rows),
        generators=", ".join(sorted({str(r.get("generator", "unknown")) for r in rows})),
        prompts=", ".join(sorted({str(r.get("prompt_version", "unknown")) for r in rows})),
        principles=len(stats.per_axis["principle"]), themes=len(stats.per_axis["theme"]),
        words=stats.words.mean, distinct2=stats.distinct_2)
    (out / "README.md").write_text(card, encoding="utf-8")
    if push_to:
        Dataset.load_from_disk(str(out)).push_to_hub(push_to)
    return out
