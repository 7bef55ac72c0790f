from __future__ import annotations

from pathlib import Path

import pytest

from parables import ParablesError, load_config
from parables.config import DEFAULT_MODEL, config_hash
from parables.run import RunDir


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "exp.yaml"
    p.write_text(text)
    return p


def test_defaults_use_embedded_model_for_every_role() -> None:
    cfg = load_config()
    assert {cfg.models.generator.model, cfg.models.judge.model, cfg.models.target.model} == {
        DEFAULT_MODEL
    }
    assert RunDir.of(cfg).root == Path("runs/default")


def test_roles_accept_string_or_mapping_and_cli_overrides(tmp_path: Path) -> None:
    p = write(tmp_path, "name: x\nmodels:\n  generator: openai/gpt-4o\n"
                        "  judge: {model: openai-api/vllm/q, base_url: 'http://h:1/v1'}\n")
    cfg = load_config(p, {"models.judge": "openai-api/vllm/r", "models.target": None})
    assert cfg.models.generator.model == "openai/gpt-4o"
    assert cfg.models.judge.model == "openai-api/vllm/r"
    assert cfg.models.judge.base_url == "http://h:1/v1"  # same provider: the URL stays
    assert cfg.models.target.model == DEFAULT_MODEL
    # another provider: the file's server (and whatever key it holds) is not carried over
    other = load_config(p, {"models.judge": "anthropic/claude"})
    assert other.models.judge.model == "anthropic/claude" and other.models.judge.base_url is None


def test_config_hash_changes_with_content() -> None:
    assert config_hash(load_config()) == config_hash(load_config())
    assert config_hash(load_config()) != config_hash(load_config(None, {"seed": 1}))


def test_malformed_yaml_names_file_and_line(tmp_path: Path) -> None:
    p = write(tmp_path, "name: x\nmodels:\n  generator: [unclosed\n")
    with pytest.raises(ParablesError) as e:
        load_config(p)
    msg = str(e.value)
    assert str(p) in msg and "malformed YAML" in msg and "\n" not in msg
    assert f"{p}:4" in msg or f"{p}:3" in msg


def test_unknown_field_lists_expected_fields(tmp_path: Path) -> None:
    p = write(tmp_path, "name: x\nmodels:\n  generatr: openai/gpt-4o\n")
    with pytest.raises(ParablesError) as e:
        load_config(p)
    assert str(e.value).startswith(f"{p}:3: unknown field 'generatr'")
    assert "generator, judge, prices, target" in str(e.value)


def test_wrong_type_names_field_line_and_expectation(tmp_path: Path) -> None:
    p = write(tmp_path, "seed: 1\ngeneration:\n  max_retries: lots\n")
    with pytest.raises(ParablesError) as e:
        load_config(p)
    assert str(e.value).startswith(f"{p}:3: generation.max_retries:")
    assert "integer" in str(e.value) and "'lots'" in str(e.value)


def test_top_level_must_be_mapping(tmp_path: Path) -> None:
    with pytest.raises(ParablesError, match="expected a mapping"):
        load_config(write(tmp_path, "- a\n- b\n"))


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ParablesError, match="cannot read config"):
        load_config(tmp_path / "nope.yaml")


def test_inf_and_nan_are_refused_in_every_number(tmp_path, capsys, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """A non-finite number is one line naming the field, before anything runs (`--lr inf`
    used to train and save a model of NaN weights)."""
    import math

    from test_cli import assert_one_line_error, run

    for field, value in (("training.learning_rate", math.inf), ("max_cost", math.nan),
                         ("training.epochs", math.inf), ("stories.temperature", -math.inf),
                         ("experiment.alpha", math.nan)):
        with pytest.raises(ParablesError, match=f"{field}: Input should be a finite number"):
            load_config(None, {field: value})
    code, _, err = run(["train", "--arm", "refusal", "--lr", "inf", "--name", "x"], capsys,
                       monkeypatch)
    assert_one_line_error(code, err, "training.learning_rate: Input should be a finite number")
    assert not (tmp_path / "runs").exists()
