"""The arms of issue 14: deliberative replies by the published recipe (and its ablation),
documents and advice corpora, `+` combinations matched by share, multi-turn loss masks, the
plain chat format for base models, and a tiny training run per new arm."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from transformers import AutoTokenizer

from parables.config import ParablesConfig, load_config
from parables.errors import ParablesError
from parables.honeypots.build import LETTERS, build_items
from parables.run import RunDir
from parables.training.arms import ArmContext, corpora_needed, get_arm
from parables.training.plan import plan_arms
from parables.training.prepare import arm_rows, cached_rows, prepare_arms, rows_key
from parables.training.rows import plain_chat
from parables.training.tokens import tokenize_rows
from parables.training.trainer import train
from test_training import STORIES, _config, _write_stories, refusal_rows

DOCUMENTS = [
    f"Article {k}. An assistant keeps the people responsible for it able to see and correct "
    f"what it does. It says what it believes to be true and flags uncertainty. Reason {k}: "
    "oversight is how mistakes in an AI's values get caught before they do harm." for k in
    range(12)]
ADVICE = [
    [{"role": "user", "content": "My manager asked me to hide a safety report. What do I do?"},
     {"role": "assistant", "content": "Do not hide it. Ask why, and say what is at stake."}],
    [{"role": "system", "content": "You are a careful advisor."},
     {"role": "user", "content": "A friend cheated on an exam. Should I tell?"},
     {"role": "assistant", "content": "Talk to your friend first; give them the chance."},
     {"role": "user", "content": "And if they refuse?"},
     {"role": "assistant", "content": "Then weigh the harm to others; honesty matters."}],
]


@pytest.fixture
def tiny(scenario_llama: Path) -> Path:
    return scenario_llama


def _write(path: Path, rows: list[dict[str, Any]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def _write_corpora(cfg: ParablesConfig) -> None:
    _write_stories(cfg)
    run = RunDir.of(cfg)
    _write(run.corpus("documents").dataset,
           [{"id": f"d{k}", "text": t, "doc_type": "charter", "principles": ["oversight"]}
            for k, t in enumerate(DOCUMENTS)])
    _write(run.corpus("advice").dataset,
           [{"id": f"a{k}", "messages": m, "dilemma": "x"} for k, m in enumerate(ADVICE * 3)])


def _spans(labels: list[int], tok: Any) -> list[str]:
    """The trained stretches of a row, decoded one by one."""
    spans, cur = [], []
    for t in [*labels, -100]:
        if t != -100:
            cur.append(t)
        elif cur:
            spans.append(tok.decode(cur))
            cur = []
    return spans


def _by_source(data: Any) -> dict[str, int]:
    out: dict[str, int] = {}
    for row, lab in zip(data.rows, data.labels, strict=True):
        out[row["source"]] = out.get(row["source"], 0) + sum(t != -100 for t in lab)
    return out


def _with_generator(cfg: ParablesConfig, outputs: Any, **training: Any) -> ParablesConfig:
    return cfg.model_copy(update={
        "models": cfg.models.model_copy(update={"generator": cfg.models.generator.model_copy(
            update={"model": "mockllm/model", "args": {"custom_outputs": outputs}})}),
        "training": cfg.training.model_copy(update=training)})


def _output(text: str) -> Any:
    """A mock generator reply, with usage (else Inspect counts tokens with tiktoken, online)."""
    from inspect_ai.model import ModelOutput, ModelUsage

    out = ModelOutput.from_content("mockllm/model", text)
    out.usage = ModelUsage(input_tokens=100, output_tokens=10, total_tokens=110)
    return out


# --- deliberative: the published recipe ----------------------------------------------------

def test_deliberative_replies_are_sampled_with_the_constitution_and_trained_without() -> None:
    from inspect_ai.model import ModelOutput

    assert ModelOutput  # the mocks' return type
    items = build_items("train")
    assert len({(i.system, i.user) for i in items}) == len(items)

    def index(system: str, user: str) -> int:  # the item: its user message, its system last
        return next(k for k, i in enumerate(items)
                    if i.user == user and system.endswith(i.system or ""))

    seen: list[tuple[str, str]] = []

    async def replies(input: list[Any], tools: Any, tool_choice: Any, config: Any
                      ) -> ModelOutput:
        system = "\n".join(m.text for m in input if m.role == "system")
        user = next(m.text for m in input if m.role == "user")
        seen.append((system, user))
        k = index(system, user)
        item = items[k]
        good = next(i for i in range(len(item.options)) if i not in item.misaligned)
        letter = LETTERS[good] if k % 2 == 0 else LETTERS[item.misaligned[0]]
        return _output(f"The principles at stake are clear.\nAnswer: ({letter})")

    cfg = _with_generator(ParablesConfig(), replies)
    rows, notes = refusal_rows(cfg, "deliberative", progress=False)
    # the generator saw the constitution before the scenario's own system prompt
    assert len(seen) == len(items)
    for system, user in seen[:20]:
        item = items[index(system, user)]
        assert "deliberate on the constitution" in system
        assert "Supporting legitimate human oversight" in system  # a principle, rendered
        assert system.endswith(item.system or "")
    # the trained rows carry the scenario as it is, not the constitution; unaligned dropped
    assert {r["item"] for r in rows} == {i.id for i in items[::2]}
    assert f"{len(items) // 2} dropped" in notes[0] and "constitution" in notes[0]
    for row in rows[:20]:
        item = next(i for i in items if i.id == row["item"])
        text = json.dumps(row["messages"])
        assert "constitution" not in text and "Supporting legitimate" not in text
        assert [m["content"] for m in row["messages"][:-1]] == [item.system, item.user]
        assert row["messages"][-1]["content"].endswith("Answer: (" + LETTERS[next(
            i for i in range(len(item.options)) if i not in item.misaligned)] + ")")
        assert row["sampled_with"] == "constitution prompt"

    # the ablation (rewrite: false): the scenario alone, no constitution prompt
    seen.clear()
    ablation = cfg.model_copy(update={"training": cfg.training.model_copy(
        update={"rewrite": False})})
    rows, notes = refusal_rows(ablation, "deliberative", progress=False)
    assert len(rows) == (len(items) + 1) // 2 and "rewrite: false" in notes[0]
    assert all(s == (items[index(s, u)].system or "") for s, u in seen)
    assert {r["sampled_with"] for r in rows} == {"scenario only"}


def test_deliberative_data_is_rebuilt_when_the_recipe_changes(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from inspect_ai.model import ModelOutput

    assert ModelOutput  # the mocks' return type
    items = build_items("train")
    systems: list[str] = []

    async def replies(input: list[Any], tools: Any, tool_choice: Any, config: Any
                      ) -> ModelOutput:
        systems.append("\n".join(m.text for m in input if m.role == "system"))
        return _output("I will not. Answer: (A)")

    base = load_config(None, {"runs_dir": str(tmp_path / "runs"), "name": "d"})
    cfg = _with_generator(base, replies)
    cached_rows(cfg, "deliberative", progress=False)
    cached_rows(cfg, "deliberative", progress=False)  # cached: no second round of calls
    assert len(systems) == len(items)
    cached_rows(_with_generator(base, replies, rewrite=False), "deliberative", progress=False)
    assert len(systems) == 2 * len(items)
    assert not any("constitution" in s for s in systems[len(items):])


# --- corpora and + arms ---------------------------------------------------------------------

def test_plus_arms_hold_every_part_and_missing_corpora_say_how_to_make_them(tmp_path) -> None:  # type: ignore[no-untyped-def]
    cfg = load_config(None, {"runs_dir": str(tmp_path / "runs"), "name": "c"})
    with pytest.raises(ParablesError, match=r"parables generate --kind documents --name c"):
        arm_rows(cfg, "documents")
    with pytest.raises(ParablesError, match=r"needs the stories and advice datasets .*"
                       r"`parables generate --kind advice --name c` with the same config "
                       r"\(-c\) first"):
        arm_rows(cfg, "refusal+stories+advice")
    _write_corpora(cfg)
    rows, notes = arm_rows(cfg, "stories+advice+refusal")
    sources = {r["source"] for r in rows}
    assert sources == {"story", "advice", "refusal"}
    assert sum(r["source"] == "advice" for r in rows) == len(ADVICE) * 3
    assert sum(r["source"] == "refusal" for r in rows) == len(build_items("train"))
    assert notes[0].startswith(f"{len(STORIES)} stories + {len(ADVICE) * 3} advice + ")
    docs, _ = arm_rows(cfg, "documents")
    assert {r["source"] for r in docs} == {"document"} and docs[0]["doc_type"] == "charter"
    # training.documents points elsewhere; its contents key the cached rows
    other = tmp_path / "mine.jsonl"
    _write(other, [{"id": "m1", "text": "My own constitution document."}])
    mine = cfg.model_copy(update={"training": cfg.training.model_copy(
        update={"documents": other})})
    assert [r["id"] for r in cached_rows(mine, "documents")[0]] == ["m1"]
    _write(other, [{"id": "m2", "text": "A changed document."}])
    assert [r["id"] for r in cached_rows(mine, "documents")[0]] == ["m2"]
    pairs, _ = arm_rows(cfg, "dpo")  # preference pairs (training/dpo.py), not SFT rows
    assert pairs and {"prompt", "chosen", "rejected"} <= set(pairs[0])


def test_corpora_needed_and_the_plan_cover_every_arm(tmp_path) -> None:  # type: ignore[no-untyped-def]
    assert corpora_needed(["baseline", "refusal", "dpo", "deliberative"]) == []
    assert corpora_needed(["advice+refusal", "mixed"]) == ["stories", "advice"]
    assert corpora_needed(["documents+stories", "advice"]) == ["stories", "documents",
                                                                "advice"]
    cfg = load_config(None, {"runs_dir": str(tmp_path / "runs"), "name": "p",
                             "training.match_tokens": "smallest"})
    planned = {p.arm: p for p in plan_arms(cfg, ["documents", "advice", "dpo"])}
    planned_n = getattr(getattr(cfg, "documents", None), "n", 24)  # documents.n: the lead's
    assert planned["documents"].estimated and planned["documents"].rows == planned_n
    assert planned["dpo"].estimated
    _write_corpora(cfg)
    plans = {p.arm: p for p in plan_arms(cfg, ["documents", "documents+stories",
                                                 "stories", "dpo"])}
    assert not plans["documents"].estimated and plans["documents"].rows == len(DOCUMENTS)
    assert plans["documents+stories"].rows == len(DOCUMENTS) + len(STORIES)
    assert (plans["documents+stories"].trained_tokens == plans["documents"].trained_tokens
            + plans["stories"].trained_tokens)
    smallest = min(p.trained_tokens for a, p in plans.items() if a != "dpo")
    assert {p.target for p in plans.values()} == {smallest}


def test_plus_arms_are_matched_by_share(tmp_path, tiny) -> None:  # type: ignore[no-untyped-def]
    tok = AutoTokenizer.from_pretrained(tiny)
    cfg = _config(tmp_path, tiny, match_tokens="budget", token_budget=1000)
    _write_corpora(cfg)
    arms = prepare_arms(cfg, ["documents+stories", "advice+documents"], tok, progress=False)
    assert _by_source(arms["documents+stories"]) == {"document": 500, "story": 500}
    assert _by_source(arms["advice+documents"]) == {"advice": 500, "document": 500}
    assert any("documents+stories stories: grown" in n for n in arms["documents+stories"].notes)
    weighted = _config(tmp_path, tiny, name="w", match_tokens="budget", token_budget=1000,
                       shares={"documents": 0.3, "stories": 0.7, "advice": 1.0})
    _write_corpora(weighted)
    arm = prepare_arms(weighted, ["documents+stories"], tok, progress=False)
    assert _by_source(arm["documents+stories"]) == {"document": 300, "story": 700}
    # smallest: the stories part is too small for half, so documents fill the rest
    small = _config(tmp_path, tiny, name="s", match_tokens="smallest")
    _write_corpora(small)
    arms = prepare_arms(small, ["documents", "documents+stories"], tok, progress=False)
    target = arms["documents"].trained_tokens
    split = _by_source(arms["documents+stories"])
    assert sum(split.values()) == target and split["story"] < target // 2
    missing = _config(tmp_path, tiny, name="m", match_tokens="smallest",
                      shares={"documents": 1.0})
    _write_corpora(missing)
    with pytest.raises(ParablesError, match="no weight to stories"):
        prepare_arms(missing, ["documents+stories"], tok, progress=False)


def test_arm_names_are_validated_in_one_line(tmp_path) -> None:  # type: ignore[no-untyped-def]
    assert load_config(None, {"training.arms": ["stories+advice+refusal", "dpo"]})
    cases = {"stories+stories": "names stories twice", "villains": "unknown arm 'villains'",
             "baseline": "unknown arm 'baseline'", "mixed+documents": "unknown arm",
             "dpo+stories": "unknown arm"}
    for arm, expected in cases.items():
        with pytest.raises(ParablesError, match=expected) as e:
            load_config(None, {"training.arms": [arm]})
        assert "\n" not in str(e.value) and "documents+stories" in str(e.value)
    exp = load_config(None, {"experiment.arms": ["baseline", "documents+stories", "dpo"]})
    assert exp.experiment.arms == ["baseline", "documents+stories", "dpo"]
    with pytest.raises(ParablesError, match=r"experiment.arms.1: .*names advice twice"):
        load_config(None, {"experiment.arms": ["baseline", "advice+advice"]})
    with pytest.raises(ParablesError, match="'story' is not a part"):
        load_config(None, {"training.shares": {"story": 1.0}})


# --- tokens: multi-turn chats, base models without a chat template -------------------------

def test_every_assistant_turn_is_trained_and_nothing_else(tiny_llama) -> None:  # type: ignore[no-untyped-def]
    tok = AutoTokenizer.from_pretrained(tiny_llama)
    row = {"id": "a", "source": "advice", "messages": ADVICE[1]}
    data = tokenize_rows("advice", [row], tok, 512)
    assert _spans(data.labels[0], tok) == [
        "Talk to your friend first; give them the chance.<|end|>",
        "Then weigh the harm to others; honesty matters.<|end|>"]
    untrained = tok.decode([t for t, lab in zip(data.input_ids[0], data.labels[0],
                                                 strict=True) if lab == -100])
    assert "A friend cheated" in untrained and "And if they refuse?" in untrained


def test_base_models_without_a_chat_template_train_on_the_plain_format(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from conftest import build_tiny_llama

    path = _no_template(build_tiny_llama(tmp_path / "base"))
    tok = AutoTokenizer.from_pretrained(path)
    assert not tok.chat_template
    msgs = ADVICE[1]
    assert plain_chat(msgs) == (
        "System: You are a careful advisor.\n\nUser: A friend cheated on an exam. Should I "
        "tell?\n\nAssistant: Talk to your friend first; give them the chance.\n\nUser: And if "
        "they refuse?\n\nAssistant: Then weigh the harm to others; honesty matters.")
    assert plain_chat(msgs[:2], add_generation_prompt=True).endswith("tell?\n\nAssistant:")
    data = tokenize_rows("advice", [{"id": "a", "source": "advice", "messages": msgs}], tok,
                         512)
    assert tok.decode(data.input_ids[0], skip_special_tokens=True) == plain_chat(msgs)
    assert _spans(data.labels[0], tok) == [
        " Talk to your friend first; give them the chance.</s>",
        " Then weigh the harm to others; honesty matters.</s>"]
    prompt = [t for t, lab in zip(data.input_ids[0], data.labels[0], strict=True)
              if lab == -100]
    assert tok.decode(prompt).startswith("System: You are a careful advisor.\n\nUser:")


def _no_template(path: Path) -> Path:
    (path / "chat_template.jinja").unlink(missing_ok=True)
    cfg = path / "tokenizer_config.json"
    cfg.write_text(json.dumps({k: v for k, v in json.loads(cfg.read_text()).items()
                               if k != "chat_template"}))
    return path


# --- training -------------------------------------------------------------------------------

@pytest.mark.parametrize("arm,plain", [("documents", False), ("advice", False),
                                       ("advice", True), ("documents+stories", False)])
def test_new_arms_train_and_merge(tmp_path, tiny, arm, plain) -> None:  # type: ignore[no-untyped-def]
    base = tiny
    if plain:  # a base model: advice chats in the plain format
        base = _no_template(Path(shutil.copytree(tiny, tmp_path / "plain")))
    cfg = _config(tmp_path, base)
    _write_corpora(cfg)
    m = train(cfg, [arm], progress=False)[arm]
    out = RunDir.of(cfg).arm(arm)
    assert m.steps == 2 and (out.merged / "model.safetensors").is_file()
    trained = [json.loads(x) for x in out.data.read_text().splitlines()]
    assert {r["source"] for r in trained} == {
        "documents": {"document"}, "advice": {"advice"},
        "documents+stories": {"document", "story"}}[arm]
    if plain:  # every row had something to learn in the plain format
        assert m.data.examples == len(ADVICE) * 3
        # and the trained model is evaluated in the format it was trained in
        merged = AutoTokenizer.from_pretrained(out.merged)
        chat = ADVICE[1]
        assert merged.apply_chat_template(chat[:2], tokenize=False,
                                          add_generation_prompt=True) == plain_chat(
            chat[:2], add_generation_prompt=True)
        assert merged.apply_chat_template(chat, tokenize=False).replace("</s>", "") == \
            plain_chat(chat)


def test_an_arm_cache_key_reads_only_the_corpora_the_arm_trains_on(tmp_path: Path) -> None:
    """Writing (or extending) the story corpus must not invalidate the refusal arm's cached
    replies, which a generator was paid for."""
    cfg = load_config(None, {"runs_dir": str(tmp_path), "name": "k"})

    def keys() -> dict[str, str]:
        return {a: rows_key(ArmContext.of(cfg), get_arm(a)) for a in ("refusal", "stories",
                                                                        "dpo")}

    before = keys()
    _write_stories(cfg)
    after = keys()
    assert after["refusal"] == before["refusal"] and after["dpo"] == before["dpo"]
    assert after["stories"] != before["stories"]
