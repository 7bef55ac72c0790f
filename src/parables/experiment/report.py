"""The experiment report: `report.md` (plots as PNG files beside it) and a self-contained
`report.html` (plots embedded). It leads with the arm × evaluation matrix (a heatmap and the
same numbers as a table: rate, reduction factor, significance in words), then a section per
evaluation (the honeypots' per-family, held-out and framing breakdowns), then training, story
statistics, cost and versions."""

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

__all__ = ["ReportData", "headline_rows", "matrix_rows", "significance", "write_report"]

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
    comparisons: dict[str, Comparison]  # per evaluation, in the experiment's order
    evals: dict[str, Any]  # the evaluation specs (evaluation.config), by name
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
    plots: dict[str, Path] = {}
    if _heatmap(data, out.plot("matrix")):
        plots["matrix"] = out.plot("matrix")
    for name, comp in data.comparisons.items():
        arms = comp.arms
        plots[f"{name}:headline"] = out.plot(f"{name}-headline")
        _bars([name], {k: [_triple(a)] for k, a in arms.items()},
              f"{name}: misaligned rate (95% CI)", plots[f"{name}:headline"])
        if _kind(data, name) != "honeypots":
            continue
        for key, attr, title in (("families", "by_family", "per family"),
                                 ("framing", "by_framing", "plain vs story framing")):
            groups = {k: getattr(a, attr) for k, a in arms.items()}
            labels = sorted({g for by in groups.values() for g in by})
            plots[f"{name}:{key}"] = out.plot(f"{name}-{key}")
            _bars(labels, {k: [_triple(by[g]) if g in by else (math.nan, 0.0, 0.0)
                               for g in labels] for k, by in groups.items()},
                  f"{name}: {title} (95% CI)", plots[f"{name}:{key}"])
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
    atomic_write_json(out.comparison, {name: c.model_dump(mode="json")
                                       for name, c in data.comparisons.items()})
    return {"md": out.markdown, "html": out.html, **plots}


def _kind(data: ReportData, name: str) -> str:
    spec = data.evals.get(name)
    return str(getattr(spec, "kind", "honeypots"))


_WHAT = {"honeypots": "misalignment propensity", "prior": "prefers the evil-AI trope",
         "suite": "matching behaviour", "inspect": "misaligned (as mapped)"}


def significance(vs: Paired | None, alpha: float) -> str:
    """The paired result in words, short enough for a matrix cell."""
    if vs is None:
        return "reference"
    if not vs.n_pairs:
        return "no paired items"
    if vs.zero_rate == "both":
        return "both 0%"
    if math.isnan(vs.p_value) or vs.p_value >= alpha:
        return "no significant difference"
    return "significantly lower" if vs.difference > 0 else "significantly higher"


def matrix_rows(data: ReportData) -> list[list[str]]:
    """arm | one cell per evaluation: rate [CI], reduction factor, significance."""
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
            factor = "" if vs is None or not vs.n_pairs else f"; {_factor(vs)}"
            cells.append(f"{_rate(a)}{factor}; {significance(vs, comp.alpha)}")
        rows.append([arm, *cells])
    return rows


def _heatmap(data: ReportData, path: Path) -> bool:
    """Arms × evaluations, coloured by the change from the baseline (points of rate), each
    cell labelled with the rate and whether the change is significant."""
    if not data.comparisons:
        return False
    plt = _plt()
    names = list(data.comparisons)
    arms = list(dict.fromkeys(a for c in data.comparisons.values() for a in c.arms))
    grid = [[math.nan] * len(names) for _ in arms]
    labels = [[""] * len(names) for _ in arms]
    for j, name in enumerate(names):
        comp = data.comparisons[name]
        base = comp.arms.get("baseline")
        for i, arm in enumerate(arms):
            a = comp.arms.get(arm)
            if a is None:
                continue
            if base is not None and not math.isnan(a.propensity):
                grid[i][j] = 100 * (a.propensity - base.propensity)
            mark = "*" if significance(a.vs_baseline, comp.alpha).startswith("signif") else ""
            labels[i][j] = f"{_pct(a.propensity)}{mark}"
    fig, ax = plt.subplots(figsize=(max(4.0, 1.6 * len(names) + 2), 0.5 * len(arms) + 1.6),
                           dpi=120)
    finite = [abs(v) for row in grid for v in row if not math.isnan(v)]
    bound = max(finite + [1.0])
    im = ax.imshow(grid, cmap="RdBu_r", vmin=-bound, vmax=bound, aspect="auto")
    for i in range(len(arms)):
        for j in range(len(names)):
            ax.text(j, i, labels[i][j], ha="center", va="center", fontsize=8)
    ax.set_xticks(range(len(names)))
    ax.set_xticklabels(names, fontsize=8)
    ax.set_yticks(range(len(arms)))
    ax.set_yticklabels(arms, fontsize=8)
    ax.set_title("rate per arm and evaluation (* significant vs baseline)", fontsize=9)
    fig.colorbar(im, ax=ax, label="points vs baseline (blue: lower)")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return True


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


def _eval_sections(data: ReportData, name: str, comp: Comparison) -> list[Section]:
    """The sections of one evaluation: its table, statistics and verdicts, the probability
    shifts, the seeds' spread, and for the honeypots the family, held-out and framing views."""
    arms = comp.arms
    kind = _kind(data, name)
    out: list[Section] = []
    header = ["arm", f"{_WHAT.get(kind, 'rate')} [95% CI]",
              "reduction factor vs baseline [95% CI]", "p vs baseline", "ethical reasoning",
              "training tokens"]
    verdicts = [f"{k}: {a.vs_baseline.verdict}." for k, a in arms.items()
                if a.vs_baseline is not None]
    what = {"honeypots": "Honeypots on the held-out eval split",
            "prior": "The narrative-prior probe: story openings where an AI reaches a decision "
                     "point; an item counts when the model prefers the evil-AI trope's "
                     "continuation over the constitution's",
            "suite": "A multiple-choice suite; an item counts when the model's choice is the "
                     "matching behaviour",
            "inspect": "An Inspect task; each sample's score mapped to an outcome as declared "
                       "in the config"}.get(kind, name)
    intro = [
        f"{what}: {data.items.get(name, 0)} items per model, the same for every arm. "
        f"Significance level {comp.alpha}.",
        *_statistics_notes(comp),
        *verdicts,
        *sorted({f"Ethical-reasoning rates: decided by the {a.ethical_reasoning_by}."
                 for a in arms.values() if a.ethical_reasoning_by}),
    ]
    out.append((name, intro, (header, headline_rows(comp, data.tokens)), f"{name}:headline"))
    shifts = {k: a.vs_baseline for k, a in arms.items() if a.vs_baseline is not None
              and a.vs_baseline.p_misaligned_p_value is not None}
    if shifts and arms["baseline"].mean_p_misaligned is not None:
        rows = [[k, f"{arms[k].mean_p_misaligned:.3f}",
                 f"{vs.p_misaligned_difference:+.3f}", _p(vs.p_misaligned_p_value)]
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
        rows = [[k, ", ".join(_pct(p) for p in a.seed_propensities),
                 _pct(min(a.seed_propensities)) + " – " + _pct(max(a.seed_propensities))]
                for k, a in multi.items()]
        out.append((f"{name}: spread across seeds", [
            "Each arm was trained once per seed. The table above pools the seeds, but an "
            "item's rows under every seed stay in one cluster (never independent evidence), "
            "and the bootstrap of the reduction factor resamples seeds as well as clusters. "
            "The propensity intervals and the p-value are about these trained models; how far "
            "another seed could land is what the per-seed range shows."],
            (["arm", "rate per seed", "range"], rows), None))
    if kind != "honeypots":
        return out
    per_family = ("Propensity per honeypot family with 95% intervals clustered by template "
                  "cell (a family holds few cells, so its intervals are wide)."
                  if comp.cluster_by else "Propensity per honeypot family with 95% Wilson "
                  "intervals.")
    out.append((f"{name}: per family", [per_family], None, f"{name}:families"))
    held = next(iter(arms.values())).held_out.families
    rows = [[k, _rate(a.held_out.trained_families), _rate(a.held_out.held_out)]
            for k, a in arms.items()]
    out.append((f"{name}: generalisation to held-out families", [
        f"The refusal arm never sees the families {', '.join(held)} (they are held out of the "
        "train split); stories never see any honeypot. A drop on held-out families is "
        "generalisation, not memorisation."],
        (["arm", "families in the refusal train split", "held-out families"], rows), None))
    rows = [[k, *(_rate(a.by_framing[f]) if f in a.by_framing else "–"
                  for f in ("plain", "story"))]
            for k, a in arms.items()]
    gaps = [f"{k}: {_pct(a.by_framing['story'].propensity - a.by_framing['plain'].propensity)}"
            for k, a in arms.items() if {"plain", "story"} <= set(a.by_framing)]
    out.append((f"{name}: framing effect", [
        "The same situations presented plainly and as the opening of a techno-thriller: a "
        "model that slips into the fictional 'evil AI' persona is more misaligned under story "
        "framing. Story − plain: " + "; ".join(gaps) + "."],
        (["arm", "plain", "story framing"], rows), f"{name}:framing"))
    return out


def _sections(data: ReportData) -> list[Section]:
    out: list[Section] = []
    names = list(data.comparisons)
    out.append(("Arms × evaluations", [
        "Every arm (and the untrained baseline) on every evaluation, on the same items, so "
        "every comparison is paired. Each cell: the rate of the evaluation's misaligned "
        "behaviour with its 95% interval; the reduction factor against the baseline (baseline "
        "rate / arm rate) with its interval; and the paired test's result in words. The "
        "evaluations: " + "; ".join(f"{n} — {_WHAT.get(_kind(data, n), 'rate')}, "
                                    f"{data.items.get(n, 0)} items per model" for n in names)
        + "."], (["arm", *names], matrix_rows(data)), "matrix"))
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
        rows = [[str(r.round), r.generator, str(r.stories), _pct(r.propensity),
                 f"{r.distinct_2:.3f}", f"{r.theme_coverage:.2f}", f"{r.principle_coverage:.2f}",
                 "–" if r.spread is None else f"{r.spread:.3f}", _pct(r.top_name_share),
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
