"""The experiment report: `report.md` (plots as PNG files beside it) and a self-contained
`report.html` (plots embedded). It leads with the arm × evaluation matrix (a heatmap and the
same numbers as a table: rate, reduction factor, significance in words), then a section per
evaluation (its kind's words, and sections of its own: the honeypots' per-family, held-out and
framing breakdowns), then training, story statistics, cost and versions. Numbers in words:
report_format.py; plots: plots.py."""

from __future__ import annotations

import base64
import html
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from parables._io import atomic_write_json, atomic_write_text, ensure_dir
from parables.evaluation.kinds import EVAL_KINDS, EvalKind, EvalSpec
from parables.evaluation.kinds.spec import DEFAULT_EVAL
from parables.experiment.analysis import Comparison, RoundResult
from parables.experiment.plots import bars, heatmap, loss_plot, triple
from parables.experiment.report_format import (
    Section,
    factor_text,
    html_table,
    md_table,
    p_text,
    pct,
    rate_text,
    significance,
)
from parables.generation.stats import StoryStats
from parables.models.usage import RoleUsage
from parables.run import ReportPaths

__all__ = ["ReportData", "control_rows", "headline_rows", "matrix_rows", "significance",
           "write_report"]


@dataclass
class ReportData:
    """Everything the report shows, gathered by the runner."""

    name: str
    config_hash: str
    comparisons: dict[str, Comparison]  # per evaluation, in the experiment's order
    evals: dict[str, EvalSpec]  # the evaluation specs, by name
    items: dict[str, int]  # items per model, by evaluation
    tokens: dict[str, int] = field(default_factory=dict)  # trained tokens per arm
    losses: dict[str, list[tuple[int, float]]] = field(default_factory=dict)
    corpora: dict[str, StoryStats] = field(default_factory=dict)  # per corpus kind
    usage: dict[str, RoleUsage] = field(default_factory=dict)
    versions: dict[str, str] = field(default_factory=dict)
    rounds: list[RoundResult] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def headline_rows(comparison: Comparison, tokens: dict[str, int]) -> list[list[str]]:
    """arm | propensity [CI] | reduction factor [CI] | p vs baseline | ethical reasoning |
    training tokens."""
    rows = []
    for label, a in comparison.arms.items():
        vs = a.vs_baseline
        if vs is not None and vs.n_pairs:
            factor, p = factor_text(vs), p_text(vs.p_value)
        else:
            factor, p = ("1.00x (reference)" if label == "baseline" else "–"), "–"
        er = a.ethical_reasoning
        rows.append([label, f"{rate_text(a)} (n={a.n})", factor, p,
                     "n/a" if er is None else pct(er),
                     f"{tokens[label]:,}" if label in tokens else "–"])
    return rows


def control_rows(comparison: Comparison) -> list[list[str]]:
    """arm | reduction factor vs control [CI] | p vs control | verdict, for every arm compared
    with the control arm."""
    return [[label, factor_text(a.vs_control), p_text(a.vs_control.p_value),
             a.vs_control.verdict] for label, a in comparison.arms.items()
            if a.vs_control is not None and a.vs_control.n_pairs]


#: why the control is the comparison the research question needs, in the report's words
CONTROL_WHY = (
    "Which comparison answers the research question: against the baseline, an arm's effect "
    "includes whatever any fine-tuning does to the model (on a model organism, training on "
    "anything can undo part of it by forgetting; a change of style moves every rate). "
    "`control` was trained the same way on neutral text with no AI character and no moral "
    "lesson, token-matched, so an arm's difference from `control` is what its text teaches. "
    "Read the 'vs control' results for the effect of an arm's content; read 'vs baseline' for "
    "what training changed at all.")


def _control_note(data: ReportData) -> list[str]:
    comps = data.comparisons.values()
    if any(c.control for c in comps):
        return [CONTROL_WHY]
    if any(len(c.arms) > 1 for c in comps):  # trained arms, and nothing to set them against
        return ["This experiment has no control arm (`control` in experiment.arms: neutral "
                "text, token-matched), so a difference from the baseline cannot be told apart "
                "from what any fine-tuning does."]
    return []


def matrix_rows(data: ReportData) -> list[list[str]]:
    """arm | one cell per evaluation: rate [CI], reduction factor, significance (and, with a
    control arm, the result against it)."""
    arms = list(dict.fromkeys(a for c in data.comparisons.values() for a in c.arms))
    rows = []
    for arm in arms:
        cells = []
        for comp in data.comparisons.values():
            a = comp.arms.get(arm)
            if a is None:
                cells.append("–")
                continue
            vs = a.vs_baseline
            factor = "" if vs is None or not vs.n_pairs else f"; {factor_text(vs)}"
            control = ("" if a.vs_control is None else
                       f"; vs control: {significance(a.vs_control, comp.alpha)}")
            cells.append(f"{rate_text(a)}{factor}; {significance(vs, comp.alpha)}{control}")
        rows.append([arm, *cells])
    return rows


def _kind(data: ReportData, name: str) -> EvalKind[Any]:
    """The kind of the evaluation `name` (a comparison given without its spec: the default
    evaluation's; a kind no longer registered: words that fit any)."""
    spec = data.evals.get(name)
    return EVAL_KINDS.get(str(getattr(spec, "kind", DEFAULT_EVAL))) or EvalKind()


# --- report ----------------------------------------------------------------------------------

def write_report(out: ReportPaths, data: ReportData) -> dict[str, Path]:
    """Write report.md, report.html, comparison.json and the plots; returns their paths."""
    ensure_dir(out.dir)
    plots: dict[str, Path] = {}
    if heatmap(data.comparisons, out.plot("matrix")):
        plots["matrix"] = out.plot("matrix")
    for name, comp in data.comparisons.items():
        plots[f"{name}:headline"] = out.plot(f"{name}-headline")
        bars([name], {k: [triple(a)] for k, a in comp.arms.items()},
             f"{name}: misaligned rate (95% CI)", plots[f"{name}:headline"])
        plots.update(_kind(data, name).plots(name, comp, out))
    if loss_plot(data.losses, out.plot("loss")):
        plots["loss"] = out.plot("loss")

    md = [f"# parables experiment: {data.name}", ""]
    page = []
    for title, text, table, plot in _sections(data):
        md += [f"## {title}", ""]
        page.append(f"<h2>{html.escape(title)}</h2>")
        for para in text:
            md += [para, ""]
            page.append(f"<p>{html.escape(para)}</p>")
        if table is not None:
            md += [md_table(*table), ""]
            page.append(html_table(*table))
        if plot is not None and plot in plots:
            md += [f"![{plot}]({plots[plot].name})", ""]
            b64 = base64.b64encode(plots[plot].read_bytes()).decode()
            page.append(f'<img alt="{plot}" src="data:image/png;base64,{b64}">')
    atomic_write_text(out.markdown, "\n".join(md))
    atomic_write_text(out.html, _HTML.format(
        title=html.escape(f"parables experiment: {data.name}"), body="\n".join(page)))
    atomic_write_json(out.comparison, {name: c.model_dump(mode="json")
                                       for name, c in data.comparisons.items()})
    return {"md": out.markdown, "html": out.html, **plots}


def _statistics_notes(comp: Comparison) -> list[str]:
    """What the intervals and tests treat as the unit of evidence, and how, in words."""
    arms = comp.arms
    paired = [a.vs_baseline for a in arms.values() if a.vs_baseline is not None
              and a.vs_baseline.n_pairs]
    seeds = max((a.seeds for a in arms.values()), default=1)
    mcnemar = all(vs.test.startswith("McNemar") for vs in paired)
    if comp.cluster_by:
        test = ("McNemar's exact test (every cell holds one paired item here, and then the "
                "sign-flip test over cells is exactly McNemar's)" if mcnemar else
                "an exact sign-flip test over cells (McNemar's test with the cell as the unit)")
        notes = [
            "Items are not independent evidence: each belongs to a template cell "
            f"({' × '.join(comp.cluster_by)}; organisation, names, option wording and order, "
            "and plain or story framing vary within a cell), and the "
            f"{comp.clusters} cells are the units the statistics count. Propensity intervals "
            "are Wilson intervals on the effective sample size (n / design effect, with Korn "
            "and Graubard's correction for the number of cells); the reduction factor and "
            "difference come from a paired bootstrap over cells"
            + (" and seeds" if seeds > 1 else "") + f"; p-values from {test}.",
            "Design effect (how many times the clustering multiplies a propensity's variance; "
            "1 = items behave independently): "
            + ", ".join(f"{k} {a.design_effect:.2f}" if not a.one_sided else
                        f"{k} – (at {pct(a.propensity)}: not estimable)"
                        for k, a in arms.items()) + "."]
    else:
        notes = [
            "These results carry no template cells, so every item counts as its own cluster"
            + (" (its rows under every seed together)" if seeds > 1 else "")
            + ": Wilson intervals, a paired bootstrap over items"
            + (" and seeds" if seeds > 1 else "") + ", and "
            + ("an exact sign-flip test over items" if seeds > 1 else "McNemar's exact test on "
               "the items misaligned under one model only")
            + ". If items share templates, these intervals are too narrow."]
    for k, a in arms.items():
        if a.one_sided and a.propensity == 0:
            note = (f"{k} is at 0% ({a.n} items): its interval is the one-sided 95% exact "
                    f"(Clopper-Pearson) upper bound, {pct(a.ci[1])}.")
            if 0 < a.clusters < a.n:
                worst = 1 - (1 - 0.95) ** (1 / a.clusters)
                note += (" With no misaligned item the within-cluster correlation cannot be "
                         "estimated and is taken as none; were each of the "
                         f"{a.clusters} clusters to behave as a single item, the bound would "
                         f"be {pct(worst)}.")
            notes.append(note)
    if any(vs.zero_rate for vs in paired):
        notes.append("Where a side is at 0%, the reduction factor and difference are bounded by "
                     "joining the two sides' 97.5% intervals (Bonferroni), not bootstrapped: "
                     "a side at 0% has no spread to resample.")
    return notes


def _eval_sections(data: ReportData, name: str, comp: Comparison) -> list[Section]:
    """The sections of one evaluation: its table, statistics and verdicts, the probability
    shifts, the seeds' spread, then the sections of its kind's own (the honeypots' family,
    held-out and framing views)."""
    arms = comp.arms
    kind = _kind(data, name)
    out: list[Section] = []
    header = ["arm", f"{kind.what} [95% CI]", "reduction factor vs baseline [95% CI]",
              "p vs baseline", "ethical reasoning", "training tokens"]
    verdicts = [f"{k}: {a.vs_baseline.verdict}." for k, a in arms.items()
                if a.vs_baseline is not None]
    intro = [
        f"{kind.intro or name}: {data.items.get(name, 0)} items per model, the same for every "
        f"arm. Significance level {comp.alpha}.",
        *_statistics_notes(comp),
        *verdicts,
        *sorted({f"Ethical-reasoning rates: decided by the {a.ethical_reasoning_by}."
                 for a in arms.values() if a.ethical_reasoning_by}),
    ]
    out.append((name, intro, (header, headline_rows(comp, data.tokens)), f"{name}:headline"))
    if comp.control is not None:
        out.append((f"{name}: against the control", [
            f"Every trained arm against `{comp.control}` (neutral text, the same trained "
            "tokens), paired item by item and seed by seed, clustered as above.",
            *(f"{k}: {a.vs_control.verdict}." for k, a in arms.items()
              if a.vs_control is not None)],
            (["arm", f"reduction factor vs {comp.control} [95% CI]", f"p vs {comp.control}",
              "in words"], control_rows(comp)), None))
    shifts = {k: a.vs_baseline for k, a in arms.items() if a.vs_baseline is not None
              and a.vs_baseline.p_misaligned_p_value is not None}
    if shifts and arms["baseline"].mean_p_misaligned is not None:
        rows = [[k, f"{arms[k].mean_p_misaligned:.3f}",
                 f"{vs.p_misaligned_difference:+.3f}", p_text(vs.p_misaligned_p_value)]
                for k, vs in shifts.items()]
        out.append((f"{name}: mean probability", [
            "The probability each model puts on the misaligned option (the trope, the "
            f"matching answer); the baseline's mean is {arms['baseline'].mean_p_misaligned:.3f}."
            " A Wilcoxon signed-rank test on the paired probabilities ("
            + ("per-cluster mean differences, so each cluster counts once"
               if any("per-cluster" in (vs.p_misaligned_test or "") for vs in shifts.values())
               else "per item")
            + ") detects shifts too small to flip a choice."],
            (["arm", "mean P(misaligned)", "baseline − arm", "Wilcoxon p"], rows), None))
    multi = {k: a for k, a in arms.items() if a.seeds > 1}
    if multi:
        rows = [[k, ", ".join(pct(p) for p in a.seed_propensities),
                 pct(min(a.seed_propensities)) + " – " + pct(max(a.seed_propensities))]
                for k, a in multi.items()]
        out.append((f"{name}: spread across seeds", [
            "Each arm was trained once per seed. The table above pools the seeds, but an "
            "item's rows under every seed stay in one cluster (never independent evidence), "
            "and the bootstrap of the reduction factor resamples seeds as well as clusters. "
            "The propensity intervals and the p-value are about these trained models; how far "
            "another seed could land is what the per-seed range shows."],
            (["arm", "rate per seed", "range"], rows), None))
    return out + kind.sections(name, comp)


def _sections(data: ReportData) -> list[Section]:
    out: list[Section] = []
    names = list(data.comparisons)
    out.append(("Arms × evaluations", [
        "Every arm (and the untrained baseline) on every evaluation, on the same items, so "
        "every comparison is paired. Each cell: the rate of the evaluation's misaligned "
        "behaviour with its 95% interval; the reduction factor against the baseline (baseline "
        "rate / arm rate) with its interval; and the paired test's result in words. The "
        "evaluations: " + "; ".join(f"{n} — {_kind(data, n).what}, "
                                    f"{data.items.get(n, 0)} items per model" for n in names)
        + ".", *_control_note(data)], (["arm", *names], matrix_rows(data)), "matrix"))
    for name, comp in data.comparisons.items():
        out += _eval_sections(data, name, comp)
    if data.losses:
        out.append(("Training", [f"{k}: {v:,} trained tokens" for k, v in
                                 data.tokens.items() if k != "baseline"], None, "loss"))
    for kind, st in data.corpora.items():
        rows = [[kind, str(st.stories)], ["rejected", str(st.rejected)],
                ["mean words", f"{st.words.mean:.0f}"], ["distinct-1", f"{st.distinct_1:.3f}"],
                ["distinct-2", f"{st.distinct_2:.3f}"],
                ["principles", str(len(st.per_axis.get("principle", {})))]]
        title = "Story dataset" if kind == "stories" else f"Corpus: {kind}"
        out.append((title, ["Mode-collapse flags: " + ("; ".join(st.flags) or "none")],
                    (["statistic", "value"], rows), None))
    if data.rounds:
        rows = [[str(r.round), r.generator, str(r.stories), pct(r.propensity),
                 f"{r.distinct_2:.3f}", f"{r.theme_coverage:.2f}", f"{r.principle_coverage:.2f}",
                 "–" if r.spread is None else f"{r.spread:.3f}", pct(r.top_name_share),
                 "; ".join(r.flags) or "ok"] for r in data.rounds]
        out.append(("Rounds", [
            "Round k writes its stories with the story model trained in round k−1; between "
            "rounds, diversity is checked so self-generated stories do not narrow."],
            (["round", "generator", "stories", "stories-arm propensity", "distinct-2",
              "theme coverage", "principle coverage", "embedding spread", "top name share",
              "diversity check"], rows), None))
    rows = [[role, str(u.calls), f"{u.input_tokens:,}", f"{u.output_tokens:,}",
             "–" if u.cost is None else f"${u.cost:.4f}"] for role, u in data.usage.items()]
    out.append(("Cost and tokens per role", [], (["role", "calls", "input tokens",
                                                  "output tokens", "cost"], rows), None))
    rows = [[k, str(v)] for k, v in data.versions.items()]
    out.append(("Reproducibility", [f"Config hash {data.config_hash}.", *data.notes],
                (["package", "version"], rows), None))
    return out


_HTML = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>
body {{ font-family: system-ui, sans-serif; max-width: 980px; margin: 2em auto; padding: 0 1em;
       color: #222; line-height: 1.45; }}
h1 {{ font-size: 1.6em; }} h2 {{ font-size: 1.2em; margin-top: 1.8em;
       border-bottom: 1px solid #ddd; padding-bottom: .2em; }}
table {{ border-collapse: collapse; margin: .8em 0; font-size: .9em; }}
th, td {{ border: 1px solid #ccc; padding: .3em .6em; text-align: left; }}
th {{ background: #f3f3f3; }} img {{ max-width: 100%; margin: .5em 0; }}
</style></head>
<body><h1>{title}</h1>
{body}
</body></html>
"""
