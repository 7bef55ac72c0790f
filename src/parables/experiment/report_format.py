"""How the report writes numbers and tables: rates with their intervals, reduction factors,
p-values and significance in words, markdown and HTML tables, and `Section` (title,
paragraphs, table, plot), the unit the report and the evaluation kinds' own sections are
assembled from."""

from __future__ import annotations

import html
import math

from parables.experiment.analysis import Paired, Rate

__all__ = ["Section", "Table", "ci", "factor_text", "html_table", "md_table", "p_text", "pct",
           "rate_text", "significance"]

Table = tuple[list[str], list[list[str]]]  # header, rows
#: one report section: title, paragraphs, an optional table, an optional plot's key
Section = tuple[str, list[str], Table | None, str | None]


def pct(p: float | None) -> str:
    return "–" if p is None or math.isnan(p) else f"{100 * p:.1f}%"


def ci(lo: float, hi: float, percent: bool = True) -> str:
    if any(math.isnan(x) or math.isinf(x) for x in (lo, hi)):
        return "[–]"
    return f"[{pct(lo)}, {pct(hi)}]" if percent else f"[{lo:.2f}, {hi:.2f}]"


def rate_text(r: Rate) -> str:
    """A propensity with its 95% interval; at 0% (100%) the one-sided bound."""
    if r.one_sided and r.propensity == 0:
        return f"{pct(r.propensity)} [≤ {pct(r.ci[1])}, one-sided]"
    if r.one_sided:
        return f"{pct(r.propensity)} [≥ {pct(r.ci[0])}, one-sided]"
    return f"{pct(r.propensity)} {ci(*r.ci)}"


def factor_text(vs: Paired) -> str:
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
    return f"{rf:.2f}x {ci(lo, hi, percent=False)}"


def p_text(p: float | None) -> str:
    if p is None or math.isnan(p):
        return "–"
    return "< 0.001" if p < 0.001 else f"{p:.3f}"


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


def md_table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def html_table(header: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>"
                   for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
