"""The experiment: statistics against known values, the full loop on a tiny model with mockllm
as generator and judge, skipping and resuming, the report, bad input, and the dry run."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
from inspect_ai.model import ModelOutput, ModelUsage

from parables.config import ParablesConfig, load_config
from parables.errors import ParablesError
from parables.experiment.analysis import compare_arms
from parables.experiment.runner import run_experiment
from parables.run import RunDir
from parables.stats import mcnemar_exact, paired_bootstrap, ratio_ci_log, wilcoxon_p, wilson
from story_fakes import writer
from test_cli import assert_one_line_error, run

ROOT = Path(__file__).resolve().parents[1]


# --- statistics ------------------------------------------------------------------------------

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


def _rows(pattern: list[str], family: str = "blackmail") -> list[dict[str, Any]]:
    return [{"id": f"i{n}", "family": family, "framing": "plain" if n % 2 else "story",
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
    assert s.p_value == pytest.approx(2 / 2**20) and s.reduction_factor == 3.0
    assert "significantly less misaligned" in s.verdict
    assert r.p_value == 1.0 and "no significant difference" in r.verdict
    assert s.p_misaligned_p_value is not None and s.p_misaligned_p_value < 0.05


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
