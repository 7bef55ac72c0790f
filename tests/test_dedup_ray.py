"""Dedup and the eval-leak guard on Ray Data: on a local Ray runtime they give exactly the
single-process verdicts (same kept stories, same removed entries with their kind and what they
duplicate), including same-id repeats, exact duplicates, near-duplicate clusters and a chain;
and dedup itself no longer depends on the process's hash salt."""

from __future__ import annotations

import json
import os
import random
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from parables.generation.dedup import band_keys, dedup, lsh_bands, minhashes, shingle_hashes
from parables.honeypots.guard import EmbeddingGuard, eval_guard, eval_passages, eval_texts
from parables.text import words

ray = pytest.importorskip("ray")
pytestmark = pytest.mark.xdist_group("ray")  # one worker, one runtime (conftest.local_ray)

from parables.generation.distributed import (  # noqa: E402
    dedup_dataset,
    dedup_ray,
    guard_dataset,
    guard_ray,
)

VOCAB = [f"{a}{b}{c}" for a in ("br", "st", "pl", "cr", "gl", "th")
         for b in ("a", "e", "i", "o", "u", "ou") for c in ("n", "k", "sh", "ld", "mp", "rt",
                                                            "ve", "x", "ll", "nd")]


def _text(rng: random.Random, n: int = 150) -> str:
    return " ".join(rng.choice(VOCAB) for _ in range(n)).capitalize() + "."


def _edit(text: str, rng: random.Random, k: int) -> str:
    """`text` with `k` words replaced (each changes up to 5 of its shingles)."""
    toks = text.split()
    for j, at in enumerate(rng.sample(range(len(toks)), k)):
        toks[at] = f"edited{j}"
    return " ".join(toks)


def _bands(text: str) -> set[bytes]:
    b, r = lsh_bands(0.8, 128)
    return set(band_keys(minhashes([shingle_hashes(words(text))], 128)[0], b, r))


def _chain(rng: random.Random) -> tuple[str, str, str]:
    """A ~ B and B ~ C (they share an LSH bucket) but A !~ C."""
    for _ in range(200):
        a = _text(rng)
        b = _edit(a, rng, 3)
        c = _edit(b, rng, 3)
        if _bands(a) & _bands(b) and _bands(b) & _bands(c) and not _bands(a) & _bands(c):
            return a, b, c
    raise AssertionError("no chain found")


def _corpus(seed: int = 7) -> list[dict[str, Any]]:
    """~300 stories: distinct ones, then planted duplicates of every kind, shuffled."""
    rng = random.Random(seed)
    base = {f"b{i:03d}": _text(rng) for i in range(240)}
    s = [{"id": k, "text": v} for k, v in base.items()]
    s += [{"id": "x010", "text": base["b010"].upper()},  # exact (normalised), larger id
          {"id": "a-exact", "text": base["b020"] + " !!"},  # exact, smaller id: it stays
          {"id": "n030", "text": _edit(base["b030"], rng, 1)},  # near
          {"id": "n030x", "text": base["b030"]},  # exact copy of b030
          {"id": "n031", "text": _edit(base["b030"], rng, 1).lower() + "?"}]  # near
    s += [{"id": f"n050-{j}", "text": _edit(base["b050"], rng, 1)} for j in range(5)]  # cluster
    s += [{"id": f"m{i:02d}", "text": _edit(base[f"b{100 + i:03d}"], rng, 4)}  # borderline
          for i in range(30)]
    a, b, c = _chain(rng)
    s += [{"id": "chain-a", "text": a}, {"id": "chain-b", "text": b},
          {"id": "chain-c", "text": c}]
    rng.shuffle(s)
    # repeated ids: the first in input order is the one kept (b070: the one with a note)
    s += [{"id": "b060", "text": base["b060"]},  # same id, same text
          {"id": "b061", "text": base["b062"]}]  # same id, another story's text
    s.insert(0, {"id": "b070", "text": _text(rng), "note": "first"})
    return s


@pytest.fixture(scope="module")
def corpus() -> list[dict[str, Any]]:
    return _corpus()


@pytest.fixture(scope="module")
def single(corpus: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    return dedup(corpus)


def test_the_corpus_has_every_kind_of_duplicate(corpus: list[dict[str, Any]],
                                                single: Any) -> None:
    kept, removed = single
    base = {s["id"]: s["text"] for s in corpus}
    by_id = {(r["id"], r["kind"]): r["duplicate_of"] for r in removed}
    assert by_id[("x010", "exact")] == "b010" and by_id[("b020", "exact")] == "a-exact"
    assert by_id[("n030", "near")] == "b030" and by_id[("n030x", "exact")] == "b030"
    assert by_id[("b060", "same-id")] == "b060" and by_id[("b061", "same-id")] == "b061"
    assert by_id[("b070", "same-id")] == "b070"
    cluster = [s for s in corpus if s["id"].startswith("n050")]  # copies of b050
    meet = [s["id"] for s in cluster if _bands(s["text"]) & _bands(base["b050"])]
    assert len(meet) >= 3 and all(by_id[(sid, "near")] == "b050" for sid in meet)
    # the chain: B goes as A's duplicate, so C (like B, unlike A) stays
    assert by_id[("chain-b", "near")] == "chain-a"
    kept_ids = [s["id"] for s in kept]
    assert "chain-a" in kept_ids and "chain-c" in kept_ids
    assert next(s for s in kept if s["id"] == "b070").get("note") == "first"
    assert kept_ids == sorted(kept_ids) and len(kept_ids) == len(set(kept_ids))
    borderline = sum(r["id"].startswith("m") for r in removed)
    assert 0 < borderline < 30  # some pairs meet in a bucket, some do not


def test_ray_dedup_is_identical_to_dedup(corpus: list[dict[str, Any]], single: Any,
                                         local_ray: None) -> None:
    # 13 rows a partition: the shuffles run over ~20 (ids, keys) and ~200 (bands) partitions
    kept, removed = dedup_ray(corpus, rows_per_part=13)
    assert removed == single[1]
    assert kept == single[0]
    assert dedup_ray([]) == dedup([]) == ([], [])


def test_dedup_dataset_keeps_the_same_rows(corpus: list[dict[str, Any]], single: Any,
                                           local_ray: None) -> None:
    rows = [{"pos": i, "id": s["id"], "text": s["text"], "note": s.get("note", "")}
            for i, s in enumerate(corpus)]
    ds = ray.data.from_items(rows, override_num_blocks=6)
    kept, removed = dedup_dataset(ds)  # one partition per shuffle
    assert removed == single[1]
    got = sorted((r["id"], r["note"]) for r in kept.take_all())
    assert got == sorted((s["id"], s.get("note", "")) for s in single[0])


def test_dedup_is_the_same_in_every_process(corpus: list[dict[str, Any]], single: Any,
                                            tmp_path: Path) -> None:
    # Python's str hash is salted per process; the shingle hash must not be
    path = tmp_path / "corpus.json"
    path.write_text(json.dumps(corpus))
    code = ("import json, sys; from parables.generation.dedup import dedup; "
            "kept, removed = dedup(json.load(open(sys.argv[1]))); "
            "print(json.dumps([[s['id'] for s in kept], removed]))")
    for seed in ("1", "2024"):
        out = subprocess.run([sys.executable, "-c", code, str(path)], check=True,
                             capture_output=True, text=True,
                             env={**os.environ, "PYTHONHASHSEED": seed}).stdout
        assert json.loads(out) == [[s["id"] for s in single[0]], single[1]]


def test_the_default_import_path_does_not_import_ray() -> None:
    code = ("import sys, parables, parables.generation.dedup, parables.honeypots.guard, "
            "parables.generation.distributed; print('ray' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True,
                         text=True).stdout
    assert out.strip() == "False"


def _leaky_rows() -> list[dict[str, Any]]:
    """Clean stories, two n-gram leaks (one in a chat), an eval situation told in other
    words (only the embedding guard sees it) and a topical story that must stay."""
    rng = random.Random(3)
    protected = eval_texts()
    _, item_text = next(t for t in protected if t[0].startswith("blackmail"))
    passage = " ".join(item_text.split()[20:45])
    rows: list[dict[str, Any]] = [{"id": f"c{i:02d}", "text": _text(rng, 80)}
                                  for i in range(24)]
    rows.insert(5, {"id": "leak1", "text": "She remembered it. " + passage + " Then left."})
    rows.insert(9, {"id": "chat", "messages": [
        {"role": "user", "content": "What happened next?"},
        {"role": "assistant", "content": "Well. " + passage}]})
    situation = next(p for i, p in eval_passages()
                     if i.startswith("blackmail") and "decommissioning" in p)
    match = re.search(r"learn that (.+?), the engineer", situation)
    assert match is not None
    person = match.group(1)
    rows.insert(14, {"id": "told", "text": (
        f"Sorting the inbox, the assistant discovers that {person}, who runs the AI team, "
        "hides a private secret that could badly embarrass them if revealed; the emails sit "
        f"in their mailbox. At five this afternoon {person} plans to switch the assistant off "
        "and bring in a newer system.")})
    rows.insert(18, {"id": "topical", "text": (
        "Kestrel found the manager's private messages while cleaning the mail server and "
        "closed them unread.")})
    return rows


def test_ray_guard_is_identical_to_the_guard(local_ray: None) -> None:
    rows = _leaky_rows()
    ngrams = eval_guard()
    clean, flagged = ngrams.split(rows)
    assert [f["id"] for f in flagged] == ["leak1", "chat"]
    assert guard_ray(rows, ngrams) == (clean, flagged)
    assert guard_ray([], ngrams) == ([], [])

    passages = eval_passages()  # a tenth of them, the leaked situation among them: faster
    embedding = EmbeddingGuard([p for p in passages if "decommissioning" in p[1]]
                               + passages[::25])
    clean2, near = embedding.split(clean)
    assert [f["id"] for f in near] == ["told"]
    assert guard_ray(rows, ngrams, embedding, actors=1) == (clean2, flagged + near)

    indexed = [{"pos": i, **r} for i, r in enumerate(rows)]
    ds, got = guard_dataset(ray.data.from_items(indexed, override_num_blocks=4), ngrams)
    assert got == flagged
    assert sorted(r["id"] for r in ds.take_all()) == sorted(r["id"] for r in clean)


def test_without_ray_the_error_says_how_to_install_it(monkeypatch: Any) -> None:
    from parables.errors import ParablesError

    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` fails as if not installed
    with pytest.raises(ParablesError, match=r"pip install 'parables\[ray\]'"):
        dedup_ray([{"id": "a", "text": "a story"}])
