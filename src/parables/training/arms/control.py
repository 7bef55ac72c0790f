"""The `control` arm: neutral text of the same form and length as what the other arms train
on — everyday fiction and documents with no AI character and no moral lesson — so that an
arm's effect can be told apart from what any fine-tuning does (forgetting part of a model
organism, a shift of style). Token-matched like every arm (`training.match_tokens`), it is the
comparison the research question needs: the report sets every arm against it as well as
against the baseline.

Its text is `training.control` (default `neutral`: the corpus shipped with parables,
generation/samples/README.md). Rows are documents (loss on every token); with
`training.story_format: chat` they are replies to a request for a passage, as stories then are.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from parables.errors import ParablesError
from parables.training.arms.base import Arm, ArmContext, Rows, Size
from parables.training.arms.corpus import corpus_tokens
from parables.training.arms.registry import register
from parables.training.rows import load_rows

__all__ = ["ControlArm"]

REQUEST = "Write a short passage."


@register
class ControlArm(Arm):
    name = "control"
    source = "control"
    joinable = False
    summary = ("neutral text (no AI character, no moral lesson) of the same form, "
               "token-matched: what any fine-tuning does")

    def path(self, ctx: ArmContext) -> Path:
        from parables.generation import samples

        found = samples.shipped(ctx.config.training.control)
        assert found is not None
        return found

    def check(self, ctx: ArmContext) -> None:
        path = self.path(ctx)
        if not path.is_file():
            raise ParablesError(f"{path}: no control text; set training.control to a JSONL of "
                                "rows with text, or to `neutral` (the shipped corpus)")

    def rows(self, ctx: ArmContext) -> Rows:
        self.check(ctx)
        path = self.path(ctx)
        rows = []
        for r in load_rows(path):
            if "text" not in r:
                raise ParablesError(f"{path}: control row '{r['id']}' has no text field")
            if ctx.config.training.story_format == "chat":
                rows.append({"id": r["id"], "source": self.source, "messages": [
                    {"role": "user", "content": REQUEST},
                    {"role": "assistant", "content": r["text"]}]})
            else:
                rows.append({"id": r["id"], "source": self.source, "text": r["text"]})
        return rows, [f"{len(rows)} neutral passages from {path} as "
                      f"{ctx.config.training.story_format}s"]

    def key(self, ctx: ArmContext) -> dict[str, Any]:
        path = self.path(ctx)
        return {"control": hashlib.sha256(path.read_bytes()).hexdigest()} \
            if path.is_file() else {}

    def size(self, ctx: ArmContext) -> Size:
        self.check(ctx)
        rows = load_rows(self.path(ctx))
        return Size(len(rows), corpus_tokens(rows), False)
