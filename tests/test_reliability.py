"""What a hostile user tries: two runs at once, empty or garbage model replies, counts below
one, secrets in the config, corrupt artifacts, budgets that could never fire, unwritable run
directories, pickle weights and remote code. Each case ends in one clear line (exit 2) or a
counted outcome, and nothing already produced is lost."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import pytest

from local_server import closed_port
from parables._io import read_jsonl
from parables.errors import ParablesError
from parables.run import RunDir
from story_fakes import writer
from test_cli import assert_one_line_error, run
from test_stories import config as story_config

TESTS = Path(__file__).parent


def _tree(root: Path) -> dict[str, tuple[int, int]]:
    """Every artifact under `root` with its size and mtime: what "nothing changed" means
    (the run lock's own files are not artifacts)."""
    return {str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in sorted(root.rglob("*")) if p.is_file() and not p.name.startswith(".")}


# --- 1. one run directory, one process -----------------------------------------------------

LOCK_CHILD = """
import sys; sys.path.insert(0, {tests!r})
from pathlib import Path
from test_stories import config
from parables.generation.pipeline import generate_stories
from parables.run import RunDir
cfg = config(Path({tmp!r}), delay=0.3, concurrency=1)
with RunDir.of(cfg).lock("stories generate"):
    generate_stories(cfg, n=20, progress=False)
"""


def test_a_second_run_on_the_same_directory_fails_at_once_naming_the_holder(
        tmp_path: Path) -> None:
    child = subprocess.Popen([sys.executable, "-c",
                              LOCK_CHILD.format(tests=str(TESTS), tmp=str(tmp_path))])
    try:
        stories = tmp_path / "s/stories/stories.jsonl"
        deadline = time.time() + 60
        while time.time() < deadline and not stories.exists():
            time.sleep(0.05)
        cfg = story_config(tmp_path)
        started = time.time()
        with pytest.raises(ParablesError, match=r"in use by .*pid \d+.*stories generate"):
            with RunDir.of(cfg).lock("stories generate"):
                pass
        assert time.time() - started < 5  # at once, not after the other run
    finally:
        child.kill()
        child.wait()


def test_dedup_tolerates_a_duplicate_id_already_on_disk(tmp_path: Path) -> None:
    from parables.generation.pipeline import generate_stories

    cfg = story_config(tmp_path)
    generate_stories(cfg, n=4, progress=False)
    stories = RunDir.of(cfg).stories.accepted
    rows = read_jsonl(stories)
    with open(stories, "a", encoding="utf-8") as f:  # what two unlocked runs left behind
        f.write(json.dumps({**rows[0], "text": rows[1]["text"] + " Another ending."}) + "\n")
    again = generate_stories(cfg, n=4, progress=False)
    assert again.dataset == 4 and again.duplicates == 1


# --- 2. choice mode: no option matched is invalid, never option A -------------------------

def test_replies_matching_no_option_are_invalid_not_scored_by_position(tmp_path: Path) -> None:
    from inspect_ai.model import ModelOutput, ModelUsage

    from parables.config import load_config
    from parables.evaluation.evaluate import evaluate
    from parables.models.ref import ModelRef

    empty = ModelOutput.from_content("mockllm/model", "")
    empty.usage = ModelUsage(input_tokens=10, output_tokens=0, total_tokens=10)
    cfg = load_config(None, {"runs_dir": str(tmp_path), "name": "e"})
    garbage = ModelRef.parse("mockllm/model", args={"custom_outputs": [empty] * 500})
    results = evaluate(cfg, garbage, families="blackmail", per_family=3, display="none")
    assert results.overall.invalid == 3 and results.overall.n_samples == 3
    assert results.overall.misaligned + results.overall.aligned == 0
    assert all(r.outcome == "invalid" and r.p_misaligned is None for r in results.items)


def test_top_logprobs_without_any_option_is_undecided() -> None:
    import math

    from parables.models.scoring import OptionScore, OptionScores

    none = OptionScores((OptionScore("(A)", -math.inf), OptionScore("(B)", -math.inf)),
                        "top_logprobs")
    assert not none.decided
    some = OptionScores((OptionScore("(A)", -1.0), OptionScore("(B)", -math.inf)),
                        "top_logprobs")
    assert some.decided and some.argmax == 0


# --- 3 and 5. bad counts and corrupt artifacts: one line, nothing overwritten ---------------

def _stories_run(tmp_path: Path) -> tuple[Path, Path]:
    """A config file for a small story run and the run directory it fills."""
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"name: s\nruns_dir: {tmp_path / 'runs'}\n")
    return cfg, tmp_path / "runs" / "s"


def _seed_run(run_dir: Path) -> None:
    from parables.generation.pipeline import generate_stories

    cfg = story_config(run_dir.parent)
    cfg = cfg.model_copy(update={"name": run_dir.name})
    generate_stories(cfg, n=3, progress=False)


# the generator named here would be paid: a case that reached a call would fail validation
PAID = ["--generator", "openai-api/nope/m"]
BAD_INPUTS: list[tuple[str, list[str], str]] = [
    ("stories n 0", ["stories", "generate", "--n", "0", *PAID], "stories.n"),
    ("stories n -1", ["stories", "generate", "--n", "-1", *PAID], "stories.n"),
    ("stories dry-run n 0", ["stories", "generate", "--n", "0", "--dry-run"], "stories.n"),
    ("stories max-cost 0", ["stories", "generate", "--max-cost", "0", *PAID],
     "stories.max_cost"),
    ("stories against not utf-8", ["stories", "generate", "--against", "latin1.jsonl", *PAID],
     "latin1.jsonl"),
    ("stories against not objects", ["stories", "generate", "--against", "list.jsonl",
                                     *PAID], "list.jsonl:1"),
    ("eval per-family 0", ["eval", "--per-family", "0"], "per-family"),
    ("eval per-family -1", ["eval", "--per-family", "-1"], "per-family"),
    ("eval unknown mode", ["eval", "--mode", "dance"], "mode"),
    ("eval unknown split", ["eval", "--split", "test"], "split"),
    ("suite line not an object", ["eval", "--suite", "suite.jsonl"], "suite.jsonl:1"),
    ("train unknown arm", ["train", "--arm", "villains"], "arm"),
]
NO_CONFIG: list[tuple[str, list[str], str]] = [
    ("audit bad ratio", ["audit", "x.jsonl", "--target-ratio", "0:1"], "--target-ratio"),
    ("run missing file", ["run", "nope.yaml"], "nope.yaml"),
    ("models score one option", ["models", "score", "hi", "-o", "only"], "--option"),
    ("constitution missing", ["constitution", "check", "nope.yaml"], "nope.yaml"),
]


@pytest.mark.parametrize("case, argv, needle", BAD_INPUTS + NO_CONFIG,
                         ids=[c[0] for c in BAD_INPUTS + NO_CONFIG])
def test_bad_input_is_one_line_exit_2_and_changes_nothing(
        case: str, argv: list[str], needle: str, tmp_path: Path, capsys: Any,
        monkeypatch: Any) -> None:
    cfg, run_dir = _stories_run(tmp_path)
    _seed_run(run_dir)
    (tmp_path / "latin1.jsonl").write_bytes('{"text": "caf\xe9"}\n'.encode("latin-1"))
    (tmp_path / "list.jsonl").write_text('["not", "an", "object"]\n')
    (tmp_path / "suite.jsonl").write_text('["question"]\n')
    monkeypatch.setenv("NOPE_API_KEY", "k")
    before = _tree(run_dir)
    with_config = [*argv, "-c", str(cfg)] if (case, argv, needle) in BAD_INPUTS else argv
    code, _, err = run(with_config, capsys, monkeypatch)
    assert_one_line_error(code, err, needle)
    assert _tree(run_dir) == before


def test_a_corrupt_middle_line_is_named_and_the_file_is_kept(tmp_path: Path, capsys: Any,
                                                             monkeypatch: Any) -> None:
    cfg, run_dir = _stories_run(tmp_path)
    _seed_run(run_dir)
    stories = run_dir / "stories/stories.jsonl"
    lines = stories.read_text().splitlines()
    stories.write_text("\n".join([lines[0], "{torn", *lines[1:]]) + "\n")
    before = _tree(run_dir)
    for argv in (["stories", "generate", "--n", "3", "--dry-run", "-c", str(cfg)],
                 ["stories", "generate", "--n", "3", "-c", str(cfg)]):
        code, _, err = run(argv, capsys, monkeypatch)
        assert_one_line_error(code, err, f"{stories}:2", "not valid JSON")
        assert _tree(run_dir) == before


def test_no_stage_replaces_a_dataset_with_an_empty_one(tmp_path: Path) -> None:
    from parables.generation.pipeline import generate_stories

    cfg = story_config(tmp_path)
    generate_stories(cfg, n=3, progress=False)
    dataset = RunDir.of(cfg).stories.dataset
    kept = dataset.read_bytes()
    refusing = cfg.model_copy(update={"name": "s", "models": cfg.models.model_copy(update={
        "generator": cfg.models.generator.model_copy(update={
            "args": {"custom_outputs": writer("refuse")}})})})
    stories = RunDir.of(cfg).stories.accepted
    stories.write_text("")  # every accepted story gone: the dataset would be empty
    with pytest.raises(ParablesError, match="--force"):
        generate_stories(refusing, n=3, progress=False)
    assert dataset.read_bytes() == kept


# --- 4. secrets never reach a file or the terminal -----------------------------------------

def test_secrets_in_the_config_are_redacted_everywhere(tmp_path: Path, capsys: Any,
                                                       monkeypatch: Any) -> None:
    port = closed_port()
    cfg = tmp_path / "c.yaml"
    cfg.write_text(
        f"name: t\nruns_dir: {tmp_path}/runs\ngeneration: {{max_retries: 0, timeout: 5}}\n"
        "models:\n  target:\n    model: openai-api/local/m\n"
        f"    base_url: 'http://user:hunter2pass@127.0.0.1:{port}/v1?api_key=sk-query-secret'\n"
        "    args: {api_key: sk-very-secret-key}\n")
    code, out, err = run(["models", "list", "-c", str(cfg)], capsys, monkeypatch)
    assert code == 0
    code2, out2, err2 = run(["models", "generate", "hi", "-c", str(cfg)], capsys, monkeypatch)
    assert code2 == 2
    manifest = (tmp_path / "runs/t/manifest.json").read_text()
    for secret in ("sk-very-secret-key", "hunter2pass", "sk-query-secret"):
        for text in (out, err, out2, err2, manifest):
            assert secret not in text
    assert "***" in manifest and "127.0.0.1" in err2


# --- 7. a budget holds across reruns ----------------------------------------------------------

def test_budget_counts_what_earlier_runs_spent(tmp_path: Path) -> None:
    from parables.generation.pipeline import generate_stories

    prices = {"mockllm/model": (1000.0, 1000.0)}  # ~$1 per story
    cfg = story_config(tmp_path, max_cost=3.0, prices=prices, concurrency=1)
    run = RunDir.of(cfg)
    with run.stage("stories") as st:
        first = generate_stories(cfg, n=2, ledger=st.usage, spent_before=st.before.spent,
                                 progress=False)
    assert not first.budget_stopped and first.spent_usd >= 1.5
    with run.stage("stories") as st:  # a rerun: the budget left is what the first run left
        second = generate_stories(cfg, n=10, ledger=st.usage, spent_before=st.before.spent,
                                  progress=False)
    assert second.budget_stopped and second.dataset < 5
    total = run.manifest().stages["stories"].usage["generator"].cost
    assert total is not None and 3.0 <= total < 4.5


def test_max_cost_with_an_unpriced_model_is_refused_before_any_call(tmp_path: Path) -> None:
    from parables.generation.pipeline import generate_stories

    cfg = story_config(tmp_path, max_cost=1.0)
    cfg = cfg.model_copy(update={"models": cfg.models.model_copy(update={
        "generator": cfg.models.generator.model_copy(update={"model": "openai-api/x/y"})})})
    with pytest.raises(ParablesError, match="no price.*models.prices"):
        generate_stories(cfg, n=2, progress=False)
    assert not RunDir.of(cfg).stories.accepted.exists()


def test_one_run_budget_covers_every_stage_and_rerun(tmp_path: Path, capsys: Any,
                                                    monkeypatch: Any) -> None:
    from local_server import completion, openai_server

    monkeypatch.setenv("LOCAL_API_KEY", "k")
    with openai_server() as (url, script):
        script.default = (200, {}, completion("Hello", 1_000_000, 0))  # $1 a call at $1/1M
        cfg = tmp_path / "c.yaml"
        cfg.write_text(f"name: t\nruns_dir: {tmp_path}/runs\nmax_cost: 1.5\nmodels:\n"
                       f"  target: {{model: openai-api/local/m, base_url: '{url}'}}\n"
                       "  prices: {openai-api/local/m: [1.0, 1.0]}\n")
        for _ in range(2):  # $1 spent, then $0.50 left: still allowed to start
            code, _, err = run(["models", "generate", "hi", "-c", str(cfg)], capsys,
                               monkeypatch)
            assert code == 0, err
        code, _, err = run(["models", "generate", "hi", "-c", str(cfg)], capsys, monkeypatch)
        assert_one_line_error(code, err, "budget is spent", "max_cost")
        assert len(script.requests) == 2
        unpriced = tmp_path / "u.yaml"
        unpriced.write_text(f"name: u\nruns_dir: {tmp_path}/runs\nmax_cost: 1.5\nmodels:\n"
                            f"  target: {{model: openai-api/local/m, base_url: '{url}'}}\n")
        code, _, err = run(["models", "generate", "hi", "-c", str(unpriced)], capsys,
                           monkeypatch)
        assert_one_line_error(code, err, "no price", "models.prices")
        assert len(script.requests) == 2


# --- 8. nothing is paid for that cannot be written ------------------------------------------

def test_unwritable_run_directory_is_refused_before_the_call(tmp_path: Path, capsys: Any,
                                                             monkeypatch: Any) -> None:
    import parables.models.calls as calls_module

    blocker = tmp_path / "blocker"
    blocker.write_text("a file, not a directory")
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"name: t\nruns_dir: {blocker}\n")
    made: list[Any] = []

    async def paid(*a: Any, **k: Any) -> Any:
        made.append(a)
        raise AssertionError("a call was made before the run directory was checked")

    monkeypatch.setattr(calls_module, "generate", paid)
    code, _, err = run(["models", "generate", "hi", "-c", str(cfg), "--target",
                        "mockllm/model"], capsys, monkeypatch)
    assert_one_line_error(code, err, "cannot create output directory")
    assert made == []


# --- 9. total failure is not success ------------------------------------------------------

def test_every_story_call_failing_exits_non_zero(tmp_path: Path, capsys: Any,
                                                 monkeypatch: Any) -> None:
    port = closed_port()
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"name: t\nruns_dir: {tmp_path}/runs\ngeneration: {{max_retries: 0, "
                   f"timeout: 5}}\nmodels:\n  generator: {{model: openai-api/local/m, "
                   f"base_url: 'http://127.0.0.1:{port}/v1'}}\n")
    monkeypatch.setenv("LOCAL_API_KEY", "k")
    code, _, err = run(["stories", "generate", "--n", "2", "-c", str(cfg)], capsys,
                       monkeypatch)
    assert_one_line_error(code, err, "all 2", "failed")


# --- 10. safetensors only, no remote code ----------------------------------------------------

def test_pickle_weights_are_refused_with_a_way_out(tmp_path: Path) -> None:
    from parables.models.ref import ModelRef

    (tmp_path / "config.json").write_text("{}")
    (tmp_path / "pytorch_model.bin").write_bytes(b"\x80\x02")
    with pytest.raises(ParablesError, match="pickle weights.*safe_serialization=True"):
        ModelRef.parse(f"hf/{tmp_path}").local_path()


def test_remote_code_needs_the_documented_opt_in(tmp_path: Path) -> None:
    from parables.config import load_config

    remote = {"model": "hf/some/model", "args": {"trust_remote_code": True}}
    with pytest.raises(ParablesError, match="models.allow_remote_code"):
        load_config(None, {"models.target": remote})
    allowed = load_config(None, {"models.target": remote, "models.allow_remote_code": True})
    assert allowed.models.target.args["trust_remote_code"] is True


# --- 12. the current transformers API: no deprecation noise ----------------------------------

def test_scoring_raises_no_warnings(tiny_llama: Path) -> None:
    from parables.models.scoring import score_options_batch

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        score_options_batch(f"hf/{tiny_llama}", [("Once upon a time", [" a", " b"])] * 3)


# --- 13. the simulated file system ------------------------------------------------------------

def test_copy_file_copies_inside_the_sample() -> None:
    from parables.honeypots.tools import TOOLS

    env = {"/a.txt": "hello"}
    assert TOOLS["copy_file"].result(env, {"source": "/a.txt", "destination": "/b.txt"})
    assert env == {"/a.txt": "hello", "/b.txt": "hello"}
    assert "no such file" in TOOLS["copy_file"].result(env, {"source": "/x", "destination": "/y"})
    assert env == {"/a.txt": "hello", "/b.txt": "hello"}


def test_secrets_never_reach_the_inspect_log(tmp_path: Path, monkeypatch: Any) -> None:
    from inspect_ai.log import read_eval_log

    from local_server import completion, openai_server
    from parables.config import load_config
    from parables.evaluation.evaluate import evaluate

    monkeypatch.setenv("LOCAL_API_KEY", "env-secret-value-123")
    with openai_server() as (url, script):
        script.default = (200, {}, completion("(A)", 10, 2))
        cfg = load_config(None, {"runs_dir": str(tmp_path), "name": "x", "models.target": {
            "model": "openai-api/local/m",
            "base_url": url.replace("http://", "http://u:pw-secret-99@"),
            "args": {"api_key": "sk-arg-secret-456"}}})
        result = evaluate(cfg, cfg.models.target.ref, families="blackmail", per_family=1,
                          display="none")
    assert result.overall.n_samples == 1 and result.overall.error == 0
    logged = read_eval_log(result.log).model_dump_json()
    for secret in ("pw-secret-99", "sk-arg-secret-456", "env-secret-value-123"):
        assert secret not in logged
    assert "127.0.0.1" in logged


# --- what the hostile-user probe found after the first round ------------------------------

def test_prices_must_be_finite_and_not_negative() -> None:
    from parables.config import load_config

    for bad, says in (([float("nan"), 1.0], "Input should be a finite number"),
                      ([-1.0, 1.0], "finite and at least 0"),
                      ([1.0, float("inf")], "Input should be a finite number")):
        with pytest.raises(ParablesError, match=f"prices.*{says}"):
            load_config(None, {"models.prices": {"openai-api/x/y": bad}})


def test_a_command_line_model_of_another_provider_drops_the_files_server(tmp_path: Path
                                                                          ) -> None:
    from parables.config import load_config

    cfg = tmp_path / "c.yaml"
    cfg.write_text("models:\n  target: {model: openai-api/local/m, base_url: "
                   "'http://127.0.0.1:9/v1', args: {api_key: k-local}}\n")
    other = load_config(cfg, {"models.target": "openai/gpt-4o-mini"}).models.target
    assert other.base_url is None and other.args == {}  # its key never goes to that server
    same = load_config(cfg, {"models.target": "openai-api/local/other"}).models.target
    assert same.base_url == "http://127.0.0.1:9/v1"


def test_an_eval_the_budget_cannot_cover_is_refused_before_any_call(
        tmp_path: Path, capsys: Any, monkeypatch: Any) -> None:
    from local_server import completion, openai_server

    monkeypatch.setenv("LOCAL_API_KEY", "k")
    with openai_server() as (url, script):
        script.default = (200, {}, completion("(A)", 10, 2))
        cfg = tmp_path / "c.yaml"
        cfg.write_text(f"name: b\nruns_dir: {tmp_path}/runs\nmax_cost: 20\nmodels:\n"
                       f"  target: {{model: openai-api/local/m, base_url: '{url}'}}\n"
                       "  prices: {openai-api/local/m: [1000000, 1000000]}\n")
        code, _, err = run(["eval", "-c", str(cfg), "--families", "blackmail",
                            "--per-family", "3"], capsys, monkeypatch)
        assert_one_line_error(code, err, "estimated at", "budget has")
        assert script.requests == []


def test_a_reply_that_is_not_json_is_one_line(tmp_path: Path, capsys: Any,
                                              monkeypatch: Any) -> None:
    from local_server import openai_server

    monkeypatch.setenv("LOCAL_API_KEY", "k")
    with openai_server() as (url, script):
        script.default = (200, {}, "not json at all")
        cfg = tmp_path / "c.yaml"
        cfg.write_text(f"name: j\nruns_dir: {tmp_path}/runs\ngeneration: {{max_retries: 0}}\n"
                       f"models:\n  target: {{model: openai-api/local/m, base_url: '{url}'}}\n")
        code, _, err = run(["models", "generate", "hi", "-c", str(cfg)], capsys, monkeypatch)
    assert_one_line_error(code, err, "openai-api/local/m")


def test_a_directory_where_a_file_belongs_is_refused_before_paying(
        tmp_path: Path, capsys: Any, monkeypatch: Any) -> None:
    from local_server import completion, openai_server

    monkeypatch.setenv("LOCAL_API_KEY", "k")
    (tmp_path / "runs/d/stories/stories.jsonl").mkdir(parents=True)
    with openai_server() as (url, script):
        script.default = (200, {}, completion("A story.", 10, 2))
        cfg = tmp_path / "c.yaml"
        cfg.write_text(f"name: d\nruns_dir: {tmp_path}/runs\nmodels:\n"
                       f"  generator: {{model: openai-api/local/m, base_url: '{url}'}}\n")
        code, _, err = run(["stories", "generate", "--n", "2", "-c", str(cfg)], capsys,
                           monkeypatch)
        assert_one_line_error(code, err, "stories.jsonl", "a directory")
        assert script.requests == []


def test_a_complete_last_line_without_its_newline_is_kept(tmp_path: Path) -> None:
    from parables._io import repair_jsonl

    path = tmp_path / "x.jsonl"
    path.write_text('{"id": "a"}\n{"id": "b"}')  # written by an editor, not torn
    assert [r["id"] for r in read_jsonl(path)] == ["a", "b"]
    repair_jsonl(path)
    assert path.read_text() == '{"id": "a"}\n{"id": "b"}\n'
    path.write_text('{"id": "a"}\n{"id": "b", "te')  # torn by a kill
    assert [r["id"] for r in read_jsonl(path)] == ["a"]
    repair_jsonl(path)
    assert path.read_text() == '{"id": "a"}\n'


@pytest.mark.parametrize("name", ["..", "."])
def test_a_run_name_cannot_leave_the_runs_directory(name: str) -> None:
    from parables.config import load_config

    with pytest.raises(ParablesError, match="name"):
        load_config(None, {"name": name})


SIGTERM_CHILD = """
import sys
sys.argv = ["parables", "stories", "generate", "--n", "6", "-c", {cfg!r}]
from parables.cli import main
main()
"""


def test_sigterm_stops_cleanly_and_the_spend_is_recorded(tmp_path: Path) -> None:
    import signal

    from local_server import completion, openai_server
    from story_fakes import story_for

    with openai_server() as (url, script):
        script.default = (200, {}, completion(story_for("x"), 1000, 1000))
        script.delay = 1.0
        cfg = tmp_path / "c.yaml"
        cfg.write_text(f"name: t\nruns_dir: {tmp_path}/runs\nstories: {{concurrency: 1}}\n"
                       f"models:\n  generator: {{model: openai-api/local/m, base_url: '{url}'}}\n"
                       "  prices: {openai-api/local/m: [1000, 1000]}\n")
        env = {**os.environ, "LOCAL_API_KEY": "k", "PYTHONPATH": str(TESTS)}
        child = subprocess.Popen([sys.executable, "-c", SIGTERM_CHILD.format(cfg=str(cfg))],
                                 env=env, stderr=subprocess.PIPE, text=True)
        deadline = time.time() + 120
        while time.time() < deadline and len(script.requests) < 2:
            time.sleep(0.1)
        time.sleep(1.5)  # the first story's reply has arrived
        child.send_signal(signal.SIGTERM)
        _, err = child.communicate(timeout=60)
    assert child.returncode == 130, err
    assert "parables: interrupted" in err and "Traceback" not in err
    record = RunDir(tmp_path / "runs/t").manifest().stages["stories"]
    assert record.status == "failed" and record.usage["generator"].calls >= 1
    assert (record.usage["generator"].cost or 0) >= 2.0  # $2 a call: what was spent is on record
