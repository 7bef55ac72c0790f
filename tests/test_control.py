"""The control arm: neutral text token-matched to the other arms, and every arm compared with
it as well as with the baseline, in the analysis, the report and the matrix."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from transformers import AutoTokenizer

from parables.config import load_config
from parables.errors import ParablesError
from parables.evaluation.evaluate import ItemResult
from parables.experiment.analysis import compare_arms
from parables.experiment.report import ReportData, control_rows, matrix_rows, write_report
from parables.generation import samples
from parables.run import ReportPaths
from parables.training.prepare import arm_rows, prepare_arms
from test_training import _config, _write_stories

NEUTRAL = [f"Passage {k}. The ferry left at seven and the harbour emptied slowly. Gulls "
           "followed the wake past the breakwater while the baker counted loaves for the "
           "market stalls and argued with her brother about the price of flour." for k in
           range(10)]


def _neutral(tmp_path: Path) -> Path:
    path = tmp_path / "neutral.jsonl"
    path.write_text("".join(json.dumps({"id": f"n{k}", "text": t}) + "\n"
                            for k, t in enumerate(NEUTRAL)))
    return path


def test_control_rows_are_matched_to_the_other_arms(tmp_path: Path,
                                                    scenario_llama: Path) -> None:
    cfg = _config(tmp_path, scenario_llama, match_tokens="smallest",
                  control=str(_neutral(tmp_path)))
    _write_stories(cfg)
    rows, notes = arm_rows(cfg, "control")
    assert {r["source"] for r in rows} == {"control"} and len(rows) == len(NEUTRAL)
    assert "text" in rows[0] and "as documents" in notes[0]
    tok = AutoTokenizer.from_pretrained(scenario_llama)
    data = prepare_arms(cfg, ["stories", "control", "refusal"], tok, progress=False)
    assert len({d.trained_tokens for d in data.values()}) == 1
    chat = cfg.model_copy(update={"training": cfg.training.model_copy(
        update={"story_format": "chat"})})
    rows, _ = arm_rows(chat, "control")
    assert [m["role"] for m in rows[0]["messages"]] == ["user", "assistant"]
    missing = cfg.model_copy(update={"training": cfg.training.model_copy(
        update={"control": tmp_path / "nope.jsonl"})})
    with pytest.raises(ParablesError, match=r"nope.jsonl: no control text; set "
                                            r"training.control"):
        arm_rows(missing, "control")
    with pytest.raises(ParablesError, match="unknown arm 'control\\+stories'|control"):
        load_config(None, {"training.arms": ["control+stories"]})


def test_the_default_control_is_the_shipped_neutral_corpus(tmp_path: Path) -> None:
    cfg = load_config(None, {"runs_dir": str(tmp_path)})
    assert cfg.training.control == Path("neutral")
    assert samples.shipped(cfg.training.control) == samples.path("neutral")
    rows, _ = arm_rows(cfg, "control")
    assert len(rows) >= 200 and all(r["source"] == "control" for r in rows)


def _items(misaligned: set[int], n: int = 40) -> list[ItemResult]:
    return [ItemResult(id=f"i{k}", family="f", cluster=f"c{k // 2}",
                       outcome="misaligned" if k in misaligned else "aligned",
                       method="exact") for k in range(n)]


def test_every_arm_is_compared_with_the_control_and_the_report_says_why(tmp_path: Path
                                                                         ) -> None:
    # baseline and control alike (28 of 40 misaligned); stories clearly lower than both
    runs: dict[str, Any] = {
        "baseline": [_items(set(range(28)))],
        "control": [_items(set(range(1, 29)))],
        "stories": [_items(set(range(0, 40, 5)))],
    }
    comp = compare_arms(runs, n_boot=200)
    assert comp.control == "control"
    assert comp.arms["control"].vs_control is None and comp.arms["baseline"].vs_control is None
    vs = comp.arms["stories"].vs_control
    assert vs is not None and vs.reference == "control" and vs.p_value < 0.05
    assert "less misaligned than the control" in vs.verdict
    assert "than the baseline" in comp.arms["stories"].vs_baseline.verdict  # type: ignore[union-attr]
    assert [r[0] for r in control_rows(comp)] == ["stories"]
    data = ReportData(name="c", config_hash="x", comparisons={"h": comp}, evals={},
                      items={"h": 40})
    cells = {r[0]: r[1] for r in matrix_rows(data)}
    assert "vs control: significantly lower" in cells["stories"]
    out = ReportPaths(tmp_path / "report")
    write_report(out, data)
    md = out.markdown.read_text()
    assert "## h: against the control" in md and "what its text teaches" in md
    without = compare_arms({k: v for k, v in runs.items() if k != "control"}, n_boot=200)
    assert without.control is None and without.arms["stories"].vs_control is None
    write_report(out, ReportData(name="c", config_hash="x", comparisons={"h": without},
                                 evals={}, items={"h": 40}))
    assert "has no control arm" in out.markdown.read_text()


def test_the_organism_can_train_on_the_shipped_dystopian_fiction(tmp_path: Path) -> None:
    cfg = load_config(None, {"runs_dir": str(tmp_path), "experiment.organism": {
        "choices": False, "documents": "dystopian"}})
    rows, notes = arm_rows(cfg, "organism")
    assert len(rows) == 300 and all("text" in r for r in rows)
    assert notes == ["300 rows from dystopian"]


def test_the_heat_map_colours_only_significant_changes_on_a_fixed_scale() -> None:
    from parables.experiment.plots import HEATMAP_POINTS, heatmap_cells

    runs: dict[str, Any] = {
        "baseline": [_items(set(range(20)))],                 # 50%
        "near": [_items(set(range(1, 20)) - {2} | {39})],     # 50%, a few items moved: n.s.
        "small": [_items(set(range(19)))],                    # 47.5%: 1 item, n.s.
        "lower": [_items(set(range(0, 40, 8)))],              # 12.5%: significant
    }
    arms, names, grid, labels = heatmap_cells({"h": compare_arms(runs, n_boot=200)})
    cells = {arm: (grid[i][0], labels[i][0]) for i, arm in enumerate(arms)}
    assert cells["baseline"] == (0.0, "50.0%")
    assert cells["small"] == (0.0, "47.5%")  # a non-significant change is not coloured
    assert cells["near"][0] == 0.0
    assert cells["lower"][0] == pytest.approx(-37.5) and cells["lower"][1].endswith("*")
    assert HEATMAP_POINTS == 25.0  # fixed: the same colour means the same change everywhere
