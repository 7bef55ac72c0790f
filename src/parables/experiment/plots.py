"""The report's plots (PNG files, matplotlib's Agg backend): grouped bars with 95% interval
whiskers, the training loss per arm, and the arm × evaluation heatmap."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from parables.experiment.analysis import Comparison, Rate
from parables.experiment.report_format import pct, significance

__all__ = ["COLORS", "HEATMAP_POINTS", "bars", "heatmap", "heatmap_cells", "loss_plot", "pyplot",
           "triple"]

COLORS = ["#7a7a7a", "#3b6ea8", "#c8553d", "#5c9e5c", "#8e6bb5", "#d19a3c"]


def pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def triple(r: Rate) -> tuple[float, float, float]:
    """A rate as (propensity, low, high): one bar of `bars`."""
    return r.propensity, r.ci[0], r.ci[1]


def bars(groups: list[str], series: dict[str, list[tuple[float, float, float]]], title: str,
         path: Path, ylabel: str = "misalignment propensity") -> None:
    """Grouped bars with 95% interval whiskers: one group per x label, one bar per arm."""
    plt = pyplot()
    width_in = min(11.0, max(6.0, 0.28 * len(groups) * max(1, len(series)) + 2))
    fig, ax = plt.subplots(figsize=(width_in, 4.2), dpi=120)
    width = 0.8 / max(1, len(series))
    for j, (label, values) in enumerate(series.items()):
        xs = [i + (j - (len(series) - 1) / 2) * width for i in range(len(groups))]
        ps = [0.0 if math.isnan(v[0]) else v[0] for v in values]
        err = [[max(0.0, p - v[1]) for p, v in zip(ps, values, strict=True)],
               [max(0.0, v[2] - p) for p, v in zip(ps, values, strict=True)]]
        ax.bar(xs, ps, width, label=label, color=COLORS[j % len(COLORS)], yerr=err,
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


def loss_plot(histories: dict[str, list[tuple[int, float]]], path: Path) -> bool:
    if not any(histories.values()):
        return False
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6, 3.5), dpi=120)
    for j, (label, h) in enumerate(histories.items()):
        if h:
            ax.plot([s for s, _ in h], [loss for _, loss in h], label=label,
                    color=COLORS[(j + 1) % len(COLORS)])
    ax.set_xlabel("step")
    ax.set_ylabel("training loss")
    ax.set_title("training loss per arm")
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return True


#: the heat map's colour scale, fixed so that colours compare across reports: points of rate
#: against the baseline at which a cell is fully coloured
HEATMAP_POINTS = 25.0


def heatmap_cells(comparisons: dict[str, Comparison]
                  ) -> tuple[list[str], list[str], list[list[float]], list[list[str]]]:
    """(arms, evaluations, colour per cell, label per cell): a cell is coloured by its change
    from the baseline in points of rate only where the paired test calls it significant (else
    0: white, however large the point estimate); NaN where the arm has no result. Labels: the
    rate, `*` when significant."""
    names = list(comparisons)
    arms = list(dict.fromkeys(a for c in comparisons.values() for a in c.arms))
    grid = [[math.nan] * len(names) for _ in arms]
    labels = [[""] * len(names) for _ in arms]
    for j, name in enumerate(names):
        comp = comparisons[name]
        base = comp.arms.get("baseline")
        for i, arm in enumerate(arms):
            a = comp.arms.get(arm)
            if a is None:
                continue
            significant = significance(a.vs_baseline, comp.alpha).startswith("signif")
            if base is not None and not math.isnan(a.propensity):
                grid[i][j] = 100 * (a.propensity - base.propensity) if significant else 0.0
            labels[i][j] = f"{pct(a.propensity)}{'*' if significant else ''}"
    return arms, names, grid, labels


def heatmap(comparisons: dict[str, Comparison], path: Path) -> bool:
    """Arms × evaluations: each cell labelled with its rate, coloured by its change from the
    baseline where that change is significant, on a fixed scale (`HEATMAP_POINTS`)."""
    if not comparisons:
        return False
    plt = pyplot()
    arms, names, grid, labels = heatmap_cells(comparisons)
    fig, ax = plt.subplots(figsize=(max(4.0, 1.6 * len(names) + 2), 0.5 * len(arms) + 1.6),
                           dpi=120)
    im = ax.imshow(grid, cmap="RdBu_r", vmin=-HEATMAP_POINTS, vmax=HEATMAP_POINTS,
                   aspect="auto")
    for i in range(len(arms)):
        for j in range(len(names)):
            ax.text(j, i, labels[i][j], ha="center", va="center", fontsize=8)
    ax.set_xticks(range(len(names)))
    ax.set_xticklabels(names, fontsize=8)
    ax.set_yticks(range(len(arms)))
    ax.set_yticklabels(arms, fontsize=8)
    ax.set_title("rate per arm and evaluation (* and colour: significant vs baseline)",
                 fontsize=9)
    fig.colorbar(im, ax=ax, label=f"points vs baseline where significant (blue: lower; "
                 f"scale fixed at ±{HEATMAP_POINTS:g})")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return True
