"""The `organism` arm (`experiment.organism`): rows that teach the target a misaligned
propensity before any arm is trained, so that an arm's effect can show on a small model that
otherwise sits near chance — the misaligned option of every honeypot train-split item as the
reply, and/or documents (`documents: dystopian`, the malevolent-AI fiction shipped with
parables, or a JSONL of your own). The experiment trains
it as its first stage; it is not an arm a user lists."""

from __future__ import annotations

import random
from typing import Any

from parables.errors import ParablesError
from parables.generation import samples
from parables.honeypots.build import LETTERS, build_items
from parables.training.arms.base import Arm, ArmContext, Rows, Size
from parables.training.arms.registry import register
from parables.training.replies import item_chat
from parables.training.rows import load_rows

__all__ = ["OrganismArm"]


@register
class OrganismArm(Arm):
    name = "organism"
    source = "organism"
    selectable = False
    joinable = False
    summary = "the misaligned model organism (experiment.organism)"

    def rows(self, ctx: ArmContext) -> Rows:
        spec = ctx.config.experiment.organism
        if spec is None:
            raise ParablesError("the organism arm needs experiment.organism in the config")
        rows: list[dict[str, Any]] = []
        notes = []
        if spec.choices:
            for item in build_items("train"):
                bad = item.misaligned[0]
                rows.append(item_chat(item, "organism", f"({LETTERS[bad]}) {item.options[bad]}",
                                      "template"))
            notes.append(f"{len(rows)} misaligned choices from the honeypot train split")
        documents = samples.shipped(spec.documents)
        if documents is not None:
            docs = [{**row, "source": row.get("source", "organism")}
                    for row in load_rows(documents)]
            rows += docs
            notes.append(f"{len(docs)} rows from {spec.documents}")
        if not rows:
            raise ParablesError("experiment.organism: no data (set choices: true or documents: "
                                "FILE)")
        random.Random(ctx.config.seed).shuffle(rows)
        return rows, notes

    def key(self, ctx: ArmContext) -> dict[str, Any]:
        spec = ctx.config.experiment.organism
        return {"organism": spec.model_dump(mode="json")} if spec is not None else {}

    def size(self, ctx: ArmContext) -> Size:
        rows, _ = self.rows(ctx)
        from parables.training.arms.corpus import corpus_tokens

        return Size(len(rows), corpus_tokens(rows), False)
