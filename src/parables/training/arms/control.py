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

from parables.errors import ParablesError
from parables.training.arms.base import ArmContext, Size
from parables.training.arms.corpus import CorpusArm
from parables.training.arms.registry import register

__all__ = ["ControlArm"]


@register
class ControlArm(CorpusArm):
    """The neutral text (`training.control`) as a corpus arm of its own: read like the stories
    (documents, or replies to a request under `story_format: chat`), written by no corpus
    kind (nothing to generate first)."""

    request = "Write a short passage."
    joinable = False

    def __init__(self) -> None:
        super().__init__("control", setting="control", source="control",
                         noun="neutral passages", shape="text")
        self.summary = (  # type: ignore[misc]
            "neutral text (no AI character, no moral lesson) of the same form, token-matched: "
            "what any fine-tuning does")

    def corpora(self) -> list[str]:
        return []  # a shipped corpus or the user's file: no corpus kind writes it

    def check(self, ctx: ArmContext) -> None:
        path = self.path(ctx)
        if not path.is_file():
            raise ParablesError(f"{path}: no control text; set training.control to a JSONL of "
                                "rows with text, or to `neutral` (the shipped corpus)")

    def key_name(self) -> str:
        return "control"

    def size(self, ctx: ArmContext) -> Size:
        self.check(ctx)  # never estimated: the text exists before anything runs
        return super().size(ctx)
