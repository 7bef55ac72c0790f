"""Corpus generation on Ray (`--engine ray`) against a real local OpenAI-compatible server: on a
local Ray runtime it writes the same rows and keeps the same survivors as the single-process
engine on the same seeds, stops every worker at the budget, and a killed job resumes by seed
id without writing (or paying for) a seed twice."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from local_server import openai_server
from parables._io import read_jsonl, write_jsonl
from parables.config import ParablesConfig, load_config
from parables.generation.pipeline import finalize, generate_corpus
from parables.generation.ray_engine import TASKS_PER_ACTOR
from parables.honeypots.build import build_items
from parables.run import RunDir
from story_fakes import conversation_for, document_for, story_for

ray = pytest.importorskip("ray")
pytestmark = pytest.mark.xdist_group("ray")  # one worker, one runtime (conftest.local_ray)

MODEL = "openai-api/local/local-model"
SECRET = "sk-parables-only-in-memory-7f3a"  # the provider key the local server is called with


def respond(prompt: str) -> str:
    if "USER:" in prompt:
        return conversation_for(prompt)
    if "It is about" in prompt:
        return document_for(prompt)
    return story_for(prompt)


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, Any]]:
    monkeypatch.setenv("LOCAL_API_KEY", SECRET)
    with openai_server() as (url, script):
        script.responder = respond
        yield url, script


def settings(tmp_path: Path, url: str, name: str, kind: str, **section: Any) -> dict[str, Any]:
    return {"runs_dir": str(tmp_path), "name": name, "generation": {"max_connections": 8},
            "models": {"generator": {"model": MODEL, "base_url": url},
                       "prices": {MODEL: [1.0, 2.0]}},
            kind: {"concurrency": 4, **section}}


def cfg(data: dict[str, Any]) -> ParablesConfig:
    return load_config(None, {k: v for k, v in _flat(data)})


def _flat(data: dict[str, Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    for k, v in data.items():
        if isinstance(v, dict) and k not in ("prices",):
            yield from _flat(v, f"{prefix}{k}.")
        else:
            yield f"{prefix}{k}", v


def _rows(folder: Path, kind: str) -> dict[str, dict[str, Any]]:
    return {r["id"]: r for r in read_jsonl(folder / f"{kind}.jsonl")
            + read_jsonl(folder / "rejected.jsonl")}


@pytest.mark.parametrize("kind", ["stories", "advice"])
def test_ray_writes_the_rows_and_survivors_of_one_process(
        tmp_path: Path, server: tuple[str, Any], local_ray: None, kind: str) -> None:
    url, script = server
    local = generate_corpus(cfg(settings(tmp_path, url, "local", kind)), kind, n=12,
                            progress=False)
    calls = len(script.requests)
    on_ray = generate_corpus(cfg(settings(tmp_path, url, "ray", kind, engine="ray",
                                          workers=2)), kind, n=12, progress=False)
    assert len(script.requests) == 2 * calls  # one call per seed on either engine
    # the actors called with the provider key, and no file of the Ray session holds it: it
    # goes to the actors' constructors, not to a runtime env that Ray writes down
    assert set(script.authorizations) == {f"Bearer {SECRET}"}
    session = Path(ray._private.worker._global_node.get_session_dir_path())
    assert not [str(f) for f in session.rglob("*") if f.is_file() and not f.is_symlink()
                and SECRET.encode() in f.read_bytes()]
    a, b = _rows(tmp_path / "local" / kind, kind), _rows(tmp_path / "ray" / kind, kind)
    assert a == b and len(a) == 12
    assert local.dataset == on_ray.dataset > 0
    assert read_jsonl(tmp_path / "local" / kind / "dataset.jsonl") == read_jsonl(
        tmp_path / "ray" / kind / "dataset.jsonl")
    assert on_ray.spent_usd == pytest.approx(local.spent_usd)


def test_the_budget_stops_every_worker_and_a_rerun_continues(
        tmp_path: Path, server: tuple[str, Any], local_ray: None) -> None:
    url, script = server
    script.delay = 0.05
    one = cfg(settings(tmp_path, url, "probe", "stories"))  # one text's price, in process
    cost = generate_corpus(one, "stories", n=1, progress=False).spent_usd
    script.requests.clear()
    capped = cfg(settings(tmp_path, url, "b", "stories", engine="ray", workers=2,
                          max_cost=round(cost * 6.5, 6)))
    first = generate_corpus(capped, "stories", n=40, progress=False)
    assert first.budget_stopped
    # two workers x four in flight may finish after the budget is reached, no more
    assert 7 <= first.this_run.done <= 7 + 8 and len(script.requests) == first.this_run.done
    rest = generate_corpus(capped.model_copy(update={"stories": capped.stories.model_copy(
        update={"max_cost": None})}), "stories", n=40, progress=False)
    assert not rest.budget_stopped
    rows = read_jsonl(tmp_path / "b/stories/stories.jsonl")
    assert len(rows) == len({r["id"] for r in rows}) == 40 == len(script.requests)


@pytest.mark.xdist_group("ray-subprocess")  # its own Ray runtimes, in a subprocess: any worker
def test_a_killed_ray_job_resumes_by_seed_id(tmp_path: Path, server: tuple[str, Any],
                                             parables_home: Path) -> None:
    url, script = server
    script.delay = 0.3
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump(settings(tmp_path, url, "k", "stories", engine="ray",
                                              workers=2)))
    command = [sys.executable, "-m", "parables", "generate", "--kind", "stories", "--n", "48",
               "-c", str(config)]
    env = {**os.environ, "LOCAL_API_KEY": SECRET}
    proc = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    out = tmp_path / "k/stories/stories.jsonl"
    deadline = time.time() + 240
    while time.time() < deadline and len(read_jsonl(out)) < 8:
        time.sleep(0.5)
    os.killpg(proc.pid, signal.SIGKILL)  # the driver, its local Ray runtime and its actors
    proc.wait()
    written = {r["id"] for r in read_jsonl(out)}
    assert 8 <= len(written) < 48
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    rows = read_jsonl(out)
    ids = [r["id"] for r in rows]
    assert len(ids) == len(set(ids)) == 48 and written <= set(ids)
    # what was written before the kill was not asked for again; only the batches the actors
    # held at the kill (at most 2 workers x TASKS_PER_ACTOR x 4 texts) were paid twice
    assert len(script.requests) <= 48 + 2 * TASKS_PER_ACTOR * 4


def test_ray_dedup_and_guard_keep_the_survivors_of_one_process(
        tmp_path: Path, server: tuple[str, Any], local_ray: None) -> None:
    """With engine: ray, finalize runs dedup and the guards in Ray workers: the same survivors
    and removals as one process, plus the dataset as Parquet shards."""
    import pyarrow.parquet as pq

    url, _ = server
    local = cfg(settings(tmp_path, url, "one", "stories"))
    generate_corpus(local, "stories", n=10, progress=False)
    folder = tmp_path / "one/stories"
    rows = read_jsonl(folder / "stories.jsonl")
    dupe = {**rows[1], "id": rows[1]["id"] + "x"}  # an exact duplicate
    leak = {**rows[2], "id": rows[2]["id"] + "y",  # a text of its own, quoting an eval item
            "text": story_for("another prompt") + " " + build_items("eval")[0].user}
    write_jsonl(folder / "stories.jsonl", [*rows, dupe, leak])
    one = finalize(local, kind="stories")
    expected = (read_jsonl(folder / "dataset.jsonl"), read_jsonl(folder / "removed.jsonl"))
    on_ray = finalize(local.model_copy(update={"stories": local.stories.model_copy(
        update={"engine": "ray"})}), kind="stories")
    assert (one.dataset, one.duplicates, one.contaminated) == (
        on_ray.dataset, on_ray.duplicates, on_ray.contaminated) == (10, 1, 1)
    assert (read_jsonl(folder / "dataset.jsonl"), read_jsonl(folder / "removed.jsonl")) == \
        expected
    shards = sorted(RunDir.of(local).stories.shards.glob("*.parquet"))
    table = pq.read_table(shards[0])
    assert table.num_rows == 10 and table.column("id").to_pylist() == [
        r["id"] for r in expected[0]]


def test_ray_engine_input_errors_are_one_line_before_any_actor(
        tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A missing API key and a cluster address nobody answers end in one line at once (Ray
    itself would let an actor die on the cluster, or retry for many minutes), and the key a
    worker needs is never written to Ray's runtime-env logs (it goes to the actors'
    constructors)."""
    from local_server import closed_port
    from test_cli import assert_one_line_error, run

    monkeypatch.delenv("NOKEY_API_KEY", raising=False)
    started = time.time()
    code, _, err = run(["generate", "--kind", "advice", "--n", "2", "--engine", "ray",
                        "--generator", "openai-api/nokey/model", "--name", "k"], capsys,
                       monkeypatch)
    assert_one_line_error(code, err, "NOKEY_API_KEY")
    code, _, err = run(["generate", "--kind", "advice", "--n", "2", "--engine", "ray",
                        "--address", f"127.0.0.1:{closed_port()}", "--name", "k"], capsys,
                       monkeypatch)
    assert_one_line_error(code, err, "no Ray cluster answers there")
    assert time.time() - started < 60
