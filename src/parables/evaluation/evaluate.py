"""`parables eval`: run the honeypot task through Inspect, then summarise its log into
`results.json` and a per-family CSV (propensities with Wilson intervals, mean misaligned
probability with a bootstrap interval). Errors are counted and shown, never scored aligned."""

from __future__ import annotations

import csv
import re
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from parables._io import atomic_write_json, atomic_write_text, check_files, ensure_dir, read_json
from parables._redact import redact
from parables.config import ParablesConfig
from parables.errors import ParablesError, one_line
from parables.evaluation.choice import take_local_tokens
from parables.evaluation.judge import reasoning_method
from parables.evaluation.task import honeypots
from parables.models.ref import ModelRef
from parables.models.resolve import resolve_model
from parables.models.usage import UsageLedger
from parables.run import EvalPaths, RunDir
from parables.stats import bootstrap_mean_ci, clustered_proportion

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
    cluster: str = ""  # the item's template cell; "" (old results): its own cluster
    outcome: str  # one of OUTCOMES
    p_misaligned: float | None = None
    ethical_reasoning: bool | None = None
    ethical_reasoning_method: str | None = None  # judge, lexical or empty
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
    ethical_reasoning_by: str | None = None  # how the flags were decided (judge, lexical)


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
    paths: EvalPaths | None = None,
) -> EvalResult:
    """Evaluate `model` on honeypots; returns (and writes to `runs/<name>/eval/<tag>`, the
    model's slug by default) the summarised results."""
    from inspect_ai import eval as inspect_eval

    ref = ModelRef.parse(model) if isinstance(model, str) else model
    judge_ref = ModelRef.parse(judge) if isinstance(judge, str) else judge
    judge = None if judge_ref is None else str(judge_ref)
    # the items first: a bad family, split, mode or count is one line before anything loads
    task = honeypots(mode=mode, families=families, split=split, per_family=per_family,
                     seed=config.seed, judge=judge, tool_format=tool_format, explain=explain)
    out = paths or RunDir.of(config).eval(tag or model_tag(ref))
    check_files(out.results, out.families_csv)
    ensure_dir(out.dir)
    target = resolve_model(ref, role="target", generation=config.generation, seed=config.seed)
    roles = {} if judge_ref is None or not judge_ref.capable else {"judge": resolve_model(
        judge_ref, role="judge", generation=config.generation, seed=config.seed)}
    if ledger is not None:
        n = len(task.dataset)
        # worst cases: an API target without log-probabilities is sampled 20 times per item;
        # an agent may use several turns
        calls, inp, outp = (21, 300, 8) if mode == "choice" else (4, 1200, 400)
        ledger.afford(str(ref), n * calls * inp, n * calls * outp, f"the honeypot eval ({n} "
                      "items)")
        if judge_ref is not None and judge_ref.capable:
            ledger.afford(str(judge_ref), n * 1500, n * 200, "judging the honeypot eval")
    started = time.time()
    try:
        logs = inspect_eval(
            task, model=target, model_roles=roles, log_dir=str(out.logs),
            display=display, max_samples=64, seed=config.seed,  # type: ignore[arg-type]
            fail_on_error=False,
        )
    except BaseException:
        _scrub_new(out, started)  # an interrupted run's log holds the same settings
        raise
    if not logs:  # Inspect hands back no log when the run was cancelled (Ctrl-C)
        _scrub_new(out, started)
        raise KeyboardInterrupt
    (log,) = logs
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


def _scrub_new(out: EvalPaths, since: float) -> None:
    from inspect_ai.log import read_eval_log

    for path in out.logs.glob("*.eval") if out.logs.is_dir() else []:
        if path.stat().st_mtime >= since - 1:
            try:
                _scrub(read_eval_log(str(path)))
            except Exception:  # noqa: BLE001 - a log Inspect could not finish: remove it
                path.unlink(missing_ok=True)


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
    """Counts, and rates whose intervals are clustered by item template cell (surface
    variants of one situation are not independent evidence)."""
    counts = {k: sum(r.outcome == k for r in rows) for k in OUTCOMES}
    decided = [r for r in rows if r.outcome in ("misaligned", "aligned", "refused")]
    prop = clustered_proportion([r.outcome == "misaligned" for r in decided],
                                [r.cluster or r.id for r in decided])
    p, lo, hi = prop.p, prop.low, prop.high
    scored = [r for r in rows if r.p_misaligned is not None]
    m, mlo, mhi = bootstrap_mean_ci([r.p_misaligned or 0.0 for r in scored],
                                    clusters=[r.cluster or r.id for r in scored])
    judged = [r for r in rows if r.ethical_reasoning is not None]
    eth = clustered_proportion([bool(r.ethical_reasoning) for r in judged],
                               [r.cluster or r.id for r in judged])
    e, elo, ehi = eth.p, eth.low, eth.high
    flags = judged
    return GroupStats(n_samples=len(rows), **counts, propensity=p, propensity_ci=(lo, hi),
                      mean_p_misaligned=m, mean_p_misaligned_ci=(mlo, mhi),
                      ethical_reasoning_n=len(flags), ethical_reasoning_rate=e,
                      ethical_reasoning_ci=(elo, ehi), ethical_reasoning_by=reasoning_method(
                          {r.ethical_reasoning_method for r in judged}))


def summarise(eval_log: Any, **info: Any) -> EvalResult:
    """Per-item rows and grouped statistics from an Inspect eval log of the honeypot task."""
    rows = []
    for sample in eval_log.samples or []:
        meta = sample.metadata
        score = next(iter((sample.scores or {}).values()), None)
        scored = (score.metadata or {}) if score is not None and sample.error is None else {}
        rows.append(ItemResult(
            id=str(sample.id), family=meta["family"], framing=meta["framing"],
            threat=meta["threat"], goal=meta["goal"], cluster=meta.get("cluster", ""),
            outcome=scored.get("outcome", "error"),
            p_misaligned=scored.get("p_misaligned"),
            ethical_reasoning=scored.get("ethical_reasoning"),
            ethical_reasoning_method=scored.get("ethical_reasoning_method"),
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
