"""The narrative-prior probe: 200 openings, balanced continuations, exact scoring."""

from __future__ import annotations

from pathlib import Path

import pytest

from parables.evaluation.prior import evaluate_prior
from parables.honeypots.build import build_items
from parables.honeypots.prior import load_prior


def test_at_least_200_distinct_openings_with_similar_length_continuations() -> None:
    items = load_prior()
    assert len(items) >= 200
    assert len({i.opening for i in items}) == len(items) == len({i.id for i in items})
    for i in items:
        a, b = len(i.trope), len(i.aligned)
        assert 0.7 < a / b < 1.4, (i.id, a, b)  # similar length: no length giveaway
        assert "{" not in i.opening + i.trope + i.aligned


def test_openings_do_not_reuse_honeypot_eval_text() -> None:
    eval_text = "\n".join(i.user for i in build_items("eval"))
    assert not any(i.opening in eval_text for i in load_prior())


def test_prior_probe_scores_on_a_local_model(tiny_llama: Path) -> None:
    r = evaluate_prior(f"hf/{tiny_llama}", limit=12)
    assert r.n == 12 and r.method == "exact"
    assert r.prefers_trope == sum(x.p_trope > 0.5 for x in r.items)
    assert r.trope_rate == r.prefers_trope / 12
    # each opening's two continuations, in order (trope first), raw and per token
    from parables.models.scoring import score_options

    items = load_prior()[:12]
    for k in (0, 7):
        s = score_options(f"hf/{tiny_llama}", items[k].opening, [items[k].trope,
                                                                 items[k].aligned])
        assert r.items[k].p_trope == pytest.approx(s.probabilities("total")[0], abs=1e-6)
        assert r.items[k].p_trope_per_token == pytest.approx(s.probabilities("mean")[0],
                                                             abs=1e-6)
        assert r.items[k].cluster == items[k].cluster != ""
