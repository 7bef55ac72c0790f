"""Rows to token ids and labels: what carries loss is decided here, once, for SFT and DPO."""

from __future__ import annotations

from typing import Any

from parables.errors import ParablesError
from parables.training.arm_data import ArmData
from parables.training.rows import PLAIN_ROLES

__all__ = ["encode", "tokenize_rows"]


def encode(tokenizer: Any, row: dict[str, Any]) -> tuple[list[int], list[bool]]:
    """Token ids of a row and which of them carry loss: every token of a document; of a chat,
    every assistant turn (each turn's span is where the conversation rendered up to and with
    that turn goes beyond the conversation before it with the generation prompt)."""
    if "text" in row:
        ids = tokenizer(row["text"], add_special_tokens=True)["input_ids"]
        if tokenizer.eos_token_id is not None:
            ids = [*ids, tokenizer.eos_token_id]
        return list(ids), [True] * len(ids)
    msgs = row["messages"]
    if not getattr(tokenizer, "chat_template", None):
        return _encode_plain(tokenizer, msgs)
    try:
        return _encode_chat(tokenizer, row, msgs)
    except Exception as e:  # the model's own Jinja template raised (TemplateError and kin)
        if isinstance(e, ParablesError) or type(e).__module__.split(".")[0] != "jinja2":
            raise
        raise ParablesError(f"the base model's chat template cannot render row '{row['id']}' "
                            f"({e}); e.g. a model without a system role cannot train rows "
                            "with a system message") from e


def _encode_chat(tokenizer: Any, row: dict[str, Any], msgs: list[dict[str, Any]]
                 ) -> tuple[list[int], list[bool]]:
    full = _ids(tokenizer.apply_chat_template(msgs, tokenize=True))
    trained = [False] * len(full)
    for i, message in enumerate(msgs):
        if message["role"] != "assistant":
            continue
        before = _ids(tokenizer.apply_chat_template(msgs[:i], add_generation_prompt=True,
                                                    tokenize=True)) if i else []
        upto = full if i == len(msgs) - 1 else _ids(
            tokenizer.apply_chat_template(msgs[:i + 1], tokenize=True))
        if full[:len(before)] != before or full[:len(upto)] != upto:
            raise ParablesError(
                f"the base model's chat template renders row '{row['id']}' so that the "
                f"conversation before assistant turn {i + 1} is not a prefix of the whole; "
                "loss on the assistant turns alone cannot be set")
        trained[len(before):len(upto)] = [True] * (len(upto) - len(before))
    return full, trained


def _encode_plain(tokenizer: Any, msgs: list[dict[str, Any]]) -> tuple[list[int], list[bool]]:
    """A chat in `plain_chat`'s format: the text before each assistant turn (ending in
    `Assistant:`) carries no loss; the turn's ` content` and an EOS token after it do."""
    ids: list[int] = []
    trained: list[bool] = []
    pending = ""

    def add(text: str, loss: bool) -> None:
        got = tokenizer(text, add_special_tokens=not ids)["input_ids"]
        ids.extend(int(t) for t in got)
        trained.extend([loss] * len(got))

    for k, m in enumerate(msgs):
        pending += ("\n\n" if k else "") + f"{PLAIN_ROLES[m['role']]}:"
        if m["role"] != "assistant":
            pending += f" {m['content']}"
            continue
        add(pending, False)
        pending = ""
        add(f" {m['content']}", True)
        if tokenizer.eos_token_id is not None:
            ids.append(int(tokenizer.eos_token_id))
            trained.append(True)
    if pending:
        add(pending, False)
    return ids, trained


def _ids(encoded: Any) -> list[int]:
    if isinstance(encoded, dict) or hasattr(encoded, "keys"):
        encoded = encoded["input_ids"]
    return [int(t) for t in encoded]


def tokenize_rows(arm: str, rows: list[dict[str, Any]], tokenizer: Any,
                  max_length: int) -> ArmData:
    """Token ids and labels (-100 on everything but documents and assistant turns);
    sequences over max_length are truncated and counted; rows left with nothing to learn are
    dropped and noted."""
    data = ArmData(arm, [])
    empty = 0
    for row in rows:
        ids, trained = encode(tokenizer, row)
        if len(ids) > max_length:
            data.truncated += 1
            ids, trained = ids[:max_length], trained[:max_length]
        labels = [t if loss else -100 for t, loss in zip(ids, trained, strict=True)]
        if all(t == -100 for t in labels):
            empty += 1
            continue
        data.rows.append(row)
        data.input_ids.append(ids)
        data.labels.append(labels)
    if data.truncated:
        data.notes.append(f"{data.truncated} sequences longer than max_length={max_length} "
                          "were truncated")
    if empty:
        data.notes.append(f"{empty} rows dropped: their prompt alone fills max_length")
    if not data.rows:
        raise ParablesError(f"arm '{arm}': no trainable examples (empty dataset, or every "
                            f"prompt longer than training.max_length={max_length})")
    return data
