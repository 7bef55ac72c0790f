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
        "experiment.per_family": 2, "experiment.n_boot": 200,
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
    for section in ("## Headline", "## Mean probability of the misaligned option",
                    "## Per family", "## Generalisation to held-out families",
                    "## Framing effect", "## Training", "## Story dataset",
                    "## Cost and tokens per role", "## Reproducibility"):
        assert section in md, section
    for arm in ("baseline", "stories", "refusal", "mixed"):
        assert f"| {arm} |" in md
    page = RunDir.of(cfg).report.html.read_text()
    assert page.count("data:image/png;base64,") >= 4 and "<table>" in page
    comp = json.loads(RunDir.of(cfg).report.comparison.read_text())
    assert comp["arms"]["refusal"]["vs_baseline"]["n_pairs"] == 20
    assert set(comp["arms"]) == {"baseline", "stories", "refusal", "mixed"}

    # a third run does nothing but rebuild the report
    again = run_experiment(cfg, progress=False)
    assert {"eval:baseline", "eval:stories", "eval:refusal", "eval:mixed"} <= set(again.skipped)

    # the same run directory with another config is refused unless forced
    other = cfg.model_copy(update={"experiment": cfg.experiment.model_copy(
        update={"per_family": 3})})
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
    from parables.experiment.runner import diversity, narrowing

    pairs = enumerate(zip("abcdefgh", "ijklmnop", strict=True))
    varied = [{"text": f"story {i} about {w} and {v}", "theme": f"t{i % 4}", "ai_name": f"A{i}",
               "characters": []} for i, (w, v) in pairs]
    narrow = [{"text": "Wren and the same thing", "theme": "t0", "ai_name": "Wren",
               "characters": []} for _ in range(8)]
    before, after = diversity(varied, themes=4), diversity(narrow, themes=4)
    assert before.theme_coverage == 1.0 and after.top_name_share == 1.0
    flags = narrowing(before, after)
    assert len(flags) == 3 and not narrowing(before, before)
