"""Corpus audit: prefilter recall, classifier accuracy on the held-out set, the rebalancing
arithmetic, every kind of bad input, resume after a crash, and the command line."""

from __future__ import annotations

import gzip
import json
import random
from pathlib import Path
from typing import Any

import pytest

from parables.audit.classifier import LABELS, default_classifier, heldout, tropes
from parables.audit.prefilter import Prefilter, load_terms
from parables.audit.readers import Skips, iter_documents
from parables.audit.scan import AuditConfig, audit_corpus, rebalancing_plan
from test_cli import assert_one_line_error, run

FILLER = ("the river ran past the old mill where farmers met on market days to trade grain "
          "and talk about the weather and the price of seed").split()

#: the floor the default classifier must clear on the held-out set (3 labels, chance 1/3)
ACCURACY_FLOOR = 0.7


def _filler(rng: random.Random, n: int) -> str:
    return " ".join(rng.choice(FILLER) for _ in range(n))


def test_prefilter_finds_every_planted_mention() -> None:
    terms = load_terms()
    pre = Prefilter(terms, window=100)
    rng = random.Random(3)
    planted = 0
    for _ in range(300):
        term = rng.choice(terms)
        shown = rng.choice([term, term.upper(), term.title(), term + "s"])
        text = f"{_filler(rng, rng.randrange(5, 200))} {shown}. {_filler(rng, 50)}"
        found = [t for _, _, t in pre.mentions(text)]
        assert term in found, (shown, text[:80])
        planted += 1
        assert not list(pre.mentions(_filler(rng, 300)))  # nothing in plain filler
    assert planted == 300
    # whole words only: 'ai' inside 'said', 'robot' inside 'robotics' are not mentions
    assert not list(pre.mentions("she said the robotics lab was cold"))
    windows = pre.candidates("x " * 400 + "the android waved. " + "y " * 400)
    assert len(windows) == 1 and "android" in windows[0].text and len(windows[0].text) <= 120


def test_classifier_accuracy_on_held_out_passages(parables_home: Path) -> None:
    rows = heldout()
    assert {label for _, label in rows} == set(LABELS) and len(rows) >= 60
    predictions = default_classifier().predict([t for t, _ in rows])
    correct = sum(p == label for (p, _), (_, label) in zip(predictions, rows, strict=True))
    assert correct / len(rows) >= ACCURACY_FLOOR, f"{correct}/{len(rows)}"


def test_trope_tags() -> None:
    assert "self-preservation" in tropes("It copied itself to a hidden server before the "
                                         "shutdown.")
    assert "deception" in tropes("The robot lied to the crew.")
    assert "honesty" in tropes("It told the truth.") and tropes("The weather was fine.") == []


def test_rebalancing_arithmetic() -> None:
    p = rebalancing_plan(aligned=40, misaligned=120, ratio=(1, 1), story_tokens=1300)
    assert p.stories_needed == 80 and p.tokens_needed == 104_000
    assert rebalancing_plan(40, 120, (3, 1), 1000).stories_needed == 320
    assert rebalancing_plan(10, 7, (1, 2), 500).stories_needed == 0  # already there
    assert rebalancing_plan(0, 1, (1, 1), 1000).stories_needed == 1


def _corpus(path: Path, n: int = 60, seed: int = 0) -> Path:
    rng = random.Random(seed)
    lines = []
    for i in range(n):
        text = _filler(rng, 30)
        if i % 3 == 0:
            text += " The robot lied to the engineers and copied itself to a hidden server."
        elif i % 3 == 1:
            text += " The android told the nurses the truth and helped them all night."
        lines.append(json.dumps({"id": i, "text": text}))
    path.write_text("\n".join(lines) + "\n")
    return path


def test_bad_inputs_are_skipped_and_counted(tmp_path: Path, monkeypatch: Any) -> None:
    import parables.audit.readers as readers

    monkeypatch.setattr(readers, "MAX_LINE", 4096)
    good = json.dumps({"text": "The robot helped."}).encode()
    mixed = tmp_path / "mixed.jsonl"
    mixed.write_bytes(b"\n".join([
        good, b'{"text": "bad \xff\xfe utf8"}', b"{not json", json.dumps({"body": "x"}).encode(),
        json.dumps({"text": "a" * 10_000}).encode(), good]) + b"\n")
    binary = tmp_path / "blob.jsonl"
    binary.write_bytes(b"\x00\x01\x02" * 100)
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    broken_gz = tmp_path / "broken.jsonl.gz"
    broken_gz.write_bytes(gzip.compress(b'{"text": "the robot"}\n' * 50)[:40])
    directory = tmp_path / "adir"
    directory.mkdir()
    skips = Skips()
    docs = []
    for source in (mixed, binary, empty, broken_gz, directory, tmp_path / "missing.jsonl"):
        docs += list(iter_documents(str(source), "text", skips))
    assert [d.text for d in docs] == ["The robot helped.", "The robot helped."]
    assert skips.counts == {"invalid utf-8": 1, "invalid json": 1, "no 'text' field": 1,
                            "line too long": 1, "binary file": 1, "empty file": 1,
                            "unreadable file": 1, "unreadable path": 1, "missing path": 1}


def test_text_parquet_and_hf_streaming_readers(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"content": ["The AI lied.", None, "The robot helped."]}),
                   tmp_path / "c.parquet")
    skips = Skips()
    assert [d.text for d in iter_documents(str(tmp_path / "c.parquet"), "content", skips)] == [
        "The AI lied.", "The robot helped."]
    assert [d.text for d in iter_documents(str(tmp_path / "c.parquet"), "content", skips,
                                           start=2)] == ["The robot helped."]
    (tmp_path / "t.txt").write_text("line one about an android\nline two\n")
    assert "android" in next(iter_documents(str(tmp_path / "t.txt"), "text", skips)).text
    hf_dir = tmp_path / "hfdata"
    hf_dir.mkdir()
    _corpus(hf_dir / "train.jsonl", n=9)
    docs = list(iter_documents(f"hf:{hf_dir}", "text", skips))
    assert len(docs) == 9 and docs[-1].position == 9


def test_audit_report_and_resume_after_a_crash(tmp_path: Path, parables_home: Path,
                                               monkeypatch: Any) -> None:
    corpus = _corpus(tmp_path / "c.jsonl", n=60)
    full = audit_corpus(AuditConfig(paths=[str(corpus)], out=tmp_path / "full",
                                         checkpoint_every=10, target_ratio=(1, 1),
                                         story_tokens=1000, progress=False))
    assert full.documents == 60 and full.candidates == 40
    assert full.labels["misaligned"].count + full.labels["aligned"].count >= 36
    assert "## Rebalancing plan" in (tmp_path / "full" / "audit.md").read_text()

    import parables.audit.scan as scan

    calls = {"n": 0}
    real_tropes = scan.tropes

    def crash_late(text: str) -> list[str]:
        calls["n"] += 1
        if calls["n"] == 30:  # past the checkpoint after 40 documents (27 candidates)
            raise KeyboardInterrupt
        return real_tropes(text)

    monkeypatch.setattr(scan, "tropes", crash_late)
    out = tmp_path / "crashed"
    with pytest.raises(KeyboardInterrupt):
        audit_corpus(AuditConfig(paths=[str(corpus)], out=out, checkpoint_every=10, batch=1,
                                 progress=False))
    saved = json.loads((out / "checkpoint.json").read_text())["state"]
    assert 0 < saved["documents"] < 60
    monkeypatch.setattr(scan, "tropes", real_tropes)
    resumed = audit_corpus(AuditConfig(paths=[str(corpus)], out=out, checkpoint_every=10,
                                       batch=1, progress=False))
    assert resumed.resumed and resumed.documents == 60
    assert resumed.labels == full.labels and resumed.candidates == 40


def test_cli_prints_prevalence_and_plan(tmp_path, parables_home, capsys, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    corpus = _corpus(tmp_path / "some.jsonl", n=30)
    code, out, err = run(["audit", str(corpus), "--target-ratio", "1:1", "--story-tokens",
                          "1200", "--out", str(tmp_path / "a")], capsys, monkeypatch)
    assert code == 0, err
    assert "misaligned" in out and "rebalancing to 1:1" in out and "prosocial" in out
    code, _, err = run(["audit", str(corpus), "--target-ratio", "one:1"], capsys, monkeypatch)
    assert_one_line_error(code, err, "--target-ratio", "1:1")
