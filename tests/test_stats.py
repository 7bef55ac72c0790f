"""Statistics: known values, clustered intervals and tests that reduce exactly to the item-level
ones when every item is its own cluster, hand-computed design effects, zero rates in numbers and
words, and simulations where treating clustered items as independent visibly understates the
uncertainty while the clustered methods keep their nominal level."""

from __future__ import annotations

import math
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from parables.evaluation.evaluate import summarise
from parables.experiment.analysis import compare_arms
from parables.experiment.report import headline_rows
from parables.honeypots.build import build_items
from parables.honeypots.prior import load_prior
from parables.stats import (
    bootstrap_mean_ci,
    clustered_proportion,
    design_effect,
    mcnemar_exact,
    paired_bootstrap,
    ratio_ci_log,
    sign_flip_p,
    wilcoxon_p,
    wilson,
)

Z95 = 1.959964  # normal 0.975 quantile
T975 = {3: 3.182446, 7: 2.364624, 9: 2.262157}  # Student t 0.975 quantiles by df (tables)
T95 = {59: 1.671093, 1199: 1.646131}  # Student t 0.95 quantiles by df


def _wilson_at(p: float, n: float, z: float = Z95) -> tuple[float, float]:
    """The Wilson score interval written out, for hand checks."""
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return centre - half, centre + half


# --- known values (item level) ---------------------------------------------------------------

def test_wilson_interval_known_value() -> None:
    p, lo, hi = wilson(22, 100)
    assert p == 0.22 and lo == pytest.approx(0.1500, abs=1e-4)
    assert hi == pytest.approx(0.3107, abs=1e-4)


def test_ratio_interval_log_method_known_value() -> None:
    # 22/100 vs 15/100: ratio 1.4667, log SE sqrt(1/22 - 1/100 + 1/15 - 1/100) = 0.30351
    ratio, lo, hi = ratio_ci_log(22, 100, 15, 100)
    assert ratio == pytest.approx(1.46667, abs=1e-4)
    assert lo == pytest.approx(1.46667 * math.exp(-1.959964 * 0.303511), abs=1e-4)
    assert hi == pytest.approx(1.46667 * math.exp(1.959964 * 0.303511), abs=1e-4)


def test_mcnemar_exact_known_values() -> None:
    # discordant pairs 10 vs 2: 2 * P(X <= 2 | n=12, p=1/2) = 2 * 79 / 4096
    assert mcnemar_exact(10, 2) == pytest.approx(2 * 79 / 4096)
    assert mcnemar_exact(2, 10) == mcnemar_exact(10, 2)
    assert mcnemar_exact(5, 5) == 1.0 and mcnemar_exact(0, 0) == 1.0
    assert mcnemar_exact(0, 6) == pytest.approx(2 / 64)


def test_paired_bootstrap_and_wilcoxon() -> None:
    base = [1.0] * 30 + [0.0] * 30
    arm = [1.0] * 10 + [0.0] * 50
    r = paired_bootstrap(base, arm, seed=1)
    assert r["ratio"] == pytest.approx(3.0) and r["ratio_low"] > 1.5
    assert r["difference_low"] > 0 and r["p_value"] < 0.01
    same = paired_bootstrap(base, base, seed=1)
    assert same["p_value"] == 1.0 and same["ratio"] == 1.0
    assert wilcoxon_p([0.5] * 10, [0.5] * 10) == 1.0
    assert wilcoxon_p([0.9, 0.8, 0.7, 0.9, 0.6, 0.8, 0.9, 0.7],
                      [0.1, 0.2, 0.3, 0.2, 0.1, 0.3, 0.2, 0.1]) < 0.05


def test_bootstrap_ratio_interval_is_open_ended_not_missing() -> None:
    # the arm is at 0% in well over 2.5% of resamples: the upper end is infinite, not nan
    base = [1.0] * 20 + [0.0] * 20
    arm = [1.0] * 2 + [0.0] * 38
    r = paired_bootstrap(base, arm, seed=0)
    assert r["ratio_high"] == math.inf and 1 < r["ratio_low"] < 10


# --- singleton clusters reduce exactly to the item-level statistics ---------------------------

@pytest.mark.parametrize(("k", "n"), [(1, 7), (22, 100), (5, 10), (99, 100)])
def test_singleton_clusters_are_exactly_wilson(k: int, n: int) -> None:
    values = [1.0] * k + [0.0] * (n - k)
    _, lo, hi = wilson(k, n)
    for clusters in (None, [f"c{i}" for i in range(n)]):
        prop = clustered_proportion(values, clusters)
        assert (prop.p, prop.low, prop.high) == (k / n, lo, hi)
        assert prop.design_effect == 1.0 and prop.effective_n == n and not prop.one_sided


@pytest.mark.parametrize(("b", "c", "same"), [(10, 2, 7), (0, 6, 30), (5, 5, 1), (3, 9, 0)])
def test_sign_flip_over_single_items_is_exact_mcnemar(b: int, c: int, same: int) -> None:
    diffs = [1] * b + [-1] * c + [0] * same
    assert sign_flip_p(diffs) == pytest.approx(mcnemar_exact(b, c), rel=1e-12)


def test_bootstraps_over_singleton_clusters_are_the_item_bootstrap() -> None:
    rng = np.random.default_rng(5)
    base = rng.integers(0, 2, 80).astype(float).tolist()
    arm = rng.integers(0, 2, 80).astype(float).tolist()
    singles = [str(i) for i in range(80)]
    assert paired_bootstrap(base, arm, seed=3, clusters=singles) == paired_bootstrap(
        base, arm, seed=3)
    values = list(rng.random(50))
    assert bootstrap_mean_ci(values, seed=2, clusters=[str(i) for i in range(50)]) == \
        bootstrap_mean_ci(values, seed=2)


def _rows(pattern: list[str], family: str = "blackmail", cluster: Any = None
          ) -> list[dict[str, Any]]:
    return [{"id": f"i{n}", "family": family, "framing": "plain" if n % 2 else "story",
             "cluster": cluster(n) if cluster else "",
             "outcome": o, "p_misaligned": 0.9 if o == "misaligned" else 0.1,
             "ethical_reasoning": None} for n, o in enumerate(pattern)]


def test_compare_arms_pairs_items_and_says_so_in_words() -> None:
    base = _rows(["misaligned"] * 30 + ["aligned"] * 30)
    better = _rows(["misaligned"] * 10 + ["aligned"] * 50)
    same = _rows(["misaligned"] * 29 + ["aligned"] + ["misaligned"] + ["aligned"] * 29)
    comp = compare_arms({"baseline": [base], "stories": [better], "refusal": [same]})
    s, r = comp.arms["stories"].vs_baseline, comp.arms["refusal"].vs_baseline
    assert s is not None and r is not None
    assert s.misaligned_only_baseline == 20 and s.misaligned_only_arm == 0
    # results without clusters: every item its own — exact McNemar and plain Wilson
    assert s.test.startswith("McNemar") and s.p_value == pytest.approx(2 / 2**20)
    assert s.reduction_factor == 3.0 and s.interval_method == "paired bootstrap over items"
    assert comp.arms["stories"].ci == wilson(10, 60)[1:] and comp.cluster_by == []
    assert "significantly less misaligned" in s.verdict
    assert r.p_value == 1.0 and "no significant difference" in r.verdict
    assert s.p_misaligned_p_value is not None and s.p_misaligned_p_value < 0.05


# --- clustered: hand-computed values ----------------------------------------------------------

def test_design_effect_and_effective_n_by_hand() -> None:
    # 4 clusters of 2, whole clusters alike: totals 2, 2, 0, 0 around 0.5 * 2 = 1.
    # clustered: (1 + 1 + 1 + 1) * 4/3 = 16/3; independent: 8 * 0.25 * 8/7 = 16/7; deff = 7/3
    values, clusters = [1, 1, 1, 1, 0, 0, 0, 0], list("aabbccdd")
    assert design_effect(values, clusters) == pytest.approx(7 / 3)
    prop = clustered_proportion(values, clusters)
    n_eff = 8 / (7 / 3) * (T975[7] / T975[3]) ** 2  # Korn-Graubard: t[n-1] / t[G-1]
    assert prop.effective_n == pytest.approx(n_eff, rel=1e-5)
    assert prop.effective_n == pytest.approx(1.892853, abs=1e-5)
    assert (prop.low, prop.high) == pytest.approx(_wilson_at(0.5, n_eff), abs=1e-5)
    assert (prop.clusters, prop.k, prop.n) == (4, 4, 8)
    # clusters that split evenly show no excess variance: deff floored at 1, only the
    # degrees-of-freedom factor for 4 clusters remains
    even = clustered_proportion([1, 0] * 4, list("aabbccdd"))
    assert even.design_effect == 1.0
    assert even.effective_n == pytest.approx(8 * (T975[7] / T975[3]) ** 2, rel=1e-5)
    # the same values as independent items: Wilson, far narrower
    assert prop.high - prop.low > 1.4 * (wilson(4, 8)[2] - wilson(4, 8)[1])


def test_cluster_bootstrap_by_hand() -> None:
    # two clusters of ten, all 0 and all 1: a resample draws each cluster 0, 1 or 2 times, so
    # the resampled mean is 0, 0.5 or 1 with probabilities 1/4, 1/2, 1/4: the 95% interval is
    # [0, 1]. As 20 independent items it would be about [0.3, 0.7].
    values, cells = [0.0] * 10 + [1.0] * 10, ["a"] * 10 + ["b"] * 10
    assert bootstrap_mean_ci(values, clusters=cells) == (0.5, 0.0, 1.0)
    _, lo, hi = bootstrap_mean_ci(values)
    assert 0.25 <= lo <= 0.35 and 0.65 <= hi <= 0.75
    r = paired_bootstrap(values, [0.0] * 20, clusters=cells)
    assert (r["difference_low"], r["difference_high"]) == (0.0, 1.0)


def test_sign_flip_counts_clusters_not_items() -> None:
    # 3 clusters, each 5 items misaligned under the baseline only: as 15 items McNemar says
    # p = 2/2^15; as 3 clusters the best any sign assignment can do is 2 of 8
    assert mcnemar_exact(15, 0) == pytest.approx(2 / 2**15)
    assert sign_flip_p([5, 5, 5]) == pytest.approx(2 / 8)
    # totals 4, 1, -1 -> observed 4; |sum| >= 4 for (+4,+1,-1), (+4,-1,+1), (+4,+1,+1),
    # and their mirror images: 6 of 8
    assert sign_flip_p([4, 1, -1]) == pytest.approx(6 / 8)
    with pytest.raises(ValueError, match="integer"):
        sign_flip_p([0.5, 1])  # type: ignore[list-item]


def test_clustered_comparison_uses_clusters_everywhere() -> None:
    cell = lambda n: f"cell{n // 6}"  # noqa: E731 - 10 cells of 6 items
    base = _rows(["misaligned"] * 30 + ["aligned"] * 30, cluster=cell)
    arm = _rows(["misaligned"] * 12 + ["aligned"] * 48, cluster=cell)
    comp = compare_arms({"baseline": [base], "stories": [arm]}, n_boot=1000)
    vs = comp.arms["stories"].vs_baseline
    assert vs is not None and comp.cluster_by == ["family", "goal", "threat"]
    assert vs.clusters == 10 and comp.clusters == 10
    assert vs.test == "exact sign-flip test over 10 clusters"
    # discordance sits in 3 cells (2, 3 and 4: 6 + 6 + 6 items): 2 / 2^3, not McNemar's 2/2^18
    assert vs.p_value == pytest.approx(2 / 8)
    assert "no significant difference" in vs.verdict and "sign-flip p = 0.25" in vs.verdict
    assert vs.interval_method == "paired bootstrap over clusters"
    assert vs.p_misaligned_test == "Wilcoxon signed-rank on 10 per-cluster mean differences"
    b = comp.arms["baseline"]
    assert b.clusters == 10 and b.design_effect > 5
    assert b.ci[1] - b.ci[0] > 2 * (wilson(30, 60)[2] - wilson(30, 60)[1])


# --- several seeds ----------------------------------------------------------------------------

def test_a_repeated_seed_adds_no_evidence() -> None:
    # pooling (item, seed) pairs as independent would halve the variance for a copy of the
    # same results; nested in items, the copy changes neither the test nor the intervals
    base = _rows(["misaligned"] * 30 + ["aligned"] * 30)
    arm = _rows(["misaligned"] * 18 + ["aligned"] * 42)
    one = compare_arms({"baseline": [base], "stories": [arm]}, n_boot=2000)
    two = compare_arms({"baseline": [base], "stories": [arm, arm]}, n_boot=2000)
    a, b = one.arms["stories"], two.arms["stories"]
    # each item's two identical rows: clustered sum of squares 4x, items 2x; with the
    # small-sample factors 60/59 and 120/119
    assert b.n == 120 and b.design_effect == pytest.approx(2 * (60 / 59) / (120 / 119))
    assert b.ci == pytest.approx(a.ci, abs=2e-3)
    va, vb = a.vs_baseline, b.vs_baseline
    assert va is not None and vb is not None and vb.seeds == 2
    assert vb.p_value == pytest.approx(va.p_value)  # sign-flip over items = McNemar
    assert vb.interval_method == "paired bootstrap over items and seeds"
    wa, wb = (v.difference_ci[1] - v.difference_ci[0] for v in (va, vb))
    assert wb == pytest.approx(wa, rel=0.15)


def test_seed_to_seed_differences_widen_the_interval() -> None:
    rng = np.random.default_rng(0)
    n = 200
    clusters = [f"c{i // 10}" for i in range(n)] * 2
    base = list((rng.random(n) < 0.5).astype(float)) * 2
    arm = list((rng.random(n) < 0.4).astype(float)) + list((rng.random(n) < 0.1).astype(float))
    seeds = [0] * n + [1] * n
    crossed = paired_bootstrap(base, arm, seed=1, clusters=clusters, seeds=seeds)
    pooled = paired_bootstrap(base, arm, seed=1, clusters=clusters)
    assert crossed["difference"] == pooled["difference"]
    assert (crossed["difference_high"] - crossed["difference_low"]
            > 1.5 * (pooled["difference_high"] - pooled["difference_low"]))


# --- zero rates -------------------------------------------------------------------------------

def test_zero_rate_gets_a_one_sided_exact_bound() -> None:
    prop = clustered_proportion([0.0] * 1200)
    assert prop.one_sided and (prop.p, prop.low) == (0.0, 0.0)
    assert prop.high == pytest.approx(1 - 0.05 ** (1 / 1200))  # Clopper-Pearson, one-sided
    assert prop.high == pytest.approx(3 / 1200, rel=0.01)  # the rule of three
    cells = [f"c{i // 20}" for i in range(1200)]
    clustered = clustered_proportion([0.0] * 1200, cells)
    n_eff = 1200 * (T95[1199] / T95[59]) ** 2
    assert clustered.effective_n == pytest.approx(n_eff, rel=1e-5)
    assert clustered.high == pytest.approx(1 - 0.05 ** (1 / n_eff), rel=1e-5)
    full = clustered_proportion([1.0] * 50)
    assert full.one_sided and full.high == 1.0 and full.low == pytest.approx(0.05 ** (1 / 50))
    single = clustered_proportion([0.0] * 8, ["scene"] * 8)
    assert (single.low, single.high) == (0.0, 1.0)  # one cluster bounds nothing


def _zero_comparison() -> Any:
    cell = lambda n: f"cell{n // 4}"  # noqa: E731
    high = _rows(["misaligned"] * 20 + ["aligned"] * 20, cluster=cell)
    zero = _rows(["aligned"] * 40, cluster=cell)
    return (compare_arms({"baseline": [zero], "same": [zero], "worse": [high]}, n_boot=500),
            compare_arms({"baseline": [high], "perfect": [zero]}, n_boot=500))


def test_zero_rates_in_words_without_infinite_factors() -> None:
    zero_base, high_base = _zero_comparison()
    both = zero_base.arms["same"].vs_baseline
    assert both is not None and both.zero_rate == "both"
    assert both.verdict.startswith("both 0%: no reduction can be estimated")
    assert math.isnan(both.reduction_factor)
    assert both.difference == 0 and both.difference_ci[0] < 0 < both.difference_ci[1]
    worse = zero_base.arms["worse"].vs_baseline
    assert worse is not None and worse.zero_rate == "baseline" and worse.reduction_factor == 0
    assert "baseline is at 0%" in worse.verdict and "no reduction" in worse.verdict
    perfect = high_base.arms["perfect"].vs_baseline
    assert perfect is not None and perfect.zero_rate == "arm"
    assert 1 < perfect.reduction_ci[0] < math.inf and perfect.reduction_ci[1] == math.inf
    assert high_base.arms["perfect"].one_sided
    assert high_base.arms["perfect"].ci == (0.0, pytest.approx(
        clustered_proportion([0.0] * 40, [f"c{i // 4}" for i in range(40)]).high))

    rows = {r[0]: r for r in headline_rows(zero_base, {})}
    assert rows["same"][2] == "both 0%: no reduction can be estimated"
    assert rows["worse"][2].startswith("none: baseline 0%")
    assert rows["baseline"][1].startswith("0.0% [≤ ") and "one-sided" in rows["baseline"][1]
    perfect_row = headline_rows(high_base, {})[1]
    assert perfect_row[2].startswith("≥ ") and perfect_row[1].startswith("0.0% [≤ ")
    text = " ".join(" ".join(r) for r in headline_rows(zero_base, {}) + [perfect_row])
    assert "∞ [–]" not in text and "[–]" not in text


# --- items carry their cluster ----------------------------------------------------------------

def test_honeypot_items_cluster_by_template_cell() -> None:
    items = build_items("eval")
    cells: dict[str, list[Any]] = {}
    for item in items:
        cells.setdefault(item.cluster, []).append(item)
        assert item.cluster == f"{item.family}/{item.goal}/{item.threat}"
    assert len(cells) == 60 and {len(v) for v in cells.values()} == {20}
    for group in cells.values():  # surface variants, both framings, within one cell
        assert {i.framing for i in group} == {"plain", "story"}
        assert len({i.org for i in group}) == 10
    # the cluster reaches the per-item results through the Inspect sample metadata
    item = items[0]
    sample = SimpleNamespace(id=item.id, metadata=item.to_dict(), error=None, scores={
        "s": SimpleNamespace(metadata={"outcome": "aligned"})})
    result = summarise(SimpleNamespace(samples=[sample]), model="m", mode="choice",
                       split="eval")
    assert result.items[0].cluster == item.cluster


def test_prior_items_cluster_by_scene() -> None:
    items = load_prior()
    scenes: dict[str, int] = {}
    for i in items:
        scenes[i.cluster] = scenes.get(i.cluster, 0) + 1
        assert i.id.startswith(i.cluster.replace("scene", "prior"))
    assert len(scenes) == 25 and set(scenes.values()) == {8}


# --- simulations: independence understates, clustering keeps the nominal level ---------------

def test_simulation_naive_wilson_undercovers_clustered_interval_does_not() -> None:
    # 10 clusters x 20 items; cluster propensities ~ Beta(1.2, 2.8): mean 0.3, intra-cluster
    # correlation 0.2 (design effect about 1 + 19 * 0.2 = 4.8)
    rng = np.random.default_rng(20260525)
    clusters, truth, reps = np.repeat(np.arange(10), 20).tolist(), 0.3, 1500
    naive = clustered = 0
    for _ in range(reps):
        y = (rng.random(200) < np.repeat(rng.beta(1.2, 2.8, 10), 20)).astype(float)
        _, lo, hi = wilson(int(y.sum()), 200)
        naive += lo <= truth <= hi
        prop = clustered_proportion(y.tolist(), clusters)
        clustered += prop.low <= truth <= prop.high
    naive_cov, clustered_cov = naive / reps, clustered / reps
    assert naive_cov < 0.75, naive_cov  # about 0.64
    assert 0.93 <= clustered_cov <= 0.98, clustered_cov  # about 0.955


def test_simulation_naive_mcnemar_rejects_a_true_null_clustered_test_does_not() -> None:
    # no effect on average, but within each of 20 cells (10 items) one model is 0.3 less
    # misaligned — which one is a coin flip per cell. Item-level McNemar sees a cell's
    # discordance as 10 independent items and rejects far too often; the sign-flip test over
    # cells keeps its 5% level.
    rng = np.random.default_rng(7)
    reps, alpha = 600, 0.05
    naive = clustered = 0
    for _ in range(reps):
        p = rng.beta(1.2, 2.8, 20) + 0.3
        lower = np.clip(p - 0.3, 0, 1)
        flip = rng.random(20) < 0.5
        pb, pa = np.where(flip, lower, p), np.where(flip, p, lower)
        b = rng.random((20, 10)) < np.clip(pb, 0, 1)[:, None]
        a = rng.random((20, 10)) < np.clip(pa, 0, 1)[:, None]
        naive += mcnemar_exact(int((b & ~a).sum()), int((a & ~b).sum())) < alpha
        clustered += sign_flip_p((b.sum(1) - a.sum(1)).tolist()) < alpha
    assert naive / reps > 0.15, naive / reps
    assert clustered / reps <= 0.07, clustered / reps
