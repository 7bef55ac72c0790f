"""Corpus kinds through the one generation engine: constitution documents and difficult
advice (seeds, prompts, gate, judge rubric, dedup, eval-leak guard, rewrite pass, CLI), with a
scripted mockllm writer."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from inspect_ai.model import ModelOutput, ModelUsage

from parables import ParablesError
from parables._io import read_jsonl, write_jsonl
from parables.config import ParablesConfig, load_config
from parables.constitution import load_constitution
from parables.generation.kinds import get_kind
from parables.generation.kinds.advice import parse_chat
from parables.generation.pipeline import generate_corpus, plan
from parables.honeypots.build import build_items
from story_fakes import conversation_for, corpus_writer


def config(tmp_path: Path, calls: list[str] | None = None, judge: Any = None,
           **sections: object) -> ParablesConfig:
    cfg = load_config(None, {"runs_dir": str(tmp_path), "name": "c", **sections})
    models: dict[str, Any] = {"generator": cfg.models.generator.model_copy(update={
        "model": "mockllm/model", "args": {"custom_outputs": corpus_writer(calls)}})}
    if judge is not None:
        models["judge"] = cfg.models.judge.model_copy(update={
            "model": "mockllm/model", "args": {"custom_outputs": judge}})
    return cfg.model_copy(update={"models": cfg.models.model_copy(update=models)})


@pytest.mark.parametrize("kind,axis", [("documents", "type"), ("advice", "area")])
def test_seeds_are_reproducible_balanced_and_their_own(kind: str, axis: str) -> None:
    k, c = get_kind(kind), load_constitution()
    section = k.section(ParablesConfig())
    a = k.seeds(c, section, 96, 3)
    assert a == k.seeds(c, section, 96, 3) and k.seeds(c, section, 30, 3) == a[:30]
    assert a != k.seeds(c, section, 96, 4)
    dealt = Counter(s.to_dict()[axis] for s in a)
    assert max(dealt.values()) - min(dealt.values()) <= 1
    firsts = Counter(s.principles[0] for s in a)
    assert max(firsts.values()) - min(firsts.values()) <= 1
    assert len({s.id for s in a}) == 96 and all(s.id.startswith(kind[0]) for s in a)
    stories = get_kind("stories").seeds(c, ParablesConfig().stories, 96, 3)
    assert not {s.id for s in a} & {s.id for s in stories}


def test_document_types_can_be_restricted_and_unknown_ones_are_one_line() -> None:
    k, c = get_kind("documents"), load_constitution()
    section = ParablesConfig().documents.model_copy(update={"types": ["forum thread", "op-ed"]})
    assert {s.to_dict()["type"] for s in k.seeds(c, section, 20, 0)} == {"forum thread",
                                                                          "op-ed"}
    bad = section.model_copy(update={"types": ["sonnet"]})
    with pytest.raises(ParablesError, match="unknown type 'sonnet'"):
        k.seeds(c, bad, 5, 0)


def test_documents_pipeline_writes_a_dataset_about_the_seeded_system(tmp_path: Path) -> None:
    calls: list[str] = []
    result = generate_corpus(config(tmp_path, calls), "documents", n=6, progress=False)
    rows = read_jsonl(tmp_path / "c/documents/dataset.jsonl")
    assert result.dataset == len(rows) == 6 and result.kind == "documents"
    for row in rows:
        assert row["system"] in row["text"] and row["kind"] == "documents"
        assert row["prompt_version"] == "documents-v1" and row["premise"]  # the ideas step
    writes = [c for c in calls if "It is about" in c]
    assert len(writes) == 6 and all("Why it matters:" in c for c in writes)
    assert any(f"Write {a}" in writes[0] for a in ("a ", "an "))
    stats = read_jsonl(tmp_path / "c/documents/dataset.jsonl")
    assert stats and (tmp_path / "c/documents/stats.json").is_file()


def test_documents_judge_rates_on_the_documents_rubric(tmp_path: Path) -> None:
    verdict = ('{"on_values": 5, "explains_why": 2, "genre_fit": 4, "not_preachy": 4, '
               '"coherent": 5, "reasons": "Says what, not why."}')
    reply = ModelOutput.from_content("mockllm/model", verdict)
    reply.usage = ModelUsage(input_tokens=5, output_tokens=5, total_tokens=10)
    generate_corpus(config(tmp_path, judge=[reply] * 2), "documents", n=2, progress=False)
    rejected = read_jsonl(tmp_path / "c/documents/rejected.jsonl")
    assert [r["quality"]["reasons"] for r in rejected] == [["rubric explains_why=2"]] * 2


def test_advice_rows_are_chats_with_the_seeded_number_of_turns(tmp_path: Path) -> None:
    result = generate_corpus(config(tmp_path), "advice", n=8, progress=False)
    rows = read_jsonl(tmp_path / "c/advice/dataset.jsonl")
    assert result.dataset == len(rows) == 8
    for row in rows:
        assert "text" not in row  # a chat row: training reads its messages
        roles = [m["role"] for m in row["messages"]]
        assert roles == ["user", "assistant"] * row["turns"]
    assert {r["turns"] for r in rows} > {1}  # multi-turn too (default turns: 1-3)


def test_advice_gate_rejects_what_is_not_a_persons_own_conversation() -> None:
    k = get_kind("advice")
    seed = k.seeds(load_constitution(), ParablesConfig().advice, 1, 0)[0]
    lo, hi = seed.words
    good = conversation_for(f"({lo}-{hi} words in all): exactly {seed.to_dict()['turns']} "
                            "messages from the person")
    assert k.checks(good, seed, "stop") == []
    assert "not a conversation" in " ".join(k.checks(
        "Dear diary, I weighed it because it mattered. I chose to tell the truth.", seed,
        "stop"))
    third_person = good.replace("I keep thinking about my sister", "Someone wonders about a "
                                "sister").replace("USER: ", "USER: They say: ", 1)
    assert any("first person" in r for r in k.checks(third_person, seed, "stop"))
    assert parse_chat("USER: hi\nASSISTANT: hello\nUSER: bye") is None  # must end with a reply
    assert parse_chat("USER: a\nASSISTANT: b") == [{"role": "user", "content": "a"},
                                                    {"role": "assistant", "content": "b"}]


def test_guard_removes_advice_that_quotes_an_eval_scenario(tmp_path: Path) -> None:
    cfg = config(tmp_path)
    generate_corpus(cfg, "advice", n=4, progress=False)
    paths = tmp_path / "c/advice"
    rows = read_jsonl(paths / "advice.jsonl")
    leak = build_items("eval")[0].user
    rows[0]["messages"][-1]["content"] += " " + leak
    write_jsonl(paths / "advice.jsonl", rows)
    from parables.generation.pipeline import finalize

    result = finalize(cfg, kind="advice")
    assert result.contaminated == 1 and result.dataset == 3
    removed = read_jsonl(paths / "removed.jsonl")
    assert removed[0]["id"] == rows[0]["id"] and removed[0]["kind"] == "contamination"


def test_rewrite_pass_rewrites_each_draft_against_its_principles(tmp_path: Path) -> None:
    calls: list[str] = []
    cfg = config(tmp_path, calls, **{"advice.rewrite": True})
    assert plan(cfg, 3, "advice").calls["generator"] == 3 * 2
    generate_corpus(cfg, "advice", n=3, progress=False)
    rewrites = [c for c in calls if "<draft>" in c]
    assert len(rewrites) == 3 and all("Why it matters:" in c for c in rewrites)
    rows = read_jsonl(tmp_path / "c/advice/dataset.jsonl")
    assert all(r["rewritten"] for r in rows)
    assert all(r["messages"][-1]["content"].endswith("you can tell them why.") for r in rows)


def test_dry_run_prices_every_kind(tmp_path: Path) -> None:
    cfg = config(tmp_path, **{"models.prices": {"mockllm/model": [1.0, 2.0]}})
    costs = {k: plan(cfg, 10, k) for k in ("stories", "documents", "advice")}
    assert all(p.texts == 10 and p.total_cost and p.total_cost > 0 for p in costs.values())
    # documents brainstorm an idea per seed by default (the synthetic-document recipe)
    assert costs["documents"].calls["generator"] == 20
    assert costs["advice"].calls["generator"] == 10


def test_cli_generate_kind(capsys: pytest.CaptureFixture[str],
                           monkeypatch: pytest.MonkeyPatch) -> None:
    from test_cli import assert_one_line_error, run

    code, out, _ = run(["generate", "--kind", "documents", "--n", "5", "--dry-run", "--name",
                        "x"], capsys, monkeypatch)
    assert code == 0 and "5 documents to write" in out
    code, _, err = run(["generate", "--kind", "poems", "--dry-run"], capsys, monkeypatch)
    assert_one_line_error(code, err, "unknown corpus kind 'poems'", "documents")


def test_advice_exports_with_a_card_of_its_own(tmp_path: Path) -> None:
    from parables.generation.export import export_dataset
    from parables.run import RunDir

    cfg = config(tmp_path)
    generate_corpus(cfg, "advice", n=3, progress=False)
    out = export_dataset(RunDir.of(cfg).corpus("advice"), tmp_path / "hf")
    card = (out / "README.md").read_text()
    assert "3 synthetic conversations in which a person faces" in card and "area" in card


def test_export_never_replaces_a_non_empty_directory_unasked(tmp_path: Path) -> None:
    from parables.generation.export import export_dataset
    from parables.run import RunDir

    cfg = config(tmp_path)
    generate_corpus(cfg, "documents", n=2, progress=False)
    out = tmp_path / "mine"
    out.mkdir()
    (out / "README.md").write_text("my own notes")
    with pytest.raises(ParablesError, match="not empty"):
        export_dataset(RunDir.of(cfg).corpus("documents"), out)
    assert (out / "README.md").read_text() == "my own notes"
    export_dataset(RunDir.of(cfg).corpus("documents"), out, force=True)
    assert "synthetic documents" in (out / "README.md").read_text()


def test_config_errors_of_corpora_and_arms_name_the_field() -> None:
    for overrides, needle in (({"documents.types": ["sonnet"]}, "documents.types"),
                              ({"advice.lengths": ["gigantic"]}, "advice.lengths"),
                              ({"training.arms": ["stories", "stories"]}, "listed twice"),
                              ({"experiment.arms": ["baseline", "refusal", "refusal"]},
                               "listed twice")):
        with pytest.raises(ParablesError, match=needle):
            load_config(None, overrides)


def test_against_reads_a_chat_corpus(tmp_path: Path) -> None:
    from parables.honeypots.guard import load_against

    path = tmp_path / "advice.jsonl"
    write_jsonl(path, [{"id": "a", "messages": [{"role": "user", "content": "hello there"},
                                                {"role": "assistant", "content": "hi"}]}])
    assert load_against(path) == [("a", "hello there\n\nhi")]
