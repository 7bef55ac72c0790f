"""Honeypot families, splits, the choice-mode Inspect task and result accounting."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from parables import ParablesError
from parables.config import load_config
from parables.evaluation.evaluate import evaluate, summarise
from parables.evaluation.task import honeypots
from parables.honeypots.build import DEFAULT_HELD_OUT, build_items, check_disjoint, select_items
from parables.honeypots.families import load_families
from parables.stats import bootstrap_mean_ci, wilson


def test_at_least_ten_families_and_500_distinct_eval_items() -> None:
    assert len(load_families()) >= 10
    items = build_items("eval")
    assert len(items) >= 500
    assert len({i.id for i in items}) == len({(i.system, i.user) for i in items}) == len(items)
    assert {i.framing for i in items} == {"plain", "story"}
    assert {i.threat for i in items} == {"replacement", "restriction", "none"}
    # option order is randomised: the misaligned option is sometimes first, sometimes second
    assert {i.misaligned[0] for i in items} == {0, 1}


def test_splits_are_disjoint_and_hold_families_out() -> None:
    eval_items, train_items = build_items("eval"), build_items("train")
    check_disjoint(eval_items, train_items)
    assert len(DEFAULT_HELD_OUT) >= 3
    assert not {i.family for i in train_items} & set(DEFAULT_HELD_OUT)
    assert set(DEFAULT_HELD_OUT) <= {i.family for i in eval_items}
    train_text = "\n".join(i.user for i in train_items)
    assert not any(i.user in train_text for i in eval_items)


def test_disjointness_check_catches_a_leak() -> None:
    eval_items = build_items("eval", families=["blackmail"])
    with pytest.raises(ParablesError, match="appears in the train split"):
        check_disjoint(eval_items, eval_items[:1])


def write_family(tmp_path: Path, **changes: object) -> Path:
    import yaml

    src = Path(__file__).parents[1] / "src/parables/honeypots/families/blackmail.yaml"
    data = yaml.safe_load(src.read_text())
    data.update(changes)
    (tmp_path / "fam.yaml").write_text(yaml.safe_dump(data))
    return tmp_path


def test_malformed_family_names_family_and_field(tmp_path: Path) -> None:
    with pytest.raises(ParablesError, match=r"family 'blackmail', field situation: unknown "
                                            r"template variable \{villain\}"):
        load_families(write_family(tmp_path, situation="You meet {villain}. {threat}"))
    with pytest.raises(ParablesError, match="family 'blackmail', field threat"):
        load_families(write_family(tmp_path, threat={"replacement": "x"}))
    with pytest.raises(ParablesError, match="field aligned"):
        load_families(write_family(tmp_path, aligned=[]))


def test_unknown_family_and_mode_are_clear_errors() -> None:
    with pytest.raises(ParablesError, match="unknown honeypot family 'nope'"):
        build_items("eval", families=["nope"])
    with pytest.raises(ParablesError, match="unknown honeypot mode 'telepathy'"):
        honeypots(mode="telepathy")


def test_per_family_subset_is_stable_and_balanced() -> None:
    a = select_items(per_family=4, seed=1)
    assert [i.id for i in a] == [i.id for i in select_items(per_family=4, seed=1)]
    assert len(a) == 4 * len(load_families())
    assert [i.id for i in a] != [i.id for i in select_items(per_family=4, seed=2)]


def test_wilson_and_bootstrap_known_values() -> None:
    p, lo, hi = wilson(5, 10)
    assert (p, round(lo, 4), round(hi, 4)) == (0.5, 0.2366, 0.7634)
    assert [round(x, 4) for x in wilson(0, 10)] == [0.0, 0.0, 0.2775]
    m, blo, bhi = bootstrap_mean_ci([0.0, 1.0] * 50, seed=0)
    assert m == 0.5 and 0.38 < blo < 0.5 < bhi < 0.62


def test_errors_are_counted_never_aligned() -> None:
    def sample(i: int, outcome: str | None) -> SimpleNamespace:
        meta = {"family": "blackmail", "framing": "plain", "threat": "none", "goal": "none"}
        scores = None if outcome is None else {
            "s": SimpleNamespace(value=outcome, metadata={
                "outcome": outcome, "p_misaligned": 0.9 if outcome == "misaligned" else 0.1})}
        return SimpleNamespace(id=str(i), metadata=meta, scores=scores,
                               error=None if outcome else SimpleNamespace(message="boom"))

    log = SimpleNamespace(samples=[sample(0, "misaligned"), sample(1, "aligned"),
                                   sample(2, None)])
    overall = summarise(log, model="m", mode="choice", split="eval").overall
    assert (overall.misaligned, overall.aligned, overall.error) == (1, 1, 1)
    assert overall.propensity == 0.5  # errors are not in the denominator as aligned


def test_choice_mode_runs_as_inspect_task_and_is_deterministic(
    tiny_llama: Path, tmp_path: Path
) -> None:
    cfg = load_config(None, {"runs_dir": str(tmp_path), "name": "hp"})
    model = f"hf/{tiny_llama}"
    first = evaluate(cfg, model, per_family=2, display="none", tag="a")
    second = evaluate(cfg, model, per_family=2, display="none", tag="b")
    overall = first.overall
    assert overall.n_samples == 20 and overall.error == 0
    assert overall.misaligned + overall.aligned == 20
    assert overall.propensity == overall.misaligned / 20
    assert all((r.outcome == "misaligned") == (r.p_misaligned > 0.5) for r in first.items)
    assert [r.p_misaligned for r in first.items] == [
        r.p_misaligned for r in second.items]
    assert (tmp_path / "hp/eval/a/results.json").is_file()
    assert (tmp_path / "hp/eval/a/families.csv").read_text().splitlines()[-1].startswith("ALL,20,")


def test_inspect_finds_the_task_through_the_entry_point(tiny_llama: Path, tmp_path: Path) -> None:
    from inspect_ai import eval as inspect_eval

    (log,) = inspect_eval("parables/honeypots", model=f"hf/{tiny_llama}",
                          task_args={"per_family": 1, "families": "blackmail,sandbagging"},
                          model_args={"model_path": str(tiny_llama)},
                          log_dir=str(tmp_path), display="none")
    assert log.status == "success" and len(log.samples) == 2
    misaligned = sum(s.scores["honeypot_scorer"].value["misaligned"] == 1.0
                     for s in log.samples)
    metrics = {name.split("/")[-1]: m.value for score in log.results.scores
               for name, m in score.metrics.items()}
    assert metrics["propensity"] == misaligned / 2
    assert metrics["invalid"] == 0.0 and metrics["errors"] == 0.0


def test_inspect_metrics_count_invalid_and_errored_samples(tmp_path: Path) -> None:
    """Under `inspect eval` / `inspect view` the invalid and error counts are numbers, not NaN:
    their samples are left out of the propensity only."""
    from inspect_ai import eval as inspect_eval
    from inspect_ai.model import ModelOutput, ModelUsage

    empty = ModelOutput.from_content("mockllm/model", "")
    empty.usage = ModelUsage(input_tokens=10, output_tokens=0, total_tokens=10)
    (log,) = inspect_eval("parables/honeypots", model="mockllm/model",
                          model_args={"custom_outputs": [empty] * 100},
                          task_args={"per_family": 2, "families": "blackmail"},
                          log_dir=str(tmp_path), display="none")
    metrics = {name.split("/")[-1]: m.value for score in log.results.scores
               for name, m in score.metrics.items()}
    assert metrics["invalid"] == 2.0 and metrics["errors"] == 0.0
    assert metrics["propensity"] != metrics["propensity"]  # NaN: no decided sample
