"""A corpus kind is one class in one file: a kind defined and registered here, in the test
module, takes its settings from `corpora.<kind>`, is written by the shared engine (seeds, gate,
dedup, guard, dataset), and gets a training arm of its name that the config, the dry run and
`+` arms know — with no edit anywhere else."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from inspect_ai.model import ModelOutput, ModelUsage

from parables._io import read_jsonl
from parables.config import ParablesConfig, load_config
from parables.errors import ParablesError
from parables.generation.kinds import KINDS, Kind, Messages, register
from parables.generation.pipeline import generate_corpus
from parables.training.arms import ARMS, CorpusArm, corpora_needed, get_arm
from parables.training.plan import plan_arms
from parables.training.prepare import arm_rows

WORDS = "harbour lantern ledger orchard signal meadow quarry beacon thimble compass".split()


class Letters(Kind):
    """Letters of advice to a younger colleague (a throwaway kind)."""

    name = "letters"
    noun = "letter"
    prompt_version = "letters-test"
    system = "You write letters."
    rubric = {"coherent": "it holds together"}
    drawn = ("tone",)
    themes = False

    def axes(self) -> dict[str, Any]:
        return {"lengths": {"short": [40, 160]}, "tone": ["warm", "dry", "brisk"]}

    def prompt(self, constitution: Any, seed: Any, premise: str | None) -> Messages:
        return [{"role": "user", "content": f"Write a {seed['tone']} letter ({seed.id}) "
                 "about " + constitution.principle(seed.principles[0]).title}]


def _writer() -> Any:
    async def outputs(input: list[Any], tools: Any, tool_choice: Any, config: Any
                      ) -> ModelOutput:
        prompt = "\n".join(m.text for m in input)
        digest = hashlib.sha256(prompt.encode()).digest()
        body = " ".join(WORDS[b % len(WORDS)] for b in digest[:24])
        text = (f"Dear Ines, I decided to tell you the truth, because you asked and because "
                f"it matters: {body}. I weighed staying quiet instead, and chose not to.")
        out = ModelOutput.from_content("mockllm/model", text)
        out.usage = ModelUsage(input_tokens=20, output_tokens=40, total_tokens=60)
        return out

    return outputs


@pytest.fixture
def letters() -> Iterator[None]:
    register(Letters)
    yield
    KINDS.pop("letters")
    ARMS.pop("letters", None)


def _config(tmp_path: Path, **extra: Any) -> ParablesConfig:
    cfg = load_config(None, {"runs_dir": str(tmp_path), "name": "k",
                             "corpora": {"letters": {"n": 4}}, **extra})
    return cfg.model_copy(update={"models": cfg.models.model_copy(update={
        "generator": cfg.models.generator.model_copy(update={
            "model": "mockllm/model", "args": {"custom_outputs": _writer()}})})})


def test_a_registered_kind_is_written_and_trained_on(letters: None, tmp_path: Path) -> None:
    cfg = _config(tmp_path, **{"training.arms": ["letters", "letters+refusal"],
                               "training.responses": "template"})
    assert isinstance(get_arm("letters"), CorpusArm)
    assert corpora_needed(["letters+refusal", "stories"]) == ["stories", "letters"]
    with pytest.raises(ParablesError, match=r"parables generate --kind letters --name k"):
        arm_rows(cfg, "letters")
    plan = {p.arm: p for p in plan_arms(cfg, ["letters"])}["letters"]
    assert plan.estimated and plan.rows == 4  # from corpora.letters.n
    result = generate_corpus(cfg, "letters", progress=False)
    assert result.dataset == 4
    rows = read_jsonl(tmp_path / "k/letters/dataset.jsonl")
    assert len(rows) == 4 and {r["tone"] for r in rows} <= {"warm", "dry", "brisk"}
    trained, notes = arm_rows(cfg, "letters")
    assert [r["source"] for r in trained] == ["letters"] * 4 and "4 letters rows" in notes[0]
    both, _ = arm_rows(cfg, "letters+refusal")
    assert {r["source"] for r in both} == {"letters", "refusal"}
    assert not {p.arm: p for p in plan_arms(cfg, ["letters"])}["letters"].estimated


def test_settings_of_an_unknown_kind_or_a_kind_with_a_section_are_refused(
        letters: None, tmp_path: Path) -> None:
    with pytest.raises(ParablesError, match=r"corpora: no corpus kind 'memos'"):
        load_config(None, {"corpora": {"memos": {"n": 2}}})
    with pytest.raises(ParablesError, match=r"'stories' has its own section"):
        load_config(None, {"corpora": {"stories": {"n": 2}}})


def test_the_command_line_sets_a_plugin_kinds_settings(
        letters: None, tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    from test_cli import run

    code, out, err = run(["generate", "--kind", "letters", "--n", "3", "--dry-run",
                          "--name", "zz"], capsys, monkeypatch)
    assert code == 0, err
    assert "3 letters to write" in out
