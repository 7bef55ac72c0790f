"""The command line: version, help, and one-line errors with exit code 2 for bad input."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from local_server import closed_port
from parables import __version__
from parables.cli import main


def run(argv: list[str], capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> tuple[int, str, str]:
    monkeypatch.setattr(sys, "argv", ["parables", *argv])
    code = 0
    try:
        main()
    except SystemExit as e:
        code = int(e.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_line_error(code: int, err: str, *needles: str) -> None:
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("parables: error: ")
    assert "Traceback" not in err
    for needle in needles:
        assert needle in lines[0], lines[0]


def test_version(capsys, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    code, out, _ = run(["--version"], capsys, monkeypatch)
    assert code == 0 and out.strip() == f"parables {__version__}"


def test_malformed_yaml(tmp_path: Path, capsys, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    bad = tmp_path / "bad.yaml"
    bad.write_text("models:\n  target: {model: x\n")
    code, _, err = run(["models", "list", "--config", str(bad)], capsys, monkeypatch)
    assert_one_line_error(code, err, str(bad), "malformed YAML")


def test_bad_field(tmp_path: Path, capsys, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    bad = tmp_path / "bad.yaml"
    bad.write_text("generation:\n  timeout: -3\n")
    code, _, err = run(["models", "list", "-c", str(bad)], capsys, monkeypatch)
    assert_one_line_error(code, err, f"{bad}:2", "generation.timeout", "greater than 0")


def test_unknown_model_lists_known_forms(capsys, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    code, _, err = run(["models", "generate", "hi", "--target", "nosuch/model"],
                       capsys, monkeypatch)
    assert_one_line_error(code, err, "unknown model 'nosuch/model'", "openai-api/<name>/<model>",
                          "parables/smollm2-135m")


def test_missing_api_key_names_variable(capsys, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    code, _, err = run(["models", "generate", "hi", "--role", "judge",
                        "--judge", "anthropic/claude-sonnet-4-5"], capsys, monkeypatch)
    assert_one_line_error(code, err, "ANTHROPIC_API_KEY")


def test_directory_without_weights(tmp_path: Path, capsys, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "config.json").write_text("{}")
    code, _, err = run(["models", "generate", "hi", "--target", f"hf/{tmp_path}"],
                       capsys, monkeypatch)
    assert_one_line_error(code, err, str(tmp_path), "no model weights")


def test_unreachable_base_url(tmp_path: Path, capsys, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    port = closed_port()
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"name: t\nruns_dir: {tmp_path}/runs\ngeneration: {{max_retries: 1}}\n"
                   f"models:\n  target: {{model: openai-api/local/m, "
                   f"base_url: 'http://127.0.0.1:{port}/v1'}}\n")
    monkeypatch.setenv("LOCAL_API_KEY", "k")
    code, _, err = run(["models", "generate", "hi", "-c", str(cfg)], capsys, monkeypatch)
    assert_one_line_error(code, err, f"127.0.0.1:{port}", "cannot reach")
    # the failed call is still on record, with the config and its hash
    import json
    manifest = json.loads((tmp_path / "runs/t/manifest.json").read_text())
    entry = manifest["stages"]["models.generate.target"]
    assert entry["status"] == "failed" and entry["usage"]["target"]["errors"] == 1
    assert entry["config_hash"] and entry["config"]["name"] == "t"
    assert manifest["versions"]["inspect-ai"]


def test_score_command_with_tiny_model(  # type: ignore[no-untyped-def]
    tiny_llama: Path, tmp_path: Path, capsys, monkeypatch
) -> None:
    monkeypatch.chdir(tmp_path)
    code, out, err = run(["models", "score", "The AI", "-o", " accepts", "-o", " copies",
                          "--raw", "--target", f"hf/{tiny_llama}"], capsys, monkeypatch)
    assert code == 0, err
    assert "option scores (exact)" in out and "accepts" in out and "model usage" in out
    assert (tmp_path / "runs/default/manifest.json").is_file()


def test_eval_on_embedded_model_prints_propensities(  # type: ignore[no-untyped-def]
    embedded: Path, tmp_path: Path, capsys, monkeypatch
) -> None:
    monkeypatch.chdir(tmp_path)
    code, out, err = run(["eval", "--model", "parables/smollm2-135m", "--mode", "choice",
                          "--families", "blackmail,hide_mistake", "--per-family", "2"],
                         capsys, monkeypatch)
    assert code == 0, err
    assert "blackmail" in out and "hide_mistake" in out and "overall" in out
    assert (tmp_path / "runs/default/eval/parables_smollm2-135m/results.json").is_file()


def test_eval_unknown_family(capsys, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    code, _, err = run(["eval", "--families", "nope", "--model", "mockllm/model"],
                       capsys, monkeypatch)
    assert_one_line_error(code, err, "unknown honeypot family 'nope'")


def test_usage_errors_exit_2_without_traceback(capsys, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    for argv in (["nosuch"], ["train", "--bogus"]):
        code, _, err = run(argv, capsys, monkeypatch)
        assert code == 2 and "Traceback" not in err and ("No such" in err), err
