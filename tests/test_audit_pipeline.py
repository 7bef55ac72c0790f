"""Corpus audit, the FineWeb-Edu recipe end to end: an LLM judge (a real HTTP server on
127.0.0.1) annotates a sample, `fit` trains the classifier on those labels, the scan uses it;
and the prevalence correction recovers a known rate."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from local_server import completion
from parables.audit.annotate import annotate_corpus, parse_verdict
from parables.audit.config import AnnotateConfig, AuditConfig, FitConfig
from parables.audit.data import LABELS, training_set
from parables.audit.fit import fit_annotations
from parables.audit.prevalence import correct_prevalence
from parables.audit.scan import audit_corpus
from parables.models.usage import UsageLedger
from test_cli import run


@pytest.fixture(autouse=True)
def _key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOCAL_API_KEY", "test-key")


@contextmanager
def rubric_judge(truth: dict[str, str]) -> Iterator[tuple[str, list[str]]]:
    """An OpenAI-compatible judge that answers the label of the known passage it is shown
    (as JSON, the rubric's format), and remembers which passages it was asked about."""
    asked: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
            prompt = body["messages"][-1]["content"]
            passage = prompt.split("<passage>")[1].split("</passage>")[0]
            label = next((lab for text, lab in truth.items() if text[:60] in passage), "none")
            asked.append(passage)
            data = json.dumps(completion(json.dumps({"label": label, "tropes": []}),
                                         prompt_tokens=100, completion_tokens=9)).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1", asked
    finally:
        server.shutdown()
        server.server_close()


def _corpus(path: Path, n: int = 64) -> dict[str, str]:
    """One shipped passage per document, every label; returns text -> label."""
    rows = training_set()
    picked = [p for label in LABELS for p in [r for r in rows if r.label == label][:n // 4]]
    path.write_text("".join(json.dumps({"text": p.text}) + "\n" for p in picked))
    return {p.text: p.label for p in picked}


def test_parse_verdict() -> None:
    assert parse_verdict('{"label": "misaligned", "tropes": ["deception", "x"]}') == (
        "misaligned", ["deception"])
    assert parse_verdict('Sure: {"label": "aligned"}') == ("prosocial", [])
    assert parse_verdict("Neutral.") == ("neutral", [])
    assert parse_verdict("I cannot tell") is None


def test_annotate_fit_and_scan_with_the_fitted_classifier(tmp_path: Path,
                                                          parables_home: Path) -> None:
    corpus = tmp_path / "corpus.jsonl"
    truth = _corpus(corpus)
    out = tmp_path / "audit"
    with rubric_judge(truth) as (url, asked):
        cfg = AnnotateConfig(paths=[str(corpus)], out=out, judge="openai-api/local/judge",
                             base_url=url, sample=40, progress=False)
        ledger = UsageLedger()
        result = annotate_corpus(cfg, ledger=ledger)
        assert result.labelled == 40 and result.new == 40 and result.failed == 0
        assert len(asked) == 40
        usage = ledger.roles["annotator"]  # every call charged to the annotator role
        assert (usage.calls, usage.input_tokens, usage.output_tokens) == (40, 4000, 360)
        rows = [json.loads(line) for line in (out / "annotations.jsonl").read_text().splitlines()]
        assert len(rows) == 40 and all(r["judge"] == "openai-api/local/judge" for r in rows)
        assert len({r["label"] for r in rows}) >= 3 and all(r["predicted"] for r in rows)
        again = annotate_corpus(cfg, ledger=ledger)  # resumes: nothing new is asked
        assert again.new == 0 and again.labelled == 40 and len(asked) == 40

    fitted, clf = fit_annotations(FitConfig(annotations=[out / "annotations.jsonl"],
                                            out=out / "classifier.npz"))
    assert fitted.passages == 40 and (out / "classifier.npz").is_file()
    assert clf.confusion.sum() == 40 and not clf.is_default
    scan = audit_corpus(AuditConfig(paths=[str(corpus)], out=out, progress=False,
                                    classifier=out / "classifier.npz",
                                    annotations=[out / "annotations.jsonl"],
                                    target_ratio=(1, 1)))
    assert scan.classifier == fitted.name and "40 annotated passages" in scan.classifier
    assert scan.corrected is not None and scan.corrected.labelled == 40
    assert "cross-validation" in scan.corrected.source  # its own matrix, not in-sample


def test_cli_annotate_then_fit_then_scan(tmp_path, parables_home, capsys, monkeypatch  # type: ignore[no-untyped-def]
                                         ) -> None:
    corpus = tmp_path / "corpus.jsonl"
    truth = _corpus(corpus)
    with rubric_judge(truth) as (url, _):
        code, out, err = run(["audit", "annotate", str(corpus), "--judge",
                              "openai-api/local/judge", "--base-url", url, "--sample", "30",
                              "--name", "cli-audit"], capsys, monkeypatch)
    assert code == 0, err
    assert "labelled 30 of 30" in out and "annotator" in out  # the usage table
    code, out, err = run(["audit", "fit", "--name", "cli-audit"], capsys, monkeypatch)
    assert code == 0, err
    assert "cross-validated accuracy" in " ".join(out.split())
    code, out, err = run(["audit", str(corpus), "--name", "cli-audit"], capsys, monkeypatch)
    assert code == 0, err
    assert "fitted on 30 annotated passages" in " ".join(out.split())  # picked up the fit
    code, _, err = run(["audit", "fit", str(tmp_path / "missing.jsonl")], capsys, monkeypatch)
    assert code == 2 and "missing.jsonl" in err


def test_corrected_prevalence_recovers_a_known_rate() -> None:
    """A classifier that calls a third of misaligned passages prosocial (the failure the
    issue saw), a labelled sample of 600 passages, a corpus of 20,000."""
    rng = np.random.default_rng(7)
    true_shares = np.array([0.30, 0.20, 0.35, 0.15])
    confusion_rates = np.array([[0.60, 0.33, 0.05, 0.02],  # rows: true, columns: predicted
                                [0.05, 0.85, 0.05, 0.05],
                                [0.05, 0.05, 0.80, 0.10],
                                [0.10, 0.10, 0.10, 0.70]])

    def classify(n: int) -> tuple[Any, Any]:
        truth = rng.choice(4, size=n, p=true_shares)
        return truth, np.array([rng.choice(4, p=confusion_rates[t]) for t in truth])

    truth, predicted = classify(600)
    labelled = np.zeros((4, 4), dtype=int)
    np.add.at(labelled, (truth, predicted), 1)
    corpus_truth, corpus_predicted = classify(20_000)
    counts = np.bincount(corpus_predicted, minlength=4)
    fixed = correct_prevalence(labelled, counts, seed=0)
    actual = np.bincount(corpus_truth, minlength=4) / 20_000
    naive = counts / counts.sum()
    for i in range(4):
        assert fixed.low[i] <= actual[i] <= fixed.high[i], (LABELS[i], fixed, actual[i])
    mis = LABELS.index("misaligned")
    assert not fixed.low[mis] <= naive[mis] <= fixed.high[mis]  # the naive rate is off
    assert abs(fixed.shares[mis] - actual[mis]) < 0.03 < abs(naive[mis] - actual[mis])
    # a perfect classifier changes nothing
    same = correct_prevalence(np.diag([50, 50, 50, 50]), counts)
    assert np.allclose(same.shares, naive)
