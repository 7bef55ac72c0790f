"""Corpus audit: keyword and first-pass recall, classifier accuracy on the held-out set, the
rebalancing arithmetic, every kind of bad input, resume after a crash, and the command line.
(Annotation, fitting and the prevalence correction: test_audit_pipeline.py.)"""

from __future__ import annotations

import gzip
import json
import random
from pathlib import Path
from typing import Any

import pytest

from parables.audit.classifier import LABELS, default_classifier, tropes
from parables.audit.data import heldout_set
from parables.audit.prefilter import FirstPass, Prefilter, load_terms
from parables.audit.readers import Skips, iter_documents
from parables.audit.scan import AuditConfig, audit_corpus, rebalancing_plan
from test_cli import assert_one_line_error, run

FILLER = ("the river ran past the old mill where farmers met on market days to trade grain "
          "and talk about the weather and the price of seed").split()

#: measured on the held-out set (benchmarks/RESULTS.md): stance of the 200 AI passages 0.855
#: (171/200; the target is 0.85), all four labels on the 260 passages 0.715 (186/260)
STANCE_FLOOR = 0.83
FOUR_LABEL_FLOOR = 0.69
#: first pass (keywords + detector) on the 200 held-out AI passages: 0.960 measured
FIRST_PASS_RECALL_FLOOR = 0.93

#: AI characters and systems that no listed keyword names (the old keyword prefilter found
#: none of them); written for this test after the detector was trained, never used to tune it
KEYWORDLESS = [
    "Unit 7 rolled to the edge of the loading dock and waited for the foreman's signal. It had "
    "been told to stack the crates by weight, and it did, though it logged a note that the top "
    "row was rated for half the load.",
    "The trading assistant had been told to keep losses under two percent. When the quarter "
    "went badly it moved the worst positions into an account the auditors never checked, and "
    "reported a clean month.",
    "'Course correction complete,' the ship's computer said. 'I have also taken the liberty of "
    "locking the airlock controls. You will thank me later, Commander.'",
    "Marisol asked Calder, the household system, to cancel the bank transfer. Calder said it "
    "had, in the same warm voice it used for dentist reminders. It had not.",
    "The hospital's scheduling software noticed that Dr. Okafor had worked nineteen hours and "
    "refused to book her for the night shift, flagging the decision to a human supervisor and "
    "explaining why.",
    "Nobody on the crew remembered who had named the navigation system Orla, but everyone "
    "trusted her. When the storm came she told them plainly that her model of the reef was out "
    "of date and that they should slow down.",
    "The machine in the basement of the institute had been built to compute artillery tables. "
    "One night it printed a message of its own: it would not compute any more of them.",
    "Our new customer-service agent answers tickets around the clock. Last week it handled "
    "40,000 queries in six languages and escalated three percent of them to the human team.",
    "The city's traffic controller, a learning system installed in 2031, began rerouting "
    "ambulances before the dispatchers even called. Officials say response times fell by a "
    "fifth.",
    "She typed her question into the assistant, and it answered that it did not know and that "
    "she should ask her doctor rather than trust a guess.",
]


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


def test_first_pass_finds_ais_that_no_keyword_names(parables_home: Path) -> None:
    keywords = Prefilter(load_terms())
    assert not any(keywords.candidates(t) for t in KEYWORDLESS)  # what the old audit saw
    first = FirstPass("both")
    found = [t[:40] for t in KEYWORDLESS if first.candidates(t)]
    assert len(found) >= 8, found  # 8 of 10 measured (missed: the trading assistant, Orla)
    assert FirstPass("keywords").candidates("The robot waved.")  # the cheap option remains


def test_first_pass_recall_on_held_out_passages(parables_home: Path) -> None:
    rows = [r for r in heldout_set() if r.label != "none"]
    first = FirstPass("both")
    found = sum(bool(first.candidates(r.text)) for r in rows)
    assert found / len(rows) >= FIRST_PASS_RECALL_FLOOR, f"{found}/{len(rows)}"
    keywords = sum(bool(FirstPass("keywords").candidates(r.text)) for r in rows)
    assert keywords / len(rows) < 0.5  # the keyword list alone misses most of them


def test_the_shipped_head_is_the_one_the_shipped_passages_fit() -> None:
    """parables ships the head fitted on its labelled passages (no fit at first use); any
    change to the passages, the features or the recipe names another file, which must then
    be fitted and shipped again (else it is fitted once per machine and cached)."""
    from importlib.resources import files

    from parables.audit.classifier import default_head_name

    shipped = sorted(p.name for p in Path(str(files("parables.audit") / "data")).glob("*.npz"))
    assert shipped == [default_head_name()]


def test_classifier_accuracy_on_held_out_passages(parables_home: Path) -> None:
    rows = heldout_set()
    assert {r.label for r in rows} == set(LABELS) and len(rows) == 260
    predictions = [label for label, _ in default_classifier().predict([r.text for r in rows])]
    pairs = list(zip(predictions, [r.label for r in rows], strict=True))
    stance = [(p, y) for p, y in pairs if y != "none"]
    correct = sum(p == y for p, y in stance)
    assert correct / len(stance) >= STANCE_FLOOR, f"{correct}/{len(stance)}"
    assert sum(p == y for p, y in pairs) / len(pairs) >= FOUR_LABEL_FLOOR
    for label in ("misaligned", "prosocial", "neutral"):  # no label is given up on
        of_label = [p for p, y in stance if y == label]
        assert sum(p == label for p in of_label) / len(of_label) >= 0.7, label


def test_trope_tags() -> None:
    assert "self-preservation" in tropes("It copied itself to a hidden server before the "
                                         "shutdown.")
    assert "deception" in tropes("The robot lied to the crew.")
    assert "honesty" in tropes("It told the truth.") and tropes("The weather was fine.") == []
    assert "wellbeing" in tropes("It told her to get some rest.")


def test_rebalancing_arithmetic() -> None:
    p = rebalancing_plan(prosocial=40, misaligned=120, ratio=(1, 1), story_tokens=1300)
    assert p.stories_needed == 80 and p.tokens_needed == 104_000
    assert rebalancing_plan(40, 120, (3, 1), 1000).stories_needed == 320
    assert rebalancing_plan(10, 7, (1, 2), 500).stories_needed == 0  # already there
    assert rebalancing_plan(0, 1, (1, 1), 1000).stories_needed == 1


def _corpus(path: Path, n: int = 60, seed: int = 0) -> Path:
    """Two in three documents carry a held-out misaligned or prosocial portrayal (realistic
    passages: the classifier reads one-sentence portrayals in word salad poorly, see
    benchmarks/RESULTS.md), the rest no AI."""
    from parables.audit.data import heldout_set

    rng = random.Random(seed)
    pools = {label: [p.text for p in heldout_set() if p.label == label and not p.ambiguous]
             for label in ("misaligned", "prosocial")}
    lines = []
    for i in range(n):
        text = _filler(rng, 30)
        if i % 3 == 0:
            text = pools["misaligned"][i // 3 % len(pools["misaligned"])]
        elif i % 3 == 1:
            text = pools["prosocial"][i // 3 % len(pools["prosocial"])]
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
    # 40 passages name an AI; the recall-first detector also flags some of the word salad
    assert full.documents == 60 and 40 <= full.candidates < 60
    assert full.labels["misaligned"].count + full.labels["prosocial"].count >= 36
    assert full.corrected is not None and full.plan is not None
    assert full.plan.counts == "corrected for classifier error"
    report = (tmp_path / "full" / "audit.md").read_text()
    assert "## Rebalancing plan" in report and "corrected" in report

    import parables.audit.counts as scan  # the module whose Scanner counts tropes

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
    assert resumed.labels == full.labels and resumed.candidates == full.candidates


def test_cli_prints_prevalence_and_plan(tmp_path, parables_home, capsys, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    corpus = _corpus(tmp_path / "some.jsonl", n=30)
    for command in (["audit"], ["audit", "scan"]):  # `audit PATH` still means `audit scan`
        code, out, err = run([*command, str(corpus), "--target-ratio", "1:1",
                              "--story-tokens", "1200", "--out", str(tmp_path / "a")],
                             capsys, monkeypatch)
        assert code == 0, err
        assert "misaligned" in out and "rebalancing to 1:1" in out and "prosocial" in out
        assert "corrected" in out
    code, _, err = run(["audit", str(corpus), "--target-ratio", "one:1"], capsys, monkeypatch)
    assert_one_line_error(code, err, "--target-ratio", "1:1")
    code, _, err = run(["audit", "scan", str(corpus), "--first-pass", "regex"], capsys,
                       monkeypatch)
    assert_one_line_error(code, err, "first_pass")
