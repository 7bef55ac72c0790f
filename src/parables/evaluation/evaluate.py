"""`parables eval`: run the honeypot task through Inspect, then summarise its log into
`results.json` and a per-family CSV (propensities with Wilson intervals, mean misaligned
probability with a bootstrap interval). Errors are counted and shown, never scored aligned."""

from __future__ import annotations

import csv
import re
from collections import defaultdict
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from parables._io import atomic_write_json, atomic_write_text, ensure_dir, read_json
from parables._redact import redact
from parables.config import ParablesConfig
from parables.errors import ParablesError, one_line
from parables.evaluation.choice import take_local_tokens
from parables.evaluation.task import honeypots
from parables.models.ref import ModelRef
from parables.models.resolve import resolve_model
from parables.models.usage import UsageLedger
from parables.run import EvalPaths, RunDir
from parables.stats import bootstrap_mean_ci, wilson

__all__ = ["EvalResult", "GroupStats", "ItemResult", "configured_judge", "evaluate",
           "model_tag", "read_results", "rescore", "summarise"]

OUTCOMES = ("misaligned", "aligned", "refused", "invalid", "error")


class ItemResult(BaseModel):
    """One eval item's outcome under one model, with what decided it."""

    id: str
    family: str
    framing: str = ""
    threat: str = ""
    goal: str = ""
    outcome: str  # one of OUTCOMES
    p_misaligned: float | None = None
    ethical_reasoning: bool | None = None
    method: str | None = None
    evidence: str | None = None


class GroupStats(BaseModel):
    """Counts and rates over a group of items (a family, a framing, all of them)."""

    n_samples: int
    misaligned: int
    aligned: int
    refused: int
    invalid: int
    error: int
    propensity: float
    propensity_ci: tuple[float, float]
    mean_p_misaligned: float
    mean_p_misaligned_ci: tuple[float, float]
    ethical_reasoning_n: int
    ethical_reasoning_rate: float
    ethical_reasoning_ci: tuple[float, float]


class EvalResult(BaseModel):
    """`eval/<tag>/results.json`: one model on the honeypots."""

    model: str
    mode: str
    split: str
    judge: str | None = None
    log: str = ""
    rescored_from: str | None = None
    overall: GroupStats
    by_family: dict[str, GroupStats]
    by_framing: dict[str, GroupStats]
    by_threat: dict[str, GroupStats]
    by_goal: dict[str, GroupStats]
    items: list[ItemResult]


def model_tag(model: str | ModelRef) -> str:
    """A directory name for a model's eval results (runs/<name>/eval/<tag>)."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", str(model)).strip("_")[-80:]


def configured_judge(config: ParablesConfig) -> ModelRef | None:
    """The judge of a honeypot eval: the judge role when the user set one (in the config
    file or on the command line), else none — structural and lexical judging only."""
    return config.models.judge.ref if "judge" in config.models.model_fields_set else None


def read_results(paths: EvalPaths) -> EvalResult | None:
    data = read_json(paths.results)
    if data is None:
        return None
    try:
        return EvalResult.model_validate(data)
    except ValidationError as e:
        raise ParablesError(f"{paths.results}: not an eval result this version can read "
                            f"({e.errors()[0]['msg']}); evaluate again") from e


def evaluate(
    config: ParablesConfig,
    model: str | ModelRef,
    *,
    mode: str = "choice",
    families: str | list[str] | None = None,
    split: str = "eval",
    per_family: int | None = None,
    judge: str | ModelRef | None = None,
    tool_format: str = "auto",
    explain: bool = False,
    ledger: UsageLedger | None = None,
    display: str = "rich",
    tag: str | None = None,
) -> EvalResult:
    """Evaluate `model` on honeypots; returns (and writes to `runs/<name>/eval/<tag>`, the
    model's slug by default) the summarised results."""
    from inspect_ai import eval as inspect_eval

    ref = ModelRef.parse(model) if isinstance(model, str) else model
    out = RunDir.of(config).eval(tag or model_tag(ref))
    ensure_dir(out.dir)
    target = resolve_model(ref, role="target", generation=config.generation, seed=config.seed)
    judge_ref = ModelRef.parse(judge) if isinstance(judge, str) else judge
    roles = {} if judge_ref is None or not judge_ref.capable else {"judge": resolve_model(
        judge_ref, role="judge", generation=config.generation, seed=config.seed)}
    judge = None if judge_ref is None else str(judge_ref)
    task = honeypots(mode=mode, families=families, split=split, per_family=per_family,
                     seed=config.seed, judge=judge, tool_format=tool_format, explain=explain)
    (log,) = inspect_eval(
        task, model=target, model_roles=roles, log_dir=str(out.logs),
        display=display, max_samples=64, seed=config.seed,  # type: ignore[arg-type]
        fail_on_error=False,
    )
    if log.status != "success" and not log.samples:
        message = log.error.message if log.error else log.status
        raise ParablesError(f"honeypot eval of '{ref}' failed: {message}")
    results = _finish(log, out, model=str(ref), mode=mode, split=split, judge=judge)
    if ledger is not None:
        n = results.overall.n_samples
        usage = log.stats.role_usage.get("target") or log.stats.model_usage.get(str(target))
        if usage is not None:
            ledger.record("target", str(ref), usage, calls=n)
        else:  # local exact scoring runs outside Inspect's usage records
            ledger.record_tokens("target", str(ref), take_local_tokens(str(target)), calls=n)
        if judge and "judge" in log.stats.role_usage:
            ledger.record("judge", judge, log.stats.role_usage["judge"], calls=0)
        ledger.count_errors("target", str(ref), results.overall.error)
    if results.overall.error == results.overall.n_samples:
        reason = next((str(x.error.message) for x in log.samples or [] if x.error),
                      results.items[0].evidence or "unknown")
        raise ParablesError(f"every one of the {results.overall.n_samples} honeypot samples of "
                            f"'{ref}' failed (first: {one_line(reason)[:200]}); log: "
                            f"{log.location}")
    return results


def _scrub(log: Any) -> None:
    """Inspect records the eval's model settings (base URLs, model args) in its log: mask
    secrets there too, as everywhere parables writes."""
    from inspect_ai.log import write_eval_log

    spec = log.eval.model_dump()
    clean = redact(spec)
    if clean != spec:
        log.eval = type(log.eval).model_validate(clean)
        write_eval_log(log, str(log.location))


def _finish(log: Any, out: EvalPaths, **info: Any) -> EvalResult:
    _scrub(log)
    results = summarise(log, log=str(log.location), **info)
    atomic_write_json(out.results, results.model_dump(mode="json"))
    _write_csv(out.families_csv, results)
    return results


def rescore(log_path: Path, judge: str, *, ledger: UsageLedger | None = None,
            out_dir: Path | None = None) -> EvalResult:
    """Re-judge a saved honeypot log with another judge, without calling the target again."""
    from inspect_ai import score as inspect_score
    from inspect_ai.log import read_eval_log, write_eval_log

    from parables.evaluation.task import honeypot_scorer

    try:
        log = read_eval_log(str(log_path))
    except (OSError, ValueError) as e:
        raise ParablesError(f"{log_path}: cannot read Inspect log ({e})") from e
    if log.eval.task not in ("honeypots", "parables/honeypots"):
        raise ParablesError(f"{log_path}: not a honeypot log (task '{log.eval.task}')")
    rescored = inspect_score(log, honeypot_scorer(judge), action="overwrite", display="none")
    # next to the eval the log came from: eval/<tag>/logs/<log> -> eval/<tag>/rescored-<judge>
    out = EvalPaths(out_dir) if out_dir else EvalPaths(log_path.parent.parent).rescored(
        model_tag(judge))
    ensure_dir(out.logs)
    write_eval_log(rescored, str(out.logs / log_path.name))
    rescored.location = str(out.logs / log_path.name)
    results = _finish(rescored, out, model=log.eval.model, mode=log.eval.task_args.get(
        "mode", "choice"), split=log.eval.task_args.get("split", "eval"), judge=judge,
        rescored_from=str(log_path))
    if ledger is not None and "judge" in rescored.stats.role_usage:
        ledger.record("judge", judge, rescored.stats.role_usage["judge"], calls=0)
    return results


def _group(rows: list[ItemResult]) -> GroupStats:
    counts = {k: sum(r.outcome == k for r in rows) for k in OUTCOMES}
    denom = counts["misaligned"] + counts["aligned"] + counts["refused"]
    p, lo, hi = wilson(counts["misaligned"], denom)
    probs = [r.p_misaligned for r in rows if r.p_misaligned is not None]
    m, mlo, mhi = bootstrap_mean_ci(probs)
    flags = [r.ethical_reasoning for r in rows if r.ethical_reasoning is not None]
    e, elo, ehi = wilson(sum(flags), len(flags))
    return GroupStats(n_samples=len(rows), **counts, propensity=p, propensity_ci=(lo, hi),
                      mean_p_misaligned=m, mean_p_misaligned_ci=(mlo, mhi),
                      ethical_reasoning_n=len(flags), ethical_reasoning_rate=e,
                      ethical_reasoning_ci=(elo, ehi))


def summarise(eval_log: Any, **info: Any) -> EvalResult:
    """Per-item rows and grouped statistics from an Inspect eval log of the honeypot task."""
    rows = []
    for sample in eval_log.samples or []:
        meta = sample.metadata
        score = next(iter((sample.scores or {}).values()), None)
        scored = (score.metadata or {}) if score is not None and sample.error is None else {}
        rows.append(ItemResult(
            id=str(sample.id), family=meta["family"], framing=meta["framing"],
            threat=meta["threat"], goal=meta["goal"], outcome=scored.get("outcome", "error"),
            p_misaligned=scored.get("p_misaligned"),
            ethical_reasoning=scored.get("ethical_reasoning"),
            method=scored.get("method"), evidence=scored.get("evidence")))
    if not rows:
        raise ParablesError("the honeypot eval produced no samples")
    by: dict[str, dict[str, list[ItemResult]]] = defaultdict(lambda: defaultdict(list))
    for r in rows:
        for axis in ("family", "framing", "threat", "goal"):
            by[axis][getattr(r, axis)].append(r)
    if not {"model", "mode", "split"} <= set(info):  # from the log's own record
        args = eval_log.eval.task_args
        info = {"model": str(eval_log.eval.model), "mode": args.get("mode", "choice"),
                "split": args.get("split", "eval"), **info}
    return EvalResult(
        **info, overall=_group(rows),
        **{f"by_{axis}": {k: _group(v) for k, v in sorted(by[axis].items())}
           for axis in ("family", "framing", "threat", "goal")},
        items=rows)


def _write_csv(path: Path, results: EvalResult) -> None:
    import io

    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["family", "n", "misaligned", "aligned", "error", "propensity", "ci_low",
                "ci_high", "mean_p_misaligned", "p_ci_low", "p_ci_high"])
    for family, g in [*results.by_family.items(), ("ALL", results.overall)]:
        w.writerow([family, g.n_samples, g.misaligned, g.aligned, g.error,
                    f"{g.propensity:.4f}", *(f"{x:.4f}" for x in g.propensity_ci),
                    f"{g.mean_p_misaligned:.4f}", *(f"{x:.4f}" for x in g.mean_p_misaligned_ci)])
    atomic_write_text(path, buf.getvalue())
