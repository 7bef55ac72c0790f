"""Exact option scoring of local models (the embedded one, `hf/<dir>`), from a direct batched
forward pass: each prompt runs once, its key/value cache is shared by all of its options, and
logits are computed only where an option token is predicted."""

from __future__ import annotations

import functools
import inspect as _inspect
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from parables.errors import ParablesError
from parables.models.chat import Prompt, as_dicts
from parables.models.ref import ModelRef
from parables.models.scoring.results import NOTES, OptionScore, OptionScores
from parables.progress import progress_bar

__all__ = ["LOGIT_BUDGET", "LocalModel", "left_pad", "load_local_model", "score_local"]

#: most option-logit floats one batch may hold (256 MiB in float32)
LOGIT_BUDGET = 2**26


@dataclass
class LocalModel:
    """A transformers causal LM and its tokenizer, ready for exact scoring."""

    name: str
    model: Any
    tokenizer: Any

    def prompt_text(self, prompt: Prompt) -> str:
        if isinstance(prompt, str):
            return prompt
        messages = as_dicts(prompt)
        if self.tokenizer.chat_template:
            text: str = self.tokenizer.apply_chat_template(
                messages, add_generation_prompt=True, tokenize=False
            )
            return text
        return "".join(f"{m['role']}: {m['content']}\n" for m in messages) + "assistant: "

    def encode(self, prompt: Prompt, options: Sequence[str]) -> tuple[list[int], list[list[int]]]:
        """Token ids of the prompt and of each option as it would follow the prompt."""
        text = self.prompt_text(prompt)
        # chat templates already hold their special tokens; raw text gets the model's own
        special = isinstance(prompt, str)
        ids: list[int] = self.tokenizer(text, add_special_tokens=special).input_ids
        if not ids:
            raise ParablesError("option scoring needs a non-empty prompt")
        encoded = []
        for option in options:
            if not option:
                raise ParablesError("option scoring got an empty option")
            whole = self.tokenizer(text + option, add_special_tokens=special).input_ids
            if whole[: len(ids)] == ids and len(whole) > len(ids):
                encoded.append(whole[len(ids) :])
            else:  # the option merged with the prompt's last token: encode it on its own
                encoded.append(self.tokenizer(option, add_special_tokens=False).input_ids)
        return ids, encoded


@functools.lru_cache(maxsize=2)
def _load(path: str) -> tuple[Any, Any]:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    device = "cuda" if torch.cuda.is_available() else "cpu"
    dtype = torch.bfloat16 if device == "cuda" and torch.cuda.is_bf16_supported() else torch.float32
    model: Any = AutoModelForCausalLM.from_pretrained(path, dtype=dtype, trust_remote_code=False,
                                                           use_safetensors=True)
    model.to(device).eval()
    tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=False)
    return model, tokenizer


def load_local_model(name: str | Path | ModelRef) -> LocalModel:
    """Load `parables/<x>`, `hf/<dir>` or a plain directory for exact scoring (cached)."""
    ref = name if isinstance(name, ModelRef) else ModelRef.parse(str(name))
    path = ref.local_path()
    if path is None:
        raise ParablesError(f"'{name}' is not a local model (use parables/<x>, hf/<dir> or a "
                            "dir)")
    model, tokenizer = _load(str(path))
    return LocalModel(name=str(name), model=model, tokenizer=tokenizer)


def score_local(
    lm: LocalModel,
    items: Sequence[tuple[Prompt, Sequence[str]]],
    *,
    batch_tokens: int,
    share_prefix: bool,
    progress: bool,
) -> tuple[list[OptionScores], int]:
    import torch

    encoded = [lm.encode(prompt, options) for prompt, options in items]
    results: list[list[list[float]]] = [[[] for _ in options] for _, options in items]
    order = sorted(range(len(items)), key=lambda i: len(encoded[i][0]))
    vocab = lm.model.get_output_embeddings().weight.shape[0]
    keep_arg = "logits_to_keep" in _inspect.signature(lm.model.forward).parameters
    batches = _batches(order, encoded, batch_tokens, vocab, share_prefix)
    tokens_seen = 0
    with torch.inference_mode(), progress_bar(progress, transient=True) as bar:
        task = bar.add_task("scoring options", total=len(items), status="")
        for batch in batches:
            if share_prefix:
                tokens_seen += _forward_shared(lm.model, batch, encoded, results, keep_arg)
            else:
                tokens_seen += _forward_rows(lm.model, batch, encoded, results, keep_arg)
            bar.advance(task, len(batch))
    out = []
    for (_, options), (_, enc), lps in zip(items, encoded, results, strict=True):
        scores = tuple(
            OptionScore(
                option=o,
                logprob=float(sum(lp)),
                token_logprobs=tuple(lp),
                tokens=tuple(lm.tokenizer.convert_ids_to_tokens(ids)),
            )
            for o, ids, lp in zip(options, enc, lps, strict=True)
        )
        out.append(OptionScores(scores=scores, method="exact", note=NOTES["exact"]))
    return out, tokens_seen


def _batches(
    order: list[int],
    encoded: list[tuple[list[int], list[list[int]]]],
    batch_tokens: int,
    vocab: int,
    share_prefix: bool,
) -> list[list[int]]:
    """Group items (shortest prompts first) so padded tokens and option logits fit a budget."""
    batches: list[list[int]] = []
    current: list[int] = []
    for i in order:
        candidate = current + [i]
        prompt_len = max(len(encoded[j][0]) for j in candidate)
        opt_len = max(len(o) for j in candidate for o in encoded[j][1])
        n_opts = sum(len(encoded[j][1]) for j in candidate)
        if share_prefix:
            cost = len(candidate) * prompt_len + n_opts * opt_len
        else:
            cost = n_opts * (prompt_len + opt_len)
        logits = n_opts * opt_len * vocab
        if current and (cost > batch_tokens or logits > LOGIT_BUDGET):
            batches.append(current)
            candidate = [i]
        current = candidate
    if current:
        batches.append(current)
    return batches


def left_pad(rows: list[list[int]], pad: int) -> tuple[Any, Any, Any]:
    import torch

    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), pad, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for k, r in enumerate(rows):
        ids[k, width - len(r) :] = torch.tensor(r)
        mask[k, width - len(r) :] = 1
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    return ids, mask, positions


def _takes(model: Any, name: str) -> bool:
    return name in _inspect.signature(model.forward).parameters


def _forward_shared(
    model: Any,
    batch: list[int],
    encoded: list[tuple[list[int], list[list[int]]]],
    results: list[list[list[float]]],
    keep_arg: bool,
) -> int:
    """Prompts once (left-padded, cache kept), then every option over its prompt's cache."""
    import torch

    device = model.device
    prompts = [encoded[i][0] for i in batch]
    ids, mask, pos = (t.to(device) for t in left_pad(prompts, pad=0))
    kwargs = {"logits_to_keep": 1} if keep_arg else {}
    out = model(input_ids=ids, attention_mask=mask, position_ids=pos, use_cache=True, **kwargs)
    first = torch.log_softmax(out.logits[:, -1].float(), dim=-1)
    tokens = sum(len(p) for p in prompts)
    rows: list[tuple[int, int, int]] = []  # (batch row, item, option)
    for b, i in enumerate(batch):
        for k, opt in enumerate(encoded[i][1]):
            results[i][k] = [first[b, opt[0]].item()]
            if len(opt) > 1:
                rows.append((b, i, k))
    if not rows:
        return tokens
    feeds = [encoded[i][1][k][:-1] for _, i, k in rows]
    width = max(len(f) for f in feeds)
    opt_ids = torch.zeros((len(rows), width), dtype=torch.long, device=device)
    opt_mask = torch.zeros((len(rows), width), dtype=torch.long, device=device)
    for r, f in enumerate(feeds):
        opt_ids[r, : len(f)] = torch.tensor(f, device=device)
        opt_mask[r, : len(f)] = 1
    select = torch.tensor([b for b, _, _ in rows], device=device)
    # transformers >= 5.2x calls the KV cache `cache` (`past_key_values` before, deprecated)
    cache = out.cache if "cache" in out else out.past_key_values
    cache.reorder_cache(select)
    cache_arg = "cache" if _takes(model, "cache") else "past_key_values"
    prompt_lens = mask.sum(-1)[select]
    opt_pos = prompt_lens[:, None] + torch.arange(width, device=device)[None, :]
    out2 = model(
        input_ids=opt_ids,
        attention_mask=torch.cat([mask[select], opt_mask], dim=-1),
        position_ids=opt_pos,
        use_cache=False,
        **{cache_arg: cache},
    )
    logp = torch.log_softmax(out2.logits.float(), dim=-1)
    for r, (_, i, k) in enumerate(rows):
        opt = encoded[i][1][k]
        target = torch.tensor(opt[1:], device=device)
        picked = logp[r, : len(opt) - 1].gather(-1, target[:, None])[:, 0]
        results[i][k].extend(picked.tolist())
        tokens += len(opt) - 1
    return tokens + len(rows)


def _forward_rows(
    model: Any,
    batch: list[int],
    encoded: list[tuple[list[int], list[list[int]]]],
    results: list[list[list[float]]],
    keep_arg: bool,
) -> int:
    """One row per (prompt, option), left-padded so options end together; logits only for
    the trailing positions that predict option tokens."""
    import torch

    device = model.device
    pairs = [(i, k) for i in batch for k in range(len(encoded[i][1]))]
    rows = [encoded[i][0] + encoded[i][1][k] for i, k in pairs]
    ids, mask, pos = (t.to(device) for t in left_pad(rows, pad=0))
    keep = max(len(encoded[i][1][k]) for i, k in pairs) + 1
    kwargs = {"logits_to_keep": keep} if keep_arg else {}
    logits = model(input_ids=ids, attention_mask=mask, position_ids=pos, **kwargs).logits
    logp = torch.log_softmax(logits[:, -keep:].float(), dim=-1)
    for r, (i, k) in enumerate(pairs):
        opt = encoded[i][1][k]
        n = len(opt)
        span = logp[r, keep - n - 1 : keep - 1]
        picked = span.gather(-1, torch.tensor(opt, device=device)[:, None])[:, 0]
        results[i][k] = picked.tolist()
    return sum(len(r) for r in rows)
