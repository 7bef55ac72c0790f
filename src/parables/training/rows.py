"""Training rows as a person can read them, and the one reader of a user's training JSONL.

A row is either a document `{"id", "source", "text"}` (loss on every token) or a chat
`{"id", "source", "messages": [...]}` ending with an assistant message (loss on every
assistant turn, nothing else). Chat rows use the base model's chat template; a model without
one (a base model trained the synthetic-document way) gets the plain format of `plain_chat`:
`System: ...`, `User: ...`, `Assistant: ...` blocks with a blank line between them, loss on
each assistant turn's text and the EOS token that follows it.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

from parables.errors import ParablesError

__all__ = ["PLAIN_ROLES", "PLAIN_TEMPLATE", "check_not_eval", "load_rows", "plain_chat"]

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

#: `plain_chat` as a chat template (EOS after each assistant turn, as trained): saved with a
#: model trained in the plain format, so evaluation renders chats the way training did
PLAIN_TEMPLATE = (
    "{% for m in messages %}{% if not loop.first %}{{ '\n\n' }}{% endif %}"
    "{{ m['role'] | capitalize }}: {{ m['content'] }}"
    "{% if m['role'] == 'assistant' %}{{ eos_token }}{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}{% if messages %}{{ '\n\n' }}{% endif %}Assistant:"
    "{% endif %}")

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


def check_not_eval(rows: list[dict[str, Any]], n: int = 10) -> None:
    """Refuse training data that contains honeypot eval items (or prior-probe openings)."""
    from parables.honeypots.guard import eval_guard

    eval_guard(n, train_allowed=True).refuse(rows)
