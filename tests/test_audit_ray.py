"""The audit on Ray Data (`--engine ray`): on a local Ray runtime it gives the single-process
counts on the same input, resumes after a kill shard by shard, and works from the command
line; without Ray it says how to install it."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from parables.audit.distributed import plan_shards
from parables.audit.readers import Skips, iter_documents
from parables.audit.scan import AuditConfig, AuditResult, audit_corpus
from test_audit import _corpus
from test_cli import assert_one_line_error, run

ray = pytest.importorskip("ray")
pytestmark = pytest.mark.xdist_group("ray")  # one worker, one runtime (conftest.local_ray)

#: 2 KB shards: the two corpus files (~45 KB) become ~20 shards, several per file
SHARD_MB = 0.002


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory, parables_home: Path) -> list[str]:
    """90 documents in two files, with an invalid JSON line and a line without text in the
    middle of the first, and a file that does not exist."""
    folder = tmp_path_factory.mktemp("ray-corpus")
    a = _corpus(folder / "a.jsonl", n=60, seed=1)
    lines = a.read_text().splitlines()
    lines[20:20] = ["{not json", json.dumps({"body": "no text field"})]
    a.write_text("\n".join(lines) + "\n")
    b = _corpus(folder / "b.jsonl", n=30, seed=2)
    return [str(a), str(b), str(folder / "missing.jsonl")]


@pytest.fixture(scope="module")
def single(corpus: list[str], tmp_path_factory: pytest.TempPathFactory) -> AuditResult:
    return audit_corpus(AuditConfig(paths=corpus, out=tmp_path_factory.mktemp("local"),
                                    progress=False, target_ratio=(1, 1)))


def _same(a: AuditResult, b: AuditResult) -> None:
    assert (a.documents, a.bytes, a.candidates) == (b.documents, b.bytes, b.candidates)
    assert a.labels == b.labels and a.tropes == b.tropes
    assert a.per_source == b.per_source and list(a.per_source) == list(b.per_source)
    assert a.skipped == b.skipped and a.skip_examples == b.skip_examples
    assert a.corrected == b.corrected and a.plan == b.plan
    assert [[(src, text) for _, src, text in v] for v in a.examples.values()] == [
        [(src, text) for _, src, text in v] for v in b.examples.values()]


def test_shards_cover_every_document_once(corpus: list[str]) -> None:
    cfg = AuditConfig(paths=corpus, out=Path("unused"), shard_mb=SHARD_MB)
    shards = plan_shards(cfg)
    assert len({s.source for s in shards}) == 3 and len(shards) > 10
    one_pass, by_shard = Skips(), Skips()
    whole = [d.text for p in corpus for d in iter_documents(p, "text", one_pass)]
    parts = [d.text for s in shards
             for d in iter_documents(s.source, "text", by_shard, s.start, end=s.end)]
    assert parts == whole and len(whole) == 90
    assert by_shard.counts == one_pass.counts == {"invalid json": 1, "no 'text' field": 1,
                                                  "missing path": 1}
    # --max-docs: the shards end where one pass stops (inside b, or at the end of a)
    for limit, last in ((70, corpus[1]), (60, corpus[0])):
        limited = plan_shards(cfg.model_copy(update={"max_docs": limit}))
        assert sum(len(list(iter_documents(s.source, "text", Skips(), s.start, end=s.end)))
                   for s in limited) == limit
        assert limited[-1].source == last and limited[-1].end is not None


def test_parquet_and_text_shards(tmp_path: Path, monkeypatch: Any) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    import parables.audit.readers as readers

    monkeypatch.setattr(readers, "TEXT_CHUNK", 300)  # text documents of ~300 bytes
    rows = [f"row {i} about the robot" if i % 7 else None for i in range(500)]
    pq.write_table(pa.table({"text": rows}), tmp_path / "c.parquet", row_group_size=40)
    (tmp_path / "t.txt").write_text("".join(f"line {i} of plain text\n" for i in range(800)))
    (tmp_path / "c.jsonl.gz").write_bytes(b"")  # not split: the reader skips it once
    paths = [str(tmp_path / n) for n in ("c.parquet", "t.txt", "c.jsonl.gz")]
    shards = plan_shards(AuditConfig(paths=paths, out=tmp_path, shard_mb=0.002))
    assert [sum(s.source == p for s in shards) > 3 for p in paths] == [True, True, False]
    one_pass, by_shard = Skips(), Skips()
    whole = [(d.text, d.position) for p in paths for d in iter_documents(p, "text", one_pass)]
    parts = [(d.text, d.position) for s in shards
             for d in iter_documents(s.source, "text", by_shard, s.start, end=s.end)]
    assert parts == whole and sum(t.startswith("row") for t, _ in whole) == 428
    assert by_shard.counts == one_pass.counts == {"no 'text' value": 72, "empty file": 1}


def test_ray_gives_the_single_process_counts(corpus: list[str], single: AuditResult,
                                             local_ray: None, tmp_path: Path) -> None:
    on_ray = audit_corpus(AuditConfig(paths=corpus, out=tmp_path / "ray", progress=False,
                                      target_ratio=(1, 1), engine="ray", shard_mb=SHARD_MB))
    assert on_ray.engine == "ray" and not on_ray.resumed
    assert on_ray.documents == 90 and on_ray.candidates > 50
    _same(on_ray, single)
    saved = json.loads((tmp_path / "ray" / "audit.json").read_text())
    assert saved["labels"] == json.loads(single.model_dump_json())["labels"]
    assert len(list((tmp_path / "ray" / "ray-shards").glob("*.json"))) > 10


def test_ray_resumes_after_a_kill(corpus: list[str], single: AuditResult, local_ray: None,
                                  tmp_path: Path, monkeypatch: Any) -> None:
    import parables.audit.distributed as distributed

    out = tmp_path / "ray"
    cfg = AuditConfig(paths=corpus, out=out, progress=False, target_ratio=(1, 1),
                      engine="ray", shard_mb=SHARD_MB)
    written: list[Path] = []
    real_write = distributed.atomic_write_json

    def killed_after_five(path: Path, data: Any) -> None:
        if len(written) == 5:
            raise KeyboardInterrupt  # the driver dies with shards still running
        real_write(path, data)
        written.append(path)

    monkeypatch.setattr(distributed, "atomic_write_json", killed_after_five)
    with pytest.raises(KeyboardInterrupt):
        audit_corpus(cfg)
    assert len(list((out / "ray-shards").glob("*.json"))) == 5
    assert not (out / "audit.json").exists()
    for _ in range(60):  # the interrupted run's actors give their CPUs back
        if ray.available_resources().get("CPU") == 2:
            break
        time.sleep(0.5)
    assert ray.available_resources().get("CPU") == 2

    scanned: list[str] = []
    real_scan = distributed._scan_on_ray

    def counting(*args: Any) -> Iterator[tuple[str, Any]]:
        for name, part in real_scan(*args):
            scanned.append(name)
            yield name, part

    monkeypatch.setattr(distributed, "atomic_write_json", real_write)
    monkeypatch.setattr(distributed, "_scan_on_ray", counting)
    resumed = audit_corpus(cfg)
    shards = len(plan_shards(cfg))
    assert resumed.resumed and len(scanned) == shards - 5  # only the missing shards
    _same(resumed, single)
    scanned.clear()
    again = audit_corpus(cfg)  # everything done: nothing is scanned
    assert scanned == [] and again.resumed
    _same(again, single)


def test_cli_engine_ray_with_max_docs(corpus: list[str], local_ray: None, tmp_path: Path,
                                      capsys: Any, monkeypatch: Any) -> None:
    # the limit reached at the end of the first file: neither engine reads the second
    limited = audit_corpus(AuditConfig(paths=corpus, out=tmp_path / "local", max_docs=60,
                                       progress=False, target_ratio=(1, 1)))
    assert limited.documents == 60 and list(limited.per_source) == [corpus[0]]
    code, out, err = run(["audit", "scan", *corpus, "--engine", "ray", "--max-docs", "60",
                          "--shard-mb", str(SHARD_MB), "--target-ratio", "1:1",
                          "--out", str(tmp_path / "a")], capsys, monkeypatch)
    assert code == 0, err
    assert "misaligned" in out and "rebalancing to 1:1" in out and "corrected" in out
    on_ray = AuditResult.model_validate_json((tmp_path / "a" / "audit.json").read_text())
    assert on_ray.engine == "ray"
    _same(on_ray, limited)
    code, _, err = run(["audit", "scan", corpus[0], "--engine", "spark"], capsys, monkeypatch)
    assert_one_line_error(code, err, "engine")
    code, _, err = run(["audit", "scan", corpus[0], "--address", "auto"], capsys, monkeypatch)
    assert_one_line_error(code, err, "--engine ray")


def test_without_ray_the_error_says_how_to_install_it(corpus: list[str], tmp_path: Path,
                                                      capsys: Any, monkeypatch: Any) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` fails as if not installed
    code, _, err = run(["audit", "scan", corpus[0], "--engine", "ray", "--out",
                        str(tmp_path / "a")], capsys, monkeypatch)
    assert_one_line_error(code, err, "pip install 'parables[ray]'")
