"""`parables audit fit`: train the stance classifier on a judge's annotations (optionally with
the shipped passages); `parables audit scan` then uses it (it looks for
`runs/<name>/audit/classifier.npz`, or take any file with `--classifier`)."""

from __future__ import annotations

from pydantic import BaseModel

from parables.audit.annotate import read_annotations
from parables.audit.classifier import StanceClassifier, fit_classifier
from parables.audit.config import FitConfig
from parables.audit.data import LABELS, training_set

__all__ = ["FitResult", "fit_annotations"]

CLASSIFIER = "classifier.npz"


class FitResult(BaseModel):
    path: str
    name: str
    passages: int
    labels: dict[str, int]
    cv_accuracy: float
    confusion: list[list[int]]


def fit_annotations(cfg: FitConfig) -> tuple[FitResult, StanceClassifier]:
    passages = read_annotations(cfg.annotations)
    n_annotated = len(passages)
    if cfg.with_shipped:
        passages = passages + training_set()
    name = (f"fitted on {n_annotated} annotated passages"
            + (" + 800 shipped" if cfg.with_shipped else "")
            + f" ({', '.join(str(p) for p in cfg.annotations)})")
    clf = fit_classifier(passages, name)
    clf.save(cfg.out)
    counts = {label: sum(p.label == label for p in passages) for label in LABELS}
    return FitResult(path=str(cfg.out), name=name, passages=len(passages), labels=counts,
                     cv_accuracy=clf.cv_accuracy,
                     confusion=[[int(v) for v in row] for row in clf.confusion]), clf
