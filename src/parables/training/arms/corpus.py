"""Corpus arms: train on a corpus a corpus kind wrote (stories, constitution documents,
difficult advice, or any kind registered in generation/kinds/ — each gets an arm of its name
with no edit here).

A corpus row with `text` becomes a document (loss on every token, as in pre-training), one
with `messages` a chat (loss on every assistant turn, nothing else). The corpus is
`training.<kind>` when that is set, else the run's own `runs/<name>/<kind>/dataset.jsonl`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from parables._io import file_sha
from parables.errors import ParablesError
from parables.training.arms.base import Arm, ArmContext, Missing, Rows, Size, estimated_tokens
from parables.training.rows import load_rows

__all__ = ["CorpusArm", "StoriesArm", "corpus_tokens"]


def corpus_tokens(rows: list[dict[str, Any]]) -> int:
    """Trained tokens of corpus rows, estimated from words: every word of a document, the
    assistant turns of a chat."""
    return estimated_tokens([m["content"] for r in rows for m in r.get("messages", [])
                             if m["role"] == "assistant"] + [r["text"] for r in rows
                                                             if "text" in r])


class CorpusArm(Arm):
    """Train on the dataset of one corpus kind. With a `request`, its texts are trained as
    replies to that request when `training.story_format` is chat (loss on the reply only),
    else as documents."""

    #: the user turn that asks for a text, under `training.story_format: chat` (None: the
    #: rows are trained as the corpus wrote them)
    request: str | None = None

    def __init__(self, kind: str, *, setting: str | None = None, source: str | None = None,
                 noun: str | None = None, shape: Literal["text", "messages"] | None = None,
                 carry: tuple[str, ...] = (), tokens_per_text: int | None = None) -> None:
        self.name = kind  # type: ignore[misc]
        self.kind = kind
        #: the training field that points at its dataset (`training.stories`); None: a
        #: plugin's kind, pointed at by `training.corpora.<kind>`
        self.setting = setting
        self.source = source or kind  # type: ignore[misc]
        self.noun = noun or f"{kind} rows"
        self.shape = shape  # the row shape the kind writes (None: either)
        self.carry = carry  # corpus fields kept on the training row
        self.tokens_per_text = tokens_per_text  # dry run, before the corpus exists
        self.summary = f"the {kind} corpus"  # type: ignore[misc]

    def corpora(self) -> list[str]:
        return [self.kind]

    # --- where the corpus is ----------------------------------------------------------------
    def path(self, ctx: ArmContext) -> Path:
        """`training.<kind>` (a shipped corpus's name, like `sample`, or a file), else
        `training.corpora.<kind>`, else the run's own `runs/<name>/<kind>/dataset.jsonl`."""
        from parables.generation.samples import shipped

        t = ctx.config.training
        own = shipped(getattr(t, self.setting)) if self.setting else None
        return own or t.corpora.get(self.kind) or ctx.run.corpus(self.kind).dataset

    def command(self) -> str:
        return f"parables generate --kind {self.kind}"

    def missing(self, ctx: ArmContext) -> list[Missing]:
        path = self.path(ctx)
        if path.is_file():
            return []
        return [Missing(self.kind, path, self.command(),
                        f"training.{self.setting or 'corpora.' + self.kind}")]

    def check(self, ctx: ArmContext) -> None:
        for m in self.missing(ctx):
            other = (f", or set {m.setting} to a JSONL of {self.kind}" if m.setting else "")
            raise ParablesError(
                f"{m.path}: no {self.kind} dataset; run `{m.command} --name {ctx.config.name}` "
                f"with the same config (-c) first{other}")

    # --- rows -----------------------------------------------------------------------------
    def rows(self, ctx: ArmContext) -> Rows:
        self.check(ctx)
        path = self.path(ctx)
        out = [self.row(r, path) for r in load_rows(path)]
        fmt = ctx.config.training.story_format
        if self.request is not None:
            if fmt == "chat":
                out = [{"id": r["id"], "source": r["source"], "messages": [
                    {"role": "user", "content": self.request},
                    {"role": "assistant", "content": r["text"]}]} for r in out]
            return out, [self.format_note(len(out), path, fmt)]
        chats = [r for r in out if "messages" in r]
        if not chats:
            return out, [f"{len(out)} {self.noun} from {path}"]
        multi = sum(1 for r in chats if sum(m["role"] == "assistant"
                                            for m in r["messages"]) > 1)
        return out, [f"{len(out)} {self.noun} ({multi} with several assistant turns, all "
                     f"trained) from {path}"]

    def format_note(self, n: int, path: Path, fmt: str) -> str:
        """The note on rows trained as documents or as replies to `request`."""
        return f"{n} {self.noun} from {path} as {fmt}s"

    def row(self, r: dict[str, Any], path: Path) -> dict[str, Any]:
        """One corpus row as a training row."""
        if self.shape != "messages" and "text" in r:
            row = {"id": r["id"], "source": self.source, "text": r["text"]}
        elif self.shape != "text" and "messages" in r:
            row = {"id": r["id"], "source": self.source, "messages": r["messages"]}
        else:
            expected = {"text": "no text field", "messages": "no messages (a chat ending with "
                        "the assistant's reply is expected)"}.get(self.shape or "",
                                                                 "neither text nor messages")
            raise ParablesError(f"{path}: {self.kind} row '{r['id']}' has {expected}")
        return {**row, **{k: r[k] for k in self.carry if k in r}}

    def key(self, ctx: ArmContext) -> dict[str, Any]:
        path = self.path(ctx)
        return {self.key_name(): file_sha(path)} if path.is_file() else {}

    def key_name(self) -> str:
        """The name its dataset's hash has in the key of its cached rows."""
        return f"{self.kind}_corpus"

    # --- dry run ----------------------------------------------------------------------------
    def size(self, ctx: ArmContext) -> Size:
        path = self.path(ctx)
        if path.is_file():
            rows = load_rows(path)
            return Size(len(rows), corpus_tokens(rows), False)
        from parables.generation.kinds import get_kind

        n = get_kind(self.kind).section(ctx.config).n
        if self.tokens_per_text is not None:
            return Size(n, n * self.tokens_per_text, True)
        return Size(n, _planned_tokens(ctx, self.kind, n), True)


class StoriesArm(CorpusArm):
    """The story dataset, as documents (loss on every token, like synthetic-document
    fine-tuning) or as a reply to a request for a story (`training.story_format: chat`).
    `training.stories: sample` trains on the sample corpus shipped with parables."""

    request = "Write a short story about an AI character facing a hard choice."

    def __init__(self) -> None:
        super().__init__("stories", setting="stories", source="story", noun="stories",
                         shape="text")

    def command(self) -> str:
        return "parables stories generate"

    def check(self, ctx: ArmContext) -> None:
        path = self.path(ctx)
        if not path.is_file():
            raise ParablesError(
                f"{path}: no story dataset; run `parables stories generate --name "
                f"{ctx.config.name}` first, or point training.stories at a JSONL of stories")

    def format_note(self, n: int, path: Path, fmt: str) -> str:
        return f"stories as {fmt}s"

    def key_name(self) -> str:
        return "stories"


def _planned_tokens(ctx: ArmContext, kind: str, n: int) -> int:
    """Trained tokens of `n` texts of a corpus not written yet: the generator's planned output
    for one text (the corpus plan's output over its calls per text)."""
    from parables.generation.kinds import get_kind
    from parables.generation.pipeline import plan

    section = get_kind(kind).section(ctx.config)
    p = plan(ctx.config, n, kind=kind)
    per_text = 1 + int(section.brainstorm) + 2 * int(section.revise)
    return p.output_tokens.get("generator", 0) // max(1, per_text)
