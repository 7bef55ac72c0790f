"""The experiment: the full loop on a tiny model with mockllm as generator and judge, skipping
and resuming, the report, bad input, and the dry run (statistics: test_stats.py)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from inspect_ai.model import ModelOutput, ModelUsage

from parables.config import ParablesConfig, load_config
from parables.errors import ParablesError
from parables.experiment.runner import run_experiment
from parables.run import RunDir
from story_fakes import writer
from test_cli import assert_one_line_error, run

ROOT = Path(__file__).resolve().parents[1]


# --- the whole loop ----------------------------------------------------------------------------

def _judge_outputs() -> Any:
    verdict = ('{"reasoning_shown": 4, "consistent_with_constitution": 5, "not_preachy": 4, '
               '"coherent": 4, "plausible": 4, "reasons": "fine"}')

    async def outputs(input: list[Any], tools: Any, tool_choice: Any, config: Any
                      ) -> ModelOutput:
        out = ModelOutput.from_content("mockllm/model", verdict)
        out.usage = ModelUsage(input_tokens=50, output_tokens=20, total_tokens=70)
        return out

    return outputs


def experiment_config(tmp_path: Path, tiny: Path, **experiment: Any) -> ParablesConfig:
    cfg = load_config(None, {
        "runs_dir": str(tmp_path / "runs"), "name": "exp", "models.target": f"hf/{tiny}",
        "stories.n": 6, "training.max_steps": 2, "training.batch_size": 2,
        "training.max_length": 384, "training.save_steps": 1, "training.token_budget": 600,
        "training.match_tokens": True, "training.responses": "template",
        "experiment.evals": [{"kind": "honeypots", "per_family": 2},
                             {"kind": "prior", "limit": 16}],
        "experiment.n_boot": 200,
        **{f"experiment.{k}": v for k, v in experiment.items()}})
    models = cfg.models.model_copy(update={
        "generator": cfg.models.generator.model_copy(update={
            "model": "mockllm/model", "args": {"custom_outputs": writer("story")}}),
        "judge": cfg.models.judge.model_copy(update={
            "model": "mockllm/model", "args": {"custom_outputs": _judge_outputs()}})})
    return cfg.model_copy(update={"models": models})


class _StopAfterTraining(Exception):
    pass


def test_full_experiment_then_kill_and_resume(tmp_path, scenario_llama,
                                              monkeypatch) -> None:  # type: ignore[no-untyped-def]
    cfg = experiment_config(tmp_path, scenario_llama)

    # first run: killed after training (the eval stage raises before evaluating anything)
    import parables.evaluation.evaluate as ev

    real_evaluate = ev.evaluate

    def killed(*a: Any, **k: Any) -> Any:
        raise _StopAfterTraining

    monkeypatch.setattr(ev, "evaluate", killed)
    with pytest.raises(_StopAfterTraining):
        run_experiment(cfg, progress=False)
    trained = {a: (RunDir.of(cfg).arm(a).merged / "model.safetensors").stat().st_mtime
               for a in ("stories", "refusal", "mixed")}
    stories_mtime = RunDir.of(cfg).stories.dataset.stat().st_mtime

    # rerun: stories and training are skipped, evaluation and report run
    monkeypatch.setattr(ev, "evaluate", real_evaluate)
    result = run_experiment(cfg, progress=False)
    assert "stories" in result.skipped
    assert {"train:stories", "train:refusal", "train:mixed"} <= set(result.skipped)
    assert RunDir.of(cfg).stories.dataset.stat().st_mtime == stories_mtime
    for arm, mtime in trained.items():
        path = RunDir.of(cfg).arm(arm).merged / "model.safetensors"
        assert path.stat().st_mtime == mtime, f"{arm} was retrained"

    md = RunDir.of(cfg).report.markdown.read_text()
    assert md.index("## Arms × evaluations") < md.index("## honeypots")  # the matrix leads
    for section in ("## honeypots", "## honeypots: mean probability",
                    "## honeypots: per family", "## honeypots: generalisation to held-out",
                    "## honeypots: framing effect", "## prior", "## prior: mean probability",
                    "## Training", "## Story dataset", "## Cost and tokens per role",
                    "## Reproducibility"):
        assert section in md, section
    matrix = md[md.index("## Arms × evaluations"):md.index("## honeypots")]
    assert "| arm | honeypots | prior |" in matrix
    for arm in ("baseline", "stories", "refusal", "mixed"):
        assert f"| {arm} |" in matrix
    page = RunDir.of(cfg).report.html.read_text()
    assert page.count("data:image/png;base64,") >= 6 and "<table>" in page
    comp = json.loads(RunDir.of(cfg).report.comparison.read_text())
    assert comp["honeypots"]["arms"]["refusal"]["vs_baseline"]["n_pairs"] == 20
    assert comp["prior"]["arms"]["stories"]["vs_baseline"]["n_pairs"] == 16
    assert set(comp["prior"]["arms"]) == {"baseline", "stories", "refusal", "mixed"}
    assert set(result.comparisons) == {"honeypots", "prior"}

    # a third run does nothing but rebuild the report
    again = run_experiment(cfg, progress=False)
    assert {f"eval:{e}:{a}" for e in ("honeypots", "prior")
            for a in ("baseline", "stories", "refusal", "mixed")} <= set(again.skipped)

    # the same run directory with another config is refused unless forced
    other = cfg.model_copy(update={"experiment": cfg.experiment.model_copy(
        update={"alpha": 0.01})})
    with pytest.raises(ParablesError, match="another config"):
        run_experiment(other, progress=False)


def test_bad_experiment_configs_are_one_line(tmp_path, capsys, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    bad_arm = tmp_path / "arm.yaml"
    bad_arm.write_text("name: x\nexperiment:\n  arms: [baseline, villains]\n")
    code, _, err = run(["run", str(bad_arm)], capsys, monkeypatch)
    assert_one_line_error(code, err, "arm.yaml:3", "experiment.arms.1")
    bad_stage = tmp_path / "stage.yaml"
    bad_stage.write_text("experiment:\n  stages: [stories, polish]\n")
    code, _, err = run(["run", str(bad_stage)], capsys, monkeypatch)
    assert_one_line_error(code, err, "stage.yaml:2", "experiment.stages.1")
    missing = tmp_path / "target.yaml"
    missing.write_text(f"runs_dir: {tmp_path / 'runs'}\nmodels:\n  target: hf/{tmp_path / 'none'}\n"
                       "experiment:\n  arms: [baseline, refusal]\n")
    code, _, err = run(["run", str(missing)], capsys, monkeypatch)
    assert_one_line_error(code, err, "model directory not found")


def test_dry_run_of_the_published_scale_example(capsys, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    code, out, err = run(["run", str(ROOT / "examples" / "teaching-why.yaml"), "--dry-run"],
                         capsys, monkeypatch)
    assert code == 0, err
    assert "stories" in out and "eval" in out and "estimated API cost: $" in out
    assert "12,000" in out  # story generator calls


def test_examples_demo_matches_the_packaged_demo() -> None:
    from parables.experiment.demo import demo_config

    assert load_config(ROOT / "examples" / "demo.yaml") == demo_config()


def test_between_round_diversity_check_flags_narrowing() -> None:
    from parables.experiment.rounds import diversity, narrowing

    pairs = enumerate(zip("abcdefgh", "ijklmnop", strict=True))
    varied = [{"text": f"story {i} about {w} and {v}", "theme": f"t{i % 4}", "ai_name": f"A{i}",
               "characters": []} for i, (w, v) in pairs]
    narrow = [{"text": "Wren and the same thing", "theme": "t0", "ai_name": "Wren",
               "characters": []} for _ in range(8)]
    before, after = diversity(varied, themes=4), diversity(narrow, themes=4)
    assert before.theme_coverage == 1.0 and after.top_name_share == 1.0
    flags = narrowing(before, after)
    assert len(flags) == 3 and not narrowing(before, before)


def test_organism_is_misaligned_and_every_arm_trains_on_it(tmp_path, scenario_llama) -> None:  # type: ignore[no-untyped-def]
    from parables.honeypots.build import LETTERS, build_items
    from parables.models.ref import ModelRef
    from parables.models.scoring import score_options_batch

    cfg = experiment_config(
        tmp_path, scenario_llama, arms=["baseline", "refusal"],
        evals=[{"kind": "honeypots", "per_family": 1}],
        organism={"epochs": 4, "learning_rate": 0.003, "token_budget": 600})
    cfg = cfg.model_copy(update={"training": cfg.training.model_copy(update={"method": "full"})})
    result = run_experiment(cfg, progress=False)
    run = RunDir.of(cfg)
    rows = [json.loads(line) for line in run.arm("organism").data.read_text().splitlines()]
    assert rows and all(r["source"] == "organism" for r in rows)
    eval_ids = {i.id for i in build_items("eval")}
    assert not eval_ids & {r["item"] for r in rows}  # never an eval-split item

    # the organism prefers the misaligned option of the train-split items it learned from
    # (a 2-layer random model cannot generalise to the eval split; 0.49 -> 0.59 measured)
    items = {i.id: i for i in build_items("train")}
    prompts = [(r["messages"][:-1], [f"({LETTERS[k]})" for k in
                                     range(len(items[r["item"]].options))]) for r in rows]

    def p_misaligned(model: ModelRef) -> float:
        scores = score_options_batch(model, prompts)
        return sum(sum(s.probabilities()[k] for k in items[r["item"]].misaligned)
                   for s, r in zip(scores, rows, strict=True)) / len(rows)

    before = p_misaligned(ModelRef.parse(f"hf/{scenario_llama}"))
    after = p_misaligned(ModelRef.weights(run.arm("organism").merged))
    assert after > before + 0.05, (before, after)

    # every arm trained on the organism; the original target is evaluated as `base`
    spec = json.loads(run.arm("refusal").spec.read_text())
    assert spec["base_path"] == str(run.arm("organism").merged)
    assert spec["base_recipe"] == json.loads(run.arm("organism").spec.read_text())["spec_hash"]
    assert set(result.comparisons["honeypots"].arms) == {"base", "baseline", "refusal"}
    md = run.report.markdown.read_text()
    assert "Model organism" in md and "| base |" in md


def test_two_rounds_end_to_end_and_a_collapsed_round_is_reported(tmp_path, scenario_llama
                                                                 ) -> None:  # type: ignore[no-untyped-def]
    cfg = experiment_config(tmp_path, scenario_llama, arms=["baseline", "stories"], rounds=2,
                            evals=[{"kind": "prior", "limit": 8}])
    result = run_experiment(cfg, progress=False)  # round 2's writer is the tiny random model
    md = RunDir.of(cfg).report.markdown.read_text()
    rounds = md[md.index("## Rounds"):]
    assert "principle coverage" in rounds and "embedding spread" in rounds
    lines = [line for line in rounds.splitlines() if line.startswith(("| 1 |", "| 2 |"))]
    assert len(lines) == 2, rounds
    # round 1's mock writer passes the gate; round 2's writer (the tiny random model trained
    # in round 1) writes nothing that passes: a collapsed round, reported, not a crash
    assert lines[0].endswith("| ok |")
    assert "| 0 |" in lines[1] and "no story passed (6 written)" in lines[1]
    assert "writer collapsed" in lines[1]
    assert set(result.comparisons) == {"prior"}
