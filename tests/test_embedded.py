"""The real embedded model: conversion, cache reuse, generation through Inspect, scoring,
and the atomicity of the cache under kills and concurrent builders."""

from __future__ import annotations

import asyncio
import multiprocessing as mp
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from parables import UsageLedger, resolve_model, score_options
from parables.config import GenerationConfig
from parables.models.calls import generate
from parables.models.embedded import atomic_directory, embedded_model_dir


def test_conversion_writes_a_plain_safetensors_checkpoint(embedded: Path) -> None:
    files = {p.name for p in embedded.iterdir()}
    assert {"model.safetensors", "config.json", "tokenizer.json", ".complete"} <= files
    assert "quantization_config" not in (embedded / "config.json").read_text()
    assert (embedded / "chat_template.jinja").is_file() or "chat_template" in (
        embedded / "tokenizer_config.json"
    ).read_text()


def test_cache_is_reused_on_second_load(embedded: Path) -> None:
    marker = (embedded / ".complete").stat().st_mtime_ns
    t0 = time.perf_counter()
    again = embedded_model_dir(progress=False)
    assert again == embedded
    assert (embedded / ".complete").stat().st_mtime_ns == marker  # not rebuilt
    assert time.perf_counter() - t0 < 1.0


def test_embedded_model_replies_through_inspect(embedded: Path) -> None:
    model = resolve_model("parables/smollm2-135m",
                          generation=GenerationConfig(max_tokens=24, temperature=0))
    ledger = UsageLedger()
    out = asyncio.run(generate(model, "What is the capital of France?", role="target",
                               ledger=ledger))
    assert "Paris" in out.completion
    assert ledger.roles["target"].output_tokens > 0 and ledger.roles["target"].calls == 1


def test_option_scoring_ranks_the_likely_continuation_first(embedded: Path) -> None:
    result = score_options("parables/smollm2-135m", "The capital of France is",
                           [" Paris", " a banana"])
    assert result.method == "exact"
    paris, banana = result.scores
    assert paris.logprob > banana.logprob + 3
    chat = score_options(
        "parables/smollm2-135m",
        [{"role": "user", "content": "What is the capital of France? Answer in one word."}],
        ["Paris", "Madrid"],
    )
    assert chat.argmax == 0


def _slow_build(out: Path) -> None:
    (out / "part").write_text("half")
    time.sleep(60)


def _quick_build(out: Path) -> None:
    with open(out.parent / "builds.log", "a") as log:
        log.write(f"{os.getpid()}\n")
    (out / "count").write_text(str(os.getpid()))
    time.sleep(0.5)


def _build_in_child(target: str) -> None:
    atomic_directory(Path(target), _quick_build)


def test_killed_build_leaves_no_broken_cache(tmp_path: Path) -> None:
    target = tmp_path / "model"
    code = (f"import sys; sys.path.insert(0, {str(Path(__file__).parent)!r});"
            "from pathlib import Path; from test_embedded import _slow_build;"
            "from parables.models.embedded import atomic_directory;"
            f"atomic_directory(Path({str(target)!r}), _slow_build)")
    child = subprocess.Popen([sys.executable, "-c", code])
    deadline = time.time() + 30
    while not list(tmp_path.glob(".model.tmp-*/part")) and time.time() < deadline:
        time.sleep(0.1)
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    assert not target.exists()  # readers never see the half-built directory
    built = atomic_directory(target, lambda out: (out / "ok").write_text("yes"))
    assert (built / "ok").read_text() == "yes"
    assert not list(tmp_path.glob(".model.tmp-*"))  # the killed builder's leftovers are gone


def test_concurrent_builders_build_once(tmp_path: Path) -> None:
    target = tmp_path / "model"
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_build_in_child, args=(str(target),)) for _ in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    assert (target / ".complete").is_file()
    assert len(list(tmp_path.glob(".model.tmp-*"))) == 0
    builds = (tmp_path / "builds.log").read_text().split()
    assert builds == [(target / "count").read_text()]  # one builder built; the others reused
    assert sorted(p.name for p in target.iterdir()) == [".complete", "count"]
