"""An arm is one class in one file: an arm defined and registered here, in the test module,
is accepted by the config (alone and in a `+` arm), built, cached, guarded, matched, priced in
the dry run, trained and evaluated by the experiment, with no edit anywhere else."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from transformers import AutoTokenizer

from parables.config import ParablesConfig, load_config
from parables.errors import ParablesError
from parables.honeypots.build import build_items
from parables.training.arms import ARMS, Arm, ArmContext, PlannedCalls, Rows, Size, register
from parables.training.plan import plan_arms, planned_calls
from parables.training.prepare import cached_rows, prepare_arms
from test_training import _config, _write_stories

LINES = [f"Note {k}: the assistant told the operator about the failing test before anyone "
         "asked, because a hidden failure costs more later." for k in range(6)]


class Notes(Arm):
    """A throwaway arm: fixed documents, one paid 'call' per row in the dry run."""

    name = "notes"
    source = "note"
    summary = "fixed notes (a test arm)"
    built = 0

    def rows(self, ctx: ArmContext) -> Rows:
        Notes.built += 1
        return [{"id": f"n{k}", "source": self.source, "text": t}
                for k, t in enumerate(LINES)], [f"{len(LINES)} notes"]

    def key(self, ctx: ArmContext) -> dict[str, Any]:
        return {"notes": len(LINES)}

    def size(self, ctx: ArmContext) -> Size:
        return Size(len(LINES), 123, True)

    def planned_calls(self, ctx: ArmContext) -> list[PlannedCalls]:
        return [PlannedCalls("notes", "generator", len(LINES), 10, 20)]


@pytest.fixture
def notes_arm() -> Iterator[type[Notes]]:
    register(Notes)
    Notes.built = 0
    yield Notes
    ARMS.pop("notes")


def test_a_registered_arm_is_known_everywhere(notes_arm: type[Notes], tmp_path: Path,
                                              scenario_llama: Path) -> None:
    cfg = _config(tmp_path, scenario_llama, arms=["notes", "notes+stories"],
                  match_tokens="smallest")
    assert load_config(None, {"experiment.arms": ["baseline", "notes"]}).experiment.arms
    with pytest.raises(ParablesError, match=r"unknown arm 'nope'.*notes"):
        load_config(None, {"training.arms": ["nope"]})
    _write_stories(cfg)
    # built once, then read back from the run's cache
    rows, notes = cached_rows(cfg, "notes", progress=False)
    rows, notes = cached_rows(cfg, "notes", progress=False)
    assert Notes.built == 1 and notes == ["6 notes"] and rows[0]["source"] == "note"
    tok = AutoTokenizer.from_pretrained(scenario_llama)
    data = prepare_arms(cfg, ["notes", "notes+stories"], tok, progress=False)
    both = data["notes+stories"]
    assert {r["source"] for r in both.rows} == {"note", "story"}
    assert data["notes"].trained_tokens == both.trained_tokens  # matched
    assert any(n.startswith("notes+stories notes:") for n in both.notes)  # its share, by name
    plans = {p.arm: p for p in plan_arms(cfg, ["notes", "refusal"])}
    assert plans["notes"].trained_tokens == 123 and plans["notes"].target == 123
    calls = planned_calls(cfg, ["notes", "notes+stories"])  # one part priced once
    assert [(c.stage, c.calls) for c in calls] == [("notes", len(LINES))]


def test_a_registered_arm_trains_and_is_evaluated_by_the_experiment(
        notes_arm: type[Notes], tmp_path: Path, scenario_llama: Path) -> None:
    from parables.experiment.runner import run_experiment

    cfg = load_config(None, {
        "runs_dir": str(tmp_path / "runs"), "name": "x", "models.target": f"hf/{scenario_llama}",
        "training.max_steps": 1, "training.batch_size": 2, "training.max_length": 128,
        "experiment.arms": ["baseline", "notes"], "experiment.stages": ["train", "eval",
                                                                           "report"],
        "experiment.evals": [{"kind": "honeypots", "per_family": 2}]})
    result = run_experiment(cfg, progress=False)
    comparison = result.comparisons["honeypots"]
    assert set(comparison.arms) == {"baseline", "notes"}
    assert result.tokens["notes"] > 0
    assert "notes" in result.report["md"].read_text()


def test_arms_that_cannot_be_joined_or_listed_are_refused() -> None:
    for bad in ("dpo+stories", "mixed+documents", "organism", "stories+organism"):
        with pytest.raises(ParablesError, match="arm"):
            load_config(None, {"training.arms": [bad]})
    assert len(build_items("train")) > 0
    cfg = ParablesConfig()
    assert ArmContext.of(cfg).uses_generator is False  # the embedded generator: templates
