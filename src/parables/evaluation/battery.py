"""Every evaluation of an experiment run one way: an EvalSpec on a model gives an EvalRecord —
the per-item outcomes every paired comparison reads, whatever the evaluation was (parables'
honeypots, the narrative-prior probe, a multiple-choice suite, any Inspect task through a
declared score mapping, or a kind of your own: see evaluation/kinds/). Each kind also keeps
its own detailed artifact beside the record."""

from __future__ import annotations

from pydantic import ValidationError

from parables._io import atomic_write_json, ensure_dir
from parables.config import ParablesConfig
from parables.errors import ParablesError
from parables.evaluation.kinds import EVAL_KINDS, EvalSpec, get_eval_kind, kind_of
from parables.evaluation.kinds.inspect import KNOWN_TASKS
from parables.evaluation.record import EvalRecord, read_record
from parables.models.ref import ModelRef
from parables.models.usage import UsageLedger
from parables.run import EvalPaths

__all__ = ["KNOWN_TASKS", "EvalRecord", "eval_spec", "read_record", "run_eval"]


def run_eval(config: ParablesConfig, spec: EvalSpec, model: ModelRef, paths: EvalPaths, *,
             ledger: UsageLedger | None = None, display: str = "none") -> EvalRecord:
    """Run one evaluation of `model`, write its record (and detail) under `paths`."""
    ensure_dir(paths.dir)
    record = kind_of(spec).run(config, spec, model, paths, ledger=ledger, display=display)
    atomic_write_json(paths.record, record.model_dump(mode="json"))
    return record


def eval_spec(text: str) -> EvalSpec:
    """An evaluation named on the command line, checked (its files read, its packages found):
    `<kind>[:<arg>]` as that kind spells it (`prior`, `prior:FILE`, `suite:FILE`,
    `inspect:TASK` for a task in KNOWN_TASKS, `honeypots`), or a bare FILE.jsonl (a suite)."""
    name, _, arg = text.partition(":")
    if name not in EVAL_KINDS:
        name, arg = next(k.name for k in EVAL_KINDS.values() if k.bare), text
    kind = get_eval_kind(name)
    try:
        data = kind.from_text(arg)
    except ParablesError as e:
        raise ParablesError(f"--suite {text}: {e}") from e
    try:
        spec: EvalSpec = kind.spec.model_validate(data)
    except ValidationError as e:
        raise ParablesError(f"--suite {text}: {e.errors()[0]['msg']}") from e
    kind.check(spec)
    return spec
