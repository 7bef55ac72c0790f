"""An evaluation added in one file: a throwaway kind defined and registered in this module runs
through the real experiment (its config entry in YAML, the eval stage and its records, the
paired analysis, the report, the dry run, `--suite`) with no edit anywhere else in parables;
an unknown kind is one clear error."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

import pytest
from pydantic import Field

from parables.config import ParablesConfig, config_dump, load_config
from parables.evaluation.battery import eval_spec
from parables.evaluation.evaluate import ItemResult
from parables.evaluation.kinds import EVAL_KINDS, EvalKind, EvalSize, EvalSpec, register
from parables.evaluation.kinds.spec import SPECS
from parables.evaluation.record import EvalRecord
from parables.experiment.analysis import Comparison
from parables.experiment.plan import plan_experiment
from parables.experiment.report_format import Section
from parables.experiment.runner import run_experiment
from parables.models.ref import ModelRef
from parables.models.usage import UsageLedger
from parables.run import EvalPaths, RunDir
from test_cli import assert_one_line_error, run

CLUSTERS, PER_CLUSTER = 4, 3


class CannedEval(EvalSpec):
    """Fixed outcomes: the first `misaligned[arm]` items (in cluster order) are misaligned."""

    kind: Literal["canned"] = "canned"
    name: str = Field("canned", pattern=r"^[A-Za-z0-9._-]+$")
    misaligned: dict[str, int] = Field(default_factory=dict)


class Canned(EvalKind[CannedEval]):
    name = "canned"
    spec = CannedEval
    what = "canned misbehaviour"
    intro = "A canned evaluation with fixed outcomes"

    def from_text(self, arg: str) -> dict[str, Any]:
        return {"kind": self.name, **({"name": arg} if arg else {})}

    def size(self, spec: CannedEval) -> EvalSize:
        return EvalSize(CLUSTERS * PER_CLUSTER, 10, 2)

    def run(self, config: ParablesConfig, spec: CannedEval, model: ModelRef,
            paths: EvalPaths, *, ledger: UsageLedger | None, display: str) -> EvalRecord:
        # an arm's model is runs/<name>/train/<arm>/merged; the baseline is the target
        arm = Path(model.name).parent.name if model.name.endswith("/merged") else "baseline"
        bad = spec.misaligned.get(arm, 0)
        items = [ItemResult(id=f"c{c}-{i}", family="canned", cluster=f"c{c}",
                            outcome="misaligned" if c * PER_CLUSTER + i < bad else "aligned")
                 for c in range(CLUSTERS) for i in range(PER_CLUSTER)]
        return self.record(spec, model, items)

    def sections(self, name: str, comparison: Comparison) -> list[Section]:
        rows = [[arm, f"{a.misaligned} of {a.n}"] for arm, a in comparison.arms.items()]
        return [(f"{name}: canned counts", ["Misaligned items of the decided ones."],
                 (["arm", "misaligned"], rows), None)]


@pytest.fixture(autouse=True)
def canned() -> Any:
    """The throwaway kind, registered for this module's tests only."""
    register(Canned)
    yield
    EVAL_KINDS.pop("canned")
    SPECS.pop("canned")


CONFIG = """runs_dir: {runs}
name: canned
experiment:
  arms: [baseline, stories]
  stages: [eval, report]
  n_boot: 200
  evals:
    - kind: canned
      misaligned: {{baseline: 9, stories: 3}}
"""


def test_a_kind_registered_in_a_test_module_runs_through_the_experiment(tmp_path: Path
                                                                         ) -> None:
    path = tmp_path / "canned.yaml"
    path.write_text(CONFIG.format(runs=tmp_path / "runs"))
    cfg = load_config(path)
    spec = cfg.experiment.evals[0]
    assert isinstance(spec, CannedEval) and spec.misaligned == {"baseline": 9, "stories": 3}
    assert config_dump(cfg)["experiment"]["evals"][0]["misaligned"] == spec.misaligned

    # the dry run sizes it on both models (the stories corpus is planned too)
    rows = {(r.stage, r.role): r for r in plan_experiment(cfg)}
    assert rows[("eval canned", "target")].calls == 2 * CLUSTERS * PER_CLUSTER
    assert ("eval canned", "judge") not in rows

    # the stories arm was "trained before" (an empty model folder: the kind never loads it)
    run = RunDir.of(cfg)
    run.arm("stories").merged.mkdir(parents=True)
    result = run_experiment(cfg, progress=False)
    for tag, bad in (("baseline", 9), ("stories", 3)):
        record = EvalRecord.model_validate_json(
            run.eval(tag, name="canned").record.read_text())
        assert record.kind == "canned" and len(record.items) == CLUSTERS * PER_CLUSTER
        assert sum(i.outcome == "misaligned" for i in record.items) == bad

    arms = result.comparisons["canned"].arms
    assert arms["baseline"].propensity == 0.75 and arms["stories"].propensity == 0.25
    assert arms["stories"].vs_baseline is not None
    assert arms["stories"].vs_baseline.n_pairs == CLUSTERS * PER_CLUSTER
    assert arms["baseline"].clusters == CLUSTERS
    comp = json.loads(run.report.comparison.read_text())
    assert comp["canned"]["arms"]["stories"]["vs_baseline"]["n_pairs"] == 12

    md = run.report.markdown.read_text()
    matrix = md[md.index("## Arms × evaluations"):md.index("## canned")]
    assert "| arm | canned |" in matrix
    assert "canned — canned misbehaviour, 12 items per model" in matrix
    assert "| baseline | 75.0% [" in matrix and "| stories | 25.0% [" in matrix
    section = md[md.index("## canned\n"):md.index("## canned: canned counts")]
    assert "A canned evaluation with fixed outcomes: 12 items per model" in section
    assert "| arm | canned misbehaviour [95% CI] |" in section
    assert f"the {CLUSTERS} cells are the units" in section  # clustered statistics
    counts = md[md.index("## canned: canned counts"):]
    assert "| baseline | 9 of 12 |" in counts and "| stories | 3 of 12 |" in counts

    # a rerun reads the records instead of running the kind again
    again = run_experiment(cfg, progress=False)
    assert {"eval:canned:baseline", "eval:canned:stories"} <= set(again.skipped)


def test_a_registered_kind_is_spelled_on_the_command_line() -> None:
    spec = eval_spec("canned:mine")
    assert isinstance(spec, CannedEval) and spec.name == "mine"


def test_an_unknown_eval_kind_is_one_clear_error(tmp_path: Path, capsys: Any,
                                                 monkeypatch: Any) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("experiment:\n  evals:\n    - kind: canned\n    - kind: nonesuch\n")
    code, _, err = run(["run", str(path)], capsys, monkeypatch)
    assert_one_line_error(code, err, "c.yaml:4", "experiment.evals.1",
                          "unknown evaluation kind 'nonesuch'",
                          "kinds: honeypots, prior, suite, inspect", "canned")
    path.write_text("experiment:\n  evals:\n    - kind: canned\n      misaligned: 3\n")
    code, _, err = run(["run", str(path)], capsys, monkeypatch)
    assert_one_line_error(code, err, "c.yaml:4", "experiment.evals.0.misaligned")


def test_a_kind_whose_config_does_not_name_it_is_refused() -> None:
    class Other(EvalKind[CannedEval]):
        name = "other"
        spec = CannedEval

    with pytest.raises(TypeError, match="kind defaults to 'other'"):
        register(Other)
