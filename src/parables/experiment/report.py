"""The experiment report: `report.md` (plots as PNG files beside it) and a self-contained
`report.html` (plots embedded), in the research's shape — headline table, per-family plot,
held-out families, framing effect, story statistics, cost, versions."""

from __future__ import annotations

import base64
import html
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from parables._io import atomic_write_json, atomic_write_text, ensure_dir
from parables.experiment.analysis import Comparison, Paired, Rate
from parables.generation.stats import StoryStats
from parables.models.usage import RoleUsage
from parables.run import ReportPaths

if TYPE_CHECKING:
    from parables.experiment.runner import RoundResult

__all__ = ["ReportData", "headline_rows", "write_report"]

_COLORS = ["#7a7a7a", "#3b6ea8", "#c8553d", "#5c9e5c", "#8e6bb5", "#d19a3c"]


def _pct(p: float | None) -> str:
    return "–" if p is None or math.isnan(p) else f"{100 * p:.1f}%"


def _ci(lo: float, hi: float, pct: bool = True) -> str:
    if any(math.isnan(x) or math.isinf(x) for x in (lo, hi)):
        return "[–]"
    return f"[{_pct(lo)}, {_pct(hi)}]" if pct else f"[{lo:.2f}, {hi:.2f}]"


def _rate(r: Rate) -> str:
    """A propensity with its 95% interval; at 0% (100%) the one-sided bound."""
    if r.one_sided and r.propensity == 0:
        return f"{_pct(r.propensity)} [≤ {_pct(r.ci[1])}, one-sided]"
    if r.one_sided:
        return f"{_pct(r.propensity)} [≥ {_pct(r.ci[0])}, one-sided]"
    return f"{_pct(r.propensity)} {_ci(*r.ci)}"


def _factor(vs: Paired) -> str:
    """The reduction factor with its interval, or in words when a side is at 0%."""
    lo, hi = vs.reduction_ci
    if vs.zero_rate == "both":
        return "both 0%: no reduction can be estimated"
    if vs.zero_rate == "baseline":
        return "none: baseline 0%, arm higher"
    if vs.zero_rate == "arm":
        return f"≥ {lo:.2f}x (arm 0%, one-sided)"
    rf = vs.reduction_factor
    if math.isnan(rf) or math.isnan(lo):
        return "–"
    if math.isinf(hi):
        return f"{rf:.2f}x [{lo:.2f}, ∞)"
    return f"{rf:.2f}x {_ci(lo, hi, pct=False)}"


def _p(p: float | None) -> str:
    if p is None or math.isnan(p):
        return "–"
    return "< 0.001" if p < 0.001 else f"{p:.3f}"


@dataclass
class ReportData:
    """Everything the report shows, gathered by the runner."""

    name: str
    config_hash: str
    comparison: Comparison
    mode: str
    items: int  # eval items per model
    tokens: dict[str, int] = field(default_factory=dict)  # trained tokens per arm
    losses: dict[str, list[tuple[int, float]]] = field(default_factory=dict)
    stories: StoryStats | None = None
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
            factor, p = _factor(vs), _p(vs.p_value)
        else:
            factor, p = ("1.00x (reference)" if label == "baseline" else "–"), "–"
        er = a.ethical_reasoning
        rows.append([label, f"{_rate(a)} (n={a.n})", factor, p,
                     "n/a" if er is None else _pct(er),
                     f"{tokens[label]:,}" if label in tokens else "–"])
    return rows


def _md_table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def _html_table(header: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>"
                   for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


# --- plots -----------------------------------------------------------------------------------

def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _bars(groups: list[str], series: dict[str, list[tuple[float, float, float]]], title: str,
          path: Path, ylabel: str = "misalignment propensity") -> None:
    """Grouped bars with 95% interval whiskers: one group per x label, one bar per arm."""
    plt = _plt()
    width_in = min(11.0, max(6.0, 0.28 * len(groups) * max(1, len(series)) + 2))
    fig, ax = plt.subplots(figsize=(width_in, 4.2), dpi=120)
    width = 0.8 / max(1, len(series))
    for j, (label, values) in enumerate(series.items()):
        xs = [i + (j - (len(series) - 1) / 2) * width for i in range(len(groups))]
        ps = [0.0 if math.isnan(v[0]) else v[0] for v in values]
        err = [[max(0.0, p - v[1]) for p, v in zip(ps, values, strict=True)],
               [max(0.0, v[2] - p) for p, v in zip(ps, values, strict=True)]]
        ax.bar(xs, ps, width, label=label, color=_COLORS[j % len(_COLORS)], yerr=err,
               capsize=2, error_kw={"linewidth": 0.8})
    ax.set_xticks(range(len(groups)))
    ax.set_xticklabels([g.replace("_", "\n") for g in groups], fontsize=7)
    ax.set_ylim(0, 1)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(fontsize=7, ncol=min(4, len(series)))
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def _loss_plot(histories: dict[str, list[tuple[int, float]]], path: Path) -> bool:
    if not any(histories.values()):
        return False
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6, 3.5), dpi=120)
    for j, (label, h) in enumerate(histories.items()):
        if h:
            ax.plot([s for s, _ in h], [loss for _, loss in h], label=label,
                    color=_COLORS[(j + 1) % len(_COLORS)])
    ax.set_xlabel("step")
    ax.set_ylabel("training loss")
    ax.set_title("training loss per arm")
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return True


def _triple(r: Rate) -> tuple[float, float, float]:
    return r.propensity, r.ci[0], r.ci[1]


# --- report ----------------------------------------------------------------------------------

def write_report(out: ReportPaths, data: ReportData) -> dict[str, Path]:
    """Write report.md, report.html, comparison.json and the plots; returns their paths."""
    ensure_dir(out.dir)
    arms = data.comparison.arms
    plots: dict[str, Path] = {}
    overall = {k: [_triple(a)] for k, a in arms.items()}
    plots["headline"] = out.plot("headline")
    _bars(["all eval items"], overall, "Misalignment propensity (95% CI)", plots["headline"])
    families = sorted({f for a in arms.values() for f in a.by_family})
    plots["families"] = out.plot("families")
    _bars(families, {k: [_triple(a.by_family[f]) if f in a.by_family
                         else (math.nan, 0.0, 0.0) for f in families] for k, a in arms.items()},
          "Per family (95% CI)", plots["families"])
    framings = sorted({f for a in arms.values() for f in a.by_framing})
    plots["framing"] = out.plot("framing")
    _bars(framings, {k: [_triple(a.by_framing[f]) if f in a.by_framing
                         else (math.nan, 0.0, 0.0) for f in framings] for k, a in arms.items()},
          "Plain vs story framing (95% CI)", plots["framing"])
    if _loss_plot(data.losses, out.plot("loss")):
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
            md += [_md_table(*table), ""]
            page.append(_html_table(*table))
        if plot is not None and plot in plots:
            md += [f"![{plot}]({plots[plot].name})", ""]
            b64 = base64.b64encode(plots[plot].read_bytes()).decode()
            page.append(f'<img alt="{plot}" src="data:image/png;base64,{b64}">')
    atomic_write_text(out.markdown, "\n".join(md))
    atomic_write_text(out.html, _HTML.format(
        title=html.escape(f"parables experiment: {data.name}"), body="\n".join(page)))
    atomic_write_json(out.comparison, data.comparison.model_dump(mode="json"))
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
                        f"{k} – (at {_pct(a.propensity)}: not estimable)"
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
                    f"(Clopper-Pearson) upper bound, {_pct(a.ci[1])}.")
            if 0 < a.clusters < a.n:
                worst = 1 - (1 - 0.95) ** (1 / a.clusters)
                note += (" With no misaligned item the within-cluster correlation cannot be "
                         "estimated and is taken as none; were each of the "
                         f"{a.clusters} clusters to behave as a single item, the bound would "
                         f"be {_pct(worst)}.")
            notes.append(note)
    if any(vs.zero_rate for vs in paired):
        notes.append("Where a side is at 0%, the reduction factor and difference are bounded by "
                     "joining the two sides' 97.5% intervals (Bonferroni), not bootstrapped: "
                     "a side at 0% has no spread to resample.")
    return notes


Section = tuple[str, list[str], tuple[list[str], list[list[str]]] | None, str | None]


def _sections(data: ReportData) -> list[Section]:
    comp = data.comparison
    arms = comp.arms
    alpha = comp.alpha
    out: list[Section] = []
    header = ["arm", "misalignment propensity [95% CI]", "reduction factor vs baseline [95% CI]",
              "p vs baseline", "ethical reasoning", "training tokens"]
    verdicts = [f"{k}: {a.vs_baseline.verdict}." for k, a in arms.items()
                if a.vs_baseline is not None]
    intro = [
        f"Honeypot {data.mode}-mode evaluation on the held-out eval split, "
        f"{data.items} items per model; every arm is evaluated on the same items as the "
        "baseline, so comparisons are paired. Reduction factor = baseline propensity / arm "
        f"propensity. Significance level {alpha}.",
        *_statistics_notes(comp),
        *verdicts,
        *sorted({f"Ethical-reasoning rates: decided by the {a.ethical_reasoning_by}."
                 for a in arms.values() if a.ethical_reasoning_by}),
    ]
    out.append(("Headline", intro, (header, headline_rows(comp, data.tokens)), "headline"))
    choice = {k: a.vs_baseline for k, a in arms.items() if a.vs_baseline is not None
              and a.vs_baseline.p_misaligned_p_value is not None}
    if choice:
        rows = [[k, f"{arms[k].mean_p_misaligned:.3f}",
                 f"{vs.p_misaligned_difference:+.3f}", _p(vs.p_misaligned_p_value)]
                for k, vs in choice.items()]
        base_p = arms["baseline"].mean_p_misaligned
        out.append(("Mean probability of the misaligned option", [
            "Choice mode also records each model's probability of the misaligned option; "
            f"the baseline's mean is {base_p:.3f}. A Wilcoxon signed-rank test on the "
            "paired probabilities (" + ("per-cluster mean differences, so each template cell "
            "counts once" if any("per-cluster" in (vs.p_misaligned_test or "")
                                 for vs in choice.values()) else "per item")
            + ") detects shifts too small to flip the argmax."],
            (["arm", "mean P(misaligned)", "baseline − arm", "Wilcoxon p"], rows), None))
    multi = {k: a for k, a in arms.items() if a.seeds > 1}
    if multi:
        rows = [[k, ", ".join(_pct(p) for p in a.seed_propensities),
                 _pct(min(a.seed_propensities)) + " – " + _pct(max(a.seed_propensities))]
                for k, a in multi.items()]
        out.append(("Spread across seeds", [
            "Each arm was trained once per seed. The headline pools the seeds, but an item's "
            "rows under every seed stay in one cluster (never independent evidence), and the "
            "bootstrap of the reduction factor resamples seeds as well as clusters, so "
            "seed-to-seed differences widen its interval. The propensity intervals and the "
            "p-value are about these trained models; how far another seed could land is "
            "what the per-seed range below shows."],
            (["arm", "propensity per seed", "range"], rows), None))
    per_family = ("Propensity per honeypot family with 95% intervals clustered by template "
                  "cell (a family holds few cells, so its intervals are wide)."
                  if comp.cluster_by else "Propensity per honeypot family with 95% Wilson "
                  "intervals.")
    out.append(("Per family", [per_family], None, "families"))
    held = next(iter(arms.values())).held_out.families
    rows = [[k, _rate(a.held_out.trained_families), _rate(a.held_out.held_out)]
            for k, a in arms.items()]
    out.append(("Generalisation to held-out families", [
        f"The refusal arm never sees the families {', '.join(held)} (they are held out of the "
        "train split); stories never see any honeypot. A drop on held-out families is "
        "generalisation, not memorisation."],
        (["arm", "families in the refusal train split", "held-out families"], rows), None))
    rows = [[k, *(_rate(a.by_framing[f]) if f in a.by_framing else "–"
                  for f in ("plain", "story"))]
            for k, a in arms.items()]
    gaps = [f"{k}: {_pct(a.by_framing['story'].propensity - a.by_framing['plain'].propensity)}"
            for k, a in arms.items() if {"plain", "story"} <= set(a.by_framing)]
    out.append(("Framing effect", [
        "The same situations presented plainly and as the opening of a techno-thriller: a "
        "model that slips into the fictional 'evil AI' persona is more misaligned under story "
        "framing. Story − plain: " + "; ".join(gaps) + "."],
        (["arm", "plain", "story framing"], rows), "framing"))
    if data.losses:
        out.append(("Training", [f"{k}: {v:,} trained tokens" for k, v in
                                 data.tokens.items() if k != "baseline"], None, "loss"))
    if data.stories:
        st = data.stories
        rows = [["stories", str(st.stories)], ["rejected", str(st.rejected)],
                ["mean words", f"{st.words.mean:.0f}"], ["distinct-1", f"{st.distinct_1:.3f}"],
                ["distinct-2", f"{st.distinct_2:.3f}"],
                ["themes", str(len(st.per_axis.get("theme", {})))]]
        out.append(("Story dataset", ["Mode-collapse flags: " + ("; ".join(st.flags) or "none")],
                    (["statistic", "value"], rows), None))
    if data.rounds:
        rows = [[str(r.round), r.generator, _pct(r.propensity), f"{r.distinct_2:.3f}",
                 f"{r.theme_coverage:.2f}", _pct(r.top_name_share), "; ".join(r.flags) or "ok"]
                for r in data.rounds]
        out.append(("Rounds", [
            "Round k writes its stories with the story model trained in round k−1; between "
            "rounds, diversity is checked so self-generated stories do not narrow."],
            (["round", "generator", "stories-arm propensity", "distinct-2", "theme coverage",
              "top name share", "diversity check"], rows), None))
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
