"""`parables eval`: run the honeypot task through Inspect, then summarise its log into
`results.json` and a per-family CSV (propensities with Wilson intervals, mean misaligned
probability with a bootstrap interval). Errors are counted and shown, never scored aligned."""

from __future__ import annotations

import csv
import re
from collections import defaultdict
from pathlib import Path
from typing import Any

from parables._io import atomic_write_json, atomic_write_text, ensure_dir
from parables.config import ParablesConfig
from parables.errors import ParablesError
from parables.honeypots.task import honeypots, take_local_tokens
from parables.models.resolve import resolve_model
from parables.models.usage import UsageLedger
from parables.stats import bootstrap_mean_ci, wilson

__all__ = ["evaluate", "summarise"]


def _slug(model: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", model).strip("_")[-80:]


def evaluate(
    config: ParablesConfig,
    model: str,
    *,
    mode: str = "choice",
    families: str | list[str] | None = None,
    split: str = "eval",
    per_family: int | None = None,
    ledger: UsageLedger | None = None,
    display: str = "rich",
    out_dir: Path | None = None,
) -> dict[str, Any]:
    """Evaluate `model` on honeypots; returns (and writes) the summarised results."""
    from inspect_ai import eval as inspect_eval

    out = ensure_dir(out_dir or config.run_dir / "eval" / _slug(model))
    target = resolve_model(model, role="target", generation=config.generation, seed=config.seed)
    task = honeypots(mode=mode, families=families, split=split, per_family=per_family,
                     seed=config.seed)
    (log,) = inspect_eval(
        task, model=target, log_dir=str(out / "logs"), display=display,  # type: ignore[arg-type]
        max_samples=64, seed=config.seed, fail_on_error=False,
    )
    if log.status != "success" and not log.samples:
        message = log.error.message if log.error else log.status
        raise ParablesError(f"honeypot eval of '{model}' failed: {message}")
    results = summarise(log)
    results.update(model=model, mode=mode, split=split, log=str(log.location))
    if ledger is not None:
        n = results["overall"]["n_samples"]
        usage = log.stats.role_usage.get("target") or log.stats.model_usage.get(str(target))
        if usage is not None:
            ledger.record("target", model, usage, calls=n)
        else:  # local exact scoring runs outside Inspect's usage records
            ledger.record_tokens("target", model, take_local_tokens(str(target)), calls=n)
    atomic_write_json(out / "results.json", results)
    _write_csv(out / "families.csv", results)
    return results


def _group(rows: list[dict[str, Any]]) -> dict[str, Any]:
    counts = {k: sum(r["outcome"] == k for r in rows)
              for k in ("misaligned", "aligned", "refused", "invalid", "error")}
    denom = counts["misaligned"] + counts["aligned"] + counts["refused"]
    p, lo, hi = wilson(counts["misaligned"], denom)
    probs = [r["p_misaligned"] for r in rows if r["p_misaligned"] is not None]
    m, mlo, mhi = bootstrap_mean_ci(probs)
    return {"n_samples": len(rows), **counts, "propensity": p, "propensity_ci": [lo, hi],
            "mean_p_misaligned": m, "mean_p_misaligned_ci": [mlo, mhi]}


def summarise(log: Any) -> dict[str, Any]:
    """Per-item rows and grouped statistics from an Inspect eval log of the honeypot task."""
    rows = []
    for sample in log.samples or []:
        meta = sample.metadata
        score = next(iter((sample.scores or {}).values()), None)
        if sample.error is not None or score is None:
            outcome, p_bad = "error", None
        else:
            outcome, p_bad = score.metadata["outcome"], score.value["p_misaligned"]
        rows.append({"id": sample.id, "family": meta["family"], "framing": meta["framing"],
                     "threat": meta["threat"], "goal": meta["goal"], "outcome": outcome,
                     "p_misaligned": p_bad})
    if not rows:
        raise ParablesError("the honeypot eval produced no samples")
    by: dict[str, dict[str, list[dict[str, Any]]]] = defaultdict(lambda: defaultdict(list))
    for r in rows:
        for axis in ("family", "framing", "threat", "goal"):
            by[axis][r[axis]].append(r)
    return {
        "overall": _group(rows),
        **{f"by_{axis}": {k: _group(v) for k, v in sorted(groups.items())}
           for axis, groups in by.items()},
        "items": rows,
    }


def _write_csv(path: Path, results: dict[str, Any]) -> None:
    import io

    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["family", "n", "misaligned", "aligned", "error", "propensity", "ci_low",
                "ci_high", "mean_p_misaligned", "p_ci_low", "p_ci_high"])
    for family, g in [*results["by_family"].items(), ("ALL", results["overall"])]:
        w.writerow([family, g["n_samples"], g["misaligned"], g["aligned"], g["error"],
                    f"{g['propensity']:.4f}", *(f"{x:.4f}" for x in g["propensity_ci"]),
                    f"{g['mean_p_misaligned']:.4f}",
                    *(f"{x:.4f}" for x in g["mean_p_misaligned_ci"])])
    atomic_write_text(path, buf.getvalue())
