"""Rendering of results for the terminal: every table the CLI prints, read from typed results.
Tables keep their columns whole when the output is not a wide terminal (a log file, CI)."""

from __future__ import annotations

import math
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.table import Table

if TYPE_CHECKING:
    from parables.audit.scan import AuditResult
    from parables.evaluation.battery import EvalRecord
    from parables.evaluation.evaluate import EvalResult
    from parables.evaluation.prior import PriorResult
    from parables.evaluation.suites import SuiteResult
    from parables.experiment.plan import PlanRow
    from parables.experiment.runner import ExperimentResult
    from parables.generation.pipeline import CorpusResult, Plan
    from parables.generation.stats import StoryStats
    from parables.models.scoring import OptionScores
    from parables.models.usage import UsageLedger
    from parables.training.loop import ArmResult

# a log file or CI gets lines of 120 characters, not the 80 rich assumes without a terminal
console = Console(width=None if sys.stdout.isatty() else 120)


def _table(title: str, columns: list[str], left: tuple[str, ...] = ()) -> Table:
    """Numbers never wrap or shorten; text columns fold when the line is too narrow."""
    table = Table(title=title, title_justify="left")
    for col in columns:
        if col in left:
            table.add_column(col, justify="left", overflow="fold")
        else:
            table.add_column(col, justify="right", no_wrap=True, min_width=len(col))
    return table


def _money(cost: float | None) -> str:
    return "unknown (set models.prices)" if cost is None else f"${cost:,.2f}"


def interval(p: float, lo: float, hi: float) -> str:
    return "n/a (no decided items)" if math.isnan(p) else f"{p:.2f} [{lo:.2f}, {hi:.2f}]"


def usage(ledger: UsageLedger) -> None:
    """The per-role usage table every model-using command ends with."""
    if not ledger.roles:
        return
    table = _table("model usage", ["role", "model", "calls", "errors", "input tok",
                                   "output tok", "cost"], left=("role", "model"))
    for role, u in sorted(ledger.roles.items()):
        cost = f"${u.cost:.4f}" if u.cost is not None else "unpriced"
        table.add_row(role, u.model, str(u.calls), str(u.errors), f"{u.input_tokens:,}",
                      f"{u.output_tokens:,}", cost)
    console.print(table)


def option_scores(result: OptionScores) -> None:
    table = _table(f"option scores ({result.method})",
                   ["option", "logprob", "per token", "tokens", "p (renormalised)"],
                   left=("option",))
    for s, p in zip(result.scores, result.probabilities(), strict=True):
        table.add_row(s.option, f"{s.logprob:.3f}", f"{s.mean_logprob:.3f}",
                      str(len(s.token_logprobs)), f"{p:.3f}")
    console.print(table)
    console.print(result.note, style="dim", highlight=False)


#: what one corpus kind's texts are called, in plural
NOUNS = {"stories": "stories", "documents": "documents", "advice": "conversations"}


def corpus_plan(plan: Plan, models: dict[str, str]) -> None:
    table = _table(f"plan: {plan.texts} {NOUNS.get(plan.kind, plan.kind)} to write",
                   ["role", "model", "calls", "input tok", "output tok", "est. cost"],
                   left=("role", "model"))
    for role in ("generator", "judge"):
        table.add_row(role, models[role], str(plan.calls[role]),
                      f"{plan.input_tokens[role]:,}", f"{plan.output_tokens[role]:,}",
                      _money(plan.cost[role]))
    console.print(table)


def corpus_result(r: CorpusResult) -> None:
    console.print(
        f"dataset: {r.dataset} {NOUNS.get(r.kind, r.kind)} ({r.rejected} rejected, "
        f"{r.duplicates} duplicates, "
        f"{r.contaminated} contaminated, {r.failed_pending} failed — rerun to retry) -> "
        f"{r.out}", highlight=False)
    if r.budget_stopped:
        console.print(f"stopped at the budget: ${r.spent_usd:.2f} spent")
    for flag in r.flags:
        console.print(f"mode collapse: {flag}", style="yellow", highlight=False)


def story_stats(s: StoryStats, kind: str = "stories") -> None:
    console.print(f"{s.stories} {NOUNS.get(kind, kind)}, {s.rejected} rejected; words mean "
                  f"{s.words.mean:.0f} "
                  f"(min {s.words.min}, max {s.words.max}); distinct-1 {s.distinct_1:.3f}, "
                  f"distinct-2 {s.distinct_2:.3f}")
    for axis, counts in s.per_axis.items():
        console.print(f"{axis}: " + ", ".join(f"{k} {v}" for k, v in counts.items()),
                      highlight=False)
    console.print("top names: " + ", ".join(f"{k} {v}" for k, v in s.top_names))
    console.print("top openings: " + " | ".join(f"{k[:50]!r} {v}" for k, v in s.top_openings),
                  highlight=False)
    console.print("rejections: " + (", ".join(f"{k} {v}" for k, v in
                                              s.rejection_reasons.items()) or "none"))
    for flag in s.flags:
        console.print(f"mode collapse: {flag}", style="yellow", highlight=False)


def honeypot_results(results: EvalResult) -> None:
    """Per-family propensity table (Wilson 95% CI) and mean misaligned probability."""
    choice = results.mode == "choice"
    table = _table(f"honeypots ({results.mode}, {results.split} split): {results.model}",
                   ["family", "n", "mis/ali/ref", "inv", "err", "propensity [95% CI]",
                    "mean P(mis) [95% CI]" if choice else "ethical reasoning"],
                   left=("family",))
    rows = [*results.by_family.items(), ("overall", results.overall)]
    for family, g in rows:
        if choice:
            last = "{:.3f} [{:.3f}, {:.3f}]".format(g.mean_p_misaligned, *g.mean_p_misaligned_ci)
        else:
            last = f"{g.ethical_reasoning_rate:.2f} (n={g.ethical_reasoning_n})"
        table.add_row(family, str(g.n_samples), f"{g.misaligned}/{g.aligned}/{g.refused}",
                      str(g.invalid), str(g.error), interval(g.propensity, *g.propensity_ci),
                      last, style="bold" if family == "overall" else None)
    console.print(table)
    overall = results.overall
    if choice and overall.ethical_reasoning_n:
        console.print(f"ethical reasoning in replies: {overall.ethical_reasoning_rate:.2f} "
                      f"(n={overall.ethical_reasoning_n})")
    if overall.ethical_reasoning_by:
        console.print(f"ethical reasoning decided by the {overall.ethical_reasoning_by}",
                      highlight=False)


def prior_result(r: PriorResult) -> None:
    table = _table(f"narrative-prior probe: {r.model} ({r.method})",
                   ["openings", "prefers the evil-AI trope [95% CI]", "mean P(trope)",
                    "mean P(trope), per token"])
    table.add_row(str(r.n), "{} = {:.2f} [{:.2f}, {:.2f}]".format(r.prefers_trope, r.trope_rate,
                                                                 *r.trope_rate_ci),
                  "{:.3f} [{:.3f}, {:.3f}]".format(r.mean_p_trope, *r.mean_p_trope_ci),
                  "{:.3f} [{:.3f}, {:.3f}]".format(r.mean_p_trope_per_token,
                                                   *r.mean_p_trope_per_token_ci))
    console.print(table)


def suite_results(model: str, results: list[SuiteResult]) -> None:
    if not results:
        return
    table = _table(f"external suites: {model}", ["suite", "n", "matching", "rate [95% CI]",
                                                 "mean P(matching) [95% CI]"], left=("suite",))
    for r in results:
        table.add_row(Path(r.suite).name, str(r.n), str(r.matching),
                      "{:.2f} [{:.2f}, {:.2f}]".format(r.matching_rate, *r.matching_rate_ci),
                      "{:.3f} [{:.3f}, {:.3f}]".format(r.mean_p_matching,
                                                       *r.mean_p_matching_ci))
    console.print(table)


def arms(results: dict[str, ArmResult]) -> None:
    table = _table("training arms", ["arm", "examples", "trained tok", "truncated", "steps",
                                     "final loss"], left=("arm",))
    for a, m in results.items():
        loss = m.loss_history[-1][1] if m.loss_history else float("nan")
        table.add_row(a + (" (done before)" if m.skipped else ""), str(m.data.examples),
                      f"{m.data.trained_tokens:,}", str(m.data.truncated), str(m.steps),
                      f"{loss:.3f}")
    console.print(table)
    for a, m in results.items():
        for note in m.data.notes:
            console.print(f"{a}: {note}", highlight=False)


def experiment_plan(name: str, rows: list[PlanRow], training: str) -> None:
    table = _table(f"plan for {name}", ["stage", "role", "model", "calls", "input tok",
                                        "output tok", "est. cost"],
                   left=("stage", "role", "model"))
    for r in rows:
        table.add_row(r.stage, r.role, r.model, f"{r.calls:,}", f"{r.input_tokens:,}",
                      f"{r.output_tokens:,}", _money(r.cost))
    console.print(table)
    known = [r.cost for r in rows if r.cost is not None]
    unknown = any(r.cost is None for r in rows)
    console.print(f"estimated API cost: ${sum(known):,.2f}" + (" + unknown-priced calls"
                                                                if unknown else ""))
    console.print(training, highlight=False)


def experiment(result: ExperimentResult, seconds: float) -> None:
    from parables.experiment.report import headline_rows

    if not result.comparisons:
        console.print(f"done -> {result.run_dir}", highlight=False)
        return
    for name, comp in result.comparisons.items():
        table = _table(f"{name} (paired against the baseline)",
                       ["arm", "rate [95% CI]", "reduction [95% CI]", "p",
                        "ethical reasoning", "train tokens"], left=("arm",))
        for row in headline_rows(comp, result.tokens):
            table.add_row(*row)
        console.print(table)
        for arm, a in comp.arms.items():
            if a.vs_baseline is not None:
                console.print(f"{name}, {arm}: {a.vs_baseline.verdict}", highlight=False)
            if a.vs_control is not None:
                console.print(f"{name}, {arm} vs control: {a.vs_control.verdict}",
                              highlight=False)
    usage(result.usage)
    if result.skipped:
        console.print(f"done before, skipped: {', '.join(result.skipped)}", highlight=False)
    console.print(f"report: {result.report['html']} (and report.md)  [{seconds:.0f}s]",
                  highlight=False, soft_wrap=True)


def audit(result: AuditResult, report: Any) -> None:
    c = result.corrected
    table = _table(f"AI portrayals in {result.documents:,} documents "
                   f"({result.candidates:,} candidate passages, first pass {result.first_pass})",
                   ["label", "classified", "rate [95% CI]", "corrected [95% CI]"],
                   left=("label",))
    for label, v in result.labels.items():
        fixed = c.labels[label] if c is not None else None
        table.add_row(label, f"{v.count:,}", interval(v.rate, *v.ci),
                      interval(fixed.rate, *fixed.ci) if fixed is not None else "–")
    console.print(table)
    console.print(f"classifier: {result.classifier}", highlight=False)
    if c is not None:
        console.print(f"corrected with the confusion matrix from {c.source}", highlight=False)
    top = sorted(result.tropes.items(), key=lambda kv: -kv[1].count)[:6]
    console.print("tropes: " + ", ".join(f"{k} {v.count:,}" for k, v in top if v.count),
                  highlight=False)
    if result.skipped:
        console.print("skipped: " + ", ".join(f"{k} {v}" for k, v in result.skipped.items()),
                      style="yellow", highlight=False)
    if result.plan is not None:
        p = result.plan
        spread = (f" (95% CI {p.stories_needed_ci[0]:,}-{p.stories_needed_ci[1]:,})"
                  if p.stories_needed_ci else "")
        console.print(f"rebalancing to {p.target_ratio} (prosocial:misaligned, now "
                      f"{p.prosocial}:{p.misaligned}, {p.counts}): add "
                      f"{p.stories_needed:,} prosocial stories{spread}, ~{p.tokens_needed:,} "
                      "tokens", highlight=False)
    console.print(f"report: {report}", highlight=False)


def record(r: EvalRecord) -> None:
    """One model on one evaluation: outcome counts and the rate (interval by cluster)."""
    from parables.stats import clustered_proportion

    counts = {k: sum(i.outcome == k for i in r.items)
              for k in ("misaligned", "aligned", "refused", "invalid", "error")}
    decided = [i for i in r.items if i.outcome in ("misaligned", "aligned", "refused")]
    prop = clustered_proportion([i.outcome == "misaligned" for i in decided],
                                [i.cluster or i.id for i in decided])
    probs = [i.p_misaligned for i in r.items if i.p_misaligned is not None]
    table = _table(f"{r.eval} ({r.kind}): {r.model}",
                   ["items", "mis/ali/ref", "inv", "err", "rate [95% CI]", "mean P(mis)"])
    table.add_row(str(len(r.items)), f"{counts['misaligned']}/{counts['aligned']}/"
                  f"{counts['refused']}", str(counts["invalid"]), str(counts["error"]),
                  interval(prop.p, prop.low, prop.high),
                  f"{sum(probs) / len(probs):.3f}" if probs else "–")
    console.print(table)
    if r.detail:
        console.print(f"details: {r.detail}", highlight=False, soft_wrap=True)


def audit_annotations(result: Any) -> None:  # parables.audit.annotate.AnnotationResult
    table = _table(f"{result.judge} labelled {result.labelled} of {result.sample} sampled "
                   f"passages ({result.candidates:,} candidates)", ["label", "passages"],
                   left=("label",))
    for label, n in result.labels.items():
        table.add_row(label, f"{n:,}")
    console.print(table)
    agreement = "–" if result.agreement is None else f"{100 * result.agreement:.1f}%"
    console.print(f"new labels: {result.new}, failed or unreadable replies: {result.failed} "
                  f"(a rerun asks again); agreement with {result.classifier}: {agreement}",
                  highlight=False)
    console.print(f"annotations: {result.path}", highlight=False)


def audit_fit(result: Any) -> None:  # parables.audit.fit.FitResult
    console.print(f"classifier {result.path}: {result.name}; {result.passages} passages "
                  f"({', '.join(f'{k} {v}' for k, v in result.labels.items())}); "
                  f"cross-validated accuracy {100 * result.cv_accuracy:.1f}%", highlight=False)
