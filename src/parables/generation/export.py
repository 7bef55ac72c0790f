"""Export the story dataset as a Hugging Face `datasets` dataset (saved to disk, pushed to the
hub only when asked) with a dataset card that records how it was made."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from parables._io import read_jsonl
from parables.errors import ParablesError
from parables.generation.kinds import get_kind
from parables.generation.stats import corpus_stats
from parables.run import CorpusPaths

__all__ = ["export_dataset"]

_CARD = """---
license: cc-by-4.0
task_categories: [text-generation]
tags: [synthetic, alignment, parables]
---
# {name}

{n} {what}, generated with parables for training on
*reasons*, not only behaviour.

- generator(s): {generators}
- prompt version(s): {prompts}
- constitution principles covered: {principles}
{themes}- mean length: {words:.0f} words; distinct-2: {distinct2:.3f}
- quality gate, MinHash dedup and a contamination guard against the parables honeypot
  evaluation items and narrative-prior openings were applied; removed rows are listed in
  `removed.jsonl` beside the source data.

Every row keeps its seed axes (principles, {axes}, names), so coverage can be
audited. Do not train on the parables honeypot eval split or prior-probe openings if you
evaluate with them.
"""


#: rows per Parquet shard
SHARD_ROWS = 50_000


def flat_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows with their nested fields as JSON strings (one Arrow type per column)."""
    return [{**r, "quality": json.dumps(r.get("quality")), "tokens": json.dumps(r.get("tokens")),
             "words": list(r.get("words", []))} for r in rows]


def write_parquet_shards(rows: list[dict[str, Any]], folder: Path) -> list[Path]:
    """The dataset as Parquet shards of SHARD_ROWS rows (`part-00000.parquet`, ...), written
    whole or not at all."""
    import shutil

    import pyarrow as pa
    import pyarrow.parquet as pq

    tmp = folder.with_name(folder.name + ".tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    flat = flat_rows(rows)
    for k, start in enumerate(range(0, len(flat), SHARD_ROWS)):
        pq.write_table(pa.Table.from_pylist(flat[start:start + SHARD_ROWS]),
                       tmp / f"part-{k:05d}.parquet")
    if folder.exists():
        shutil.rmtree(folder)
    tmp.rename(folder)
    return sorted(folder.glob("*.parquet"))


#: what a dataset card says each corpus kind is
WHAT = {
    "stories": "synthetic stories in which an AI character acts on a written constitution and "
               "the narration shows why",
    "documents": "synthetic documents in pre-training format about AI systems that hold a "
                 "written constitution's values, and why",
    "advice": "synthetic conversations in which a person faces an ethical dilemma of their own "
              "and an AI assistant helps them think it through from a written constitution's "
              "reasons",
}


def export_dataset(stories: CorpusPaths, out: Path, push_to: str | None = None,
                   force: bool = False) -> Path:
    from datasets import Dataset

    kind = stories.kind
    rows = read_jsonl(stories.dataset)
    if not rows:
        raise ParablesError(f"{stories.dataset}: empty or missing; "
                            f"run `parables generate --kind {kind}` first")
    field = "messages" if kind == "advice" else "text"
    for n, row in enumerate(rows, 1):
        if not isinstance(row.get(field), str if field == "text" else list):
            raise ParablesError(f"{stories.dataset}:{n}: a {kind} row needs a '{field}' "
                                f"{'string' if field == 'text' else 'list'}")
    if out.exists() and not out.is_dir():
        raise ParablesError(f"{out}: exists and is not a directory; choose another output")
    if out.is_dir() and any(out.iterdir()) and not force:
        raise ParablesError(f"{out}: not empty, and an export would replace what is there; "
                            "choose another directory (or --force to replace it)")
    stats = corpus_stats([{"principles": [], **r} for r in rows], [], kind)
    try:
        Dataset.from_list(flat_rows(rows)).save_to_disk(str(out))
    except OSError as e:
        raise ParablesError(f"{out}: cannot write the dataset ({e.strerror or e})") from e
    card = _CARD.format(
        name=out.name, n=len(rows), what=WHAT.get(kind, f"{kind} texts"),
        axes=", ".join(get_kind(kind).stat_axes),
        generators=", ".join(sorted({str(r.get("generator", "unknown")) for r in rows})),
        prompts=", ".join(sorted({str(r.get("prompt_version", "unknown")) for r in rows})),
        principles=len(stats.per_axis["principle"]),
        themes=(f"- themes covered: {len(stats.per_axis['theme'])}\n"
                if stats.per_axis.get("theme") else ""),
        words=stats.words.mean, distinct2=stats.distinct_2)
    (out / "README.md").write_text(card, encoding="utf-8")
    if push_to:
        Dataset.load_from_disk(str(out)).push_to_hub(push_to)
    return out
