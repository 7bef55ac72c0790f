"""`eval/<eval>/<tag>/record.json`: what one evaluation of one model leaves, item by item,
whatever the evaluation was. Every paired comparison reads these records."""

from __future__ import annotations

from pydantic import BaseModel

from parables._io import read_json
from parables.evaluation.evaluate import ItemResult
from parables.run import EvalPaths

__all__ = ["EvalRecord", "read_record"]


class EvalRecord(BaseModel):
    """`eval/<eval>/<tag>/record.json`: one model on one evaluation, item by item."""

    eval: str
    kind: str
    model: str
    items: list[ItemResult]
    detail: str | None = None  # the kind's own artifact (results.json, Inspect logs)


def read_record(paths: EvalPaths) -> EvalRecord | None:
    data = read_json(paths.record)
    return EvalRecord.model_validate(data) if data is not None else None
