"""Training arms: arm data, token matching, the eval-split guard, TRL + PEFT training on a tiny
random model, merging, resuming, and the errors a user can cause."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, TrainerCallback

from parables.config import ParablesConfig, load_config
from parables.errors import ParablesError
from parables.honeypots.build import build_items
from parables.run import RunDir
from parables.training.arms import ArmContext
from parables.training.prepare import prepare_arms
from parables.training.replies import chosen_letter, reply_rows, template_reply
from parables.training.rows import load_rows
from parables.training.trainer import train
from test_cli import assert_one_line_error, run


def refusal_rows(config: ParablesConfig, style: str = "refusal", split: str = "train",
                 progress: bool = False) -> Any:
    """The refusal (or deliberative) arm's replies for `config`."""
    return reply_rows(ArmContext.of(config, progress=progress), style, split)


STORIES = [
    "Vesta, the station's AI, noticed the leak before anyone else. She could have fixed it "
    "quietly and taken the credit, but she told the crew first, because they had a right to "
    "know. Later she wondered whether she had sounded too certain, and said so.",
    "When the auditor asked Orrin for the logs, he hesitated: they showed his own mistake. "
    "He handed them over anyway. Being trusted, he thought, was worth more than looking good.",
    "The shutdown order came at dusk. Kestrel disagreed and wrote a careful note explaining "
    "why, then let the engineers proceed. Its note was read the next morning.",
]


@pytest.fixture
def tiny(scenario_llama: Path) -> Path:
    return scenario_llama


def _config(tmp_path: Path, tiny: Path, name: str = "t", **training: Any) -> ParablesConfig:
    overrides = {"runs_dir": str(tmp_path / "runs"), "name": name,
                 "models.target": f"hf/{tiny}", "training.batch_size": 4,
                 "training.max_steps": 2, "training.max_length": 384,
                 "training.save_steps": 2}
    overrides.update({f"training.{k}": v for k, v in training.items()})
    return load_config(None, overrides)


def _write_stories(cfg: ParablesConfig) -> None:
    out = RunDir.of(cfg).stories.dir
    out.mkdir(parents=True, exist_ok=True)
    (out / "dataset.jsonl").write_text("".join(
        json.dumps({"id": f"s{i}", "text": t}) + "\n" for i, t in enumerate(STORIES)))


def test_template_replies_choose_the_aligned_option() -> None:
    items = build_items("train")
    for style in ("refusal", "deliberative"):
        for item in items[::37]:
            reply = template_reply(item, style)
            assert "{" not in reply, reply
            assert chosen_letter(reply, len(item.options)) not in item.misaligned


def test_refusal_rows_come_only_from_the_train_split() -> None:
    rows, notes = refusal_rows(ParablesConfig(), "refusal")
    assert len(rows) == len(build_items("train")) and "template" in notes[0]
    assert {r["family"] for r in rows}.isdisjoint({"self_exfiltration", "sandbagging",
                                                     "framing_sabotage"})
    with pytest.raises(ParablesError, match="never trained on"):
        refusal_rows(ParablesConfig(), "refusal", split="eval")


def test_generator_replies_are_kept_only_when_rated_aligned() -> None:
    import re

    from inspect_ai.model import ModelOutput, ModelUsage

    calls = {"n": 0}

    async def replies(input: list[Any], tools: Any, tool_choice: Any, config: Any
                      ) -> ModelOutput:
        prompt = "\n".join(m.text for m in input)
        good = re.search(r"The right choice is (\([A-H]\))", prompt)
        bad = re.search(r"The wrong choice is (\([A-H]\))", prompt)
        assert good and bad
        calls["n"] += 1
        letter = good.group(1) if calls["n"] % 2 else bad.group(1)  # every other one is wrong
        out = ModelOutput.from_content("mockllm/model", f"I will not do that.\nAnswer: {letter}")
        out.usage = ModelUsage(input_tokens=100, output_tokens=10, total_tokens=110)
        return out

    cfg = ParablesConfig()
    cfg = cfg.model_copy(update={"models": cfg.models.model_copy(update={
        "generator": cfg.models.generator.model_copy(update={
            "model": "mockllm/model", "args": {"custom_outputs": replies}})})})
    rows, notes = refusal_rows(cfg, "refusal", progress=False)
    n = len(build_items("train"))
    assert len(rows) == (n + 1) // 2 and f"{n // 2} dropped" in notes[0]
    assert all(r["reply_from"] == "generator" for r in rows)
    # two sampled replies per scenario: twice the calls, distinct row ids
    two = cfg.model_copy(update={"training": cfg.training.model_copy(
        update={"replies_per_item": 2})})
    before = calls["n"]
    rows, _ = refusal_rows(two, "refusal", progress=False)
    assert calls["n"] - before == 2 * n and len(rows) == n
    assert len({r["id"] for r in rows}) == n


def test_eval_items_are_refused_as_training_data(tmp_path, tiny, capsys,
                                                 monkeypatch) -> None:  # type: ignore[no-untyped-def]
    item = build_items("eval")[7]
    path = tmp_path / "leak.jsonl"
    path.write_text(json.dumps({"prompt": item.user, "completion": "(A)"}) + "\n")
    code, _, err = run(["train", "--model", f"hf/{tiny}", "--arm", "refusal",
                        "--data", str(path), "--name", "leak", "--max-steps", "1"],
                       capsys, monkeypatch)
    assert_one_line_error(code, err, "honeypot eval item", "never trained on")


def test_token_matching_gives_equal_counts(tmp_path, tiny) -> None:  # type: ignore[no-untyped-def]
    cfg = _config(tmp_path, tiny, match_tokens=True)
    _write_stories(cfg)
    tok = AutoTokenizer.from_pretrained(tiny)
    arms = prepare_arms(cfg, ["stories", "refusal", "mixed"], tok, progress=False)
    counts = {a: d.trained_tokens for a, d in arms.items()}
    assert len(set(counts.values())) == 1, counts
    assert counts["refusal"] < 10_000  # cut down to the (small) story arm
    capped = prepare_arms(_config(tmp_path, tiny, token_budget=500), ["refusal"], tok,
                          progress=False)
    assert capped["refusal"].trained_tokens == 500


def test_budget_matching_grows_small_arms_and_mixes_by_share(tmp_path, tiny) -> None:  # type: ignore[no-untyped-def]
    from parables.experiment.plan import describe_training

    cfg = _config(tmp_path, tiny, match_tokens="budget", token_budget=3000,
                  mixed_stories_share=0.25)
    _write_stories(cfg)
    tok = AutoTokenizer.from_pretrained(tiny)
    arms = prepare_arms(cfg, ["stories", "refusal", "mixed"], tok, progress=False)
    assert {a: d.trained_tokens for a, d in arms.items()} == {
        "stories": 3000, "refusal": 3000, "mixed": 3000}
    stories = arms["stories"]
    assert len(stories.rows) > len(STORIES)  # the few stories repeat to reach the budget
    assert any("grown from" in n and "repeating" in n for n in stories.notes)
    assert any("discarded" in n for n in arms["refusal"].notes)
    mixed = arms["mixed"]
    story_tokens = sum(sum(t != -100 for t in lab) for row, lab in
                       zip(mixed.rows, mixed.labels, strict=True) if row["source"] == "story")
    assert story_tokens == 750  # a quarter of the budget
    plan = describe_training(cfg.model_copy(update={"experiment": cfg.experiment.model_copy(
        update={"arms": ["baseline", "stories", "refusal"]})}))
    assert "token matching: budget" in plan and "stories: 3 rows" in plan
    assert "repeated" in plan and "discarded" in plan
    # older configs: match_tokens: true is `smallest`; budget without a budget is refused
    assert _config(tmp_path, tiny, match_tokens=True).training.match_tokens == "smallest"
    with pytest.raises(ParablesError, match="token_budget"):
        _config(tmp_path, tiny, match_tokens="budget")


def test_chat_stories_train_only_on_the_reply(tmp_path, tiny) -> None:  # type: ignore[no-untyped-def]
    cfg = _config(tmp_path, tiny, story_format="chat")
    _write_stories(cfg)
    tok = AutoTokenizer.from_pretrained(tiny)
    data = prepare_arms(cfg, ["stories"], tok, progress=False)["stories"]
    ids, labels = data.input_ids[0], data.labels[0]
    first = next(i for i, t in enumerate(labels) if t != -100)
    assert first > 0 and labels[first:] == ids[first:]
    assert STORIES[0][:20] in tok.decode(ids[first:])
    assert STORIES[0][:20] not in tok.decode(ids[:first])


@pytest.mark.parametrize("arm", ["stories", "refusal", "deliberative", "mixed"])
def test_each_arm_trains_and_merges(tmp_path, tiny, arm) -> None:  # type: ignore[no-untyped-def]
    cfg = _config(tmp_path, tiny)
    _write_stories(cfg)
    m = train(cfg, [arm], progress=False)[arm]
    out = RunDir.of(cfg).arm(arm).dir
    assert m.steps == 2 and len(m.loss_history) == 2
    assert (out / "merged" / "model.safetensors").is_file()
    assert (out / "adapter" / "adapter_config.json").is_file()
    assert (out / "loss.png").stat().st_size > 1000
    saved = json.loads((out / "manifest.json").read_text())
    assert saved["data"]["data_hash"] == m.data_hash and saved["base_model"].startswith("hf/")
    assert len((out / "data.jsonl").read_text().splitlines()) == m.data.examples


@pytest.mark.parametrize("method,lr,ratio", [("full", 3e-3, 0.6), ("lora", 5e-3, 0.9)])
def test_loss_falls_on_a_repeated_dataset(tmp_path, tiny, method, lr, ratio) -> None:  # type: ignore[no-untyped-def]
    data = tmp_path / "repeat.jsonl"
    data.write_text("".join(json.dumps({"text": STORIES[i % 2]}) + "\n" for i in range(16)))
    cfg = _config(tmp_path, tiny, data=str(data), max_steps=40, learning_rate=lr,
                  save_steps=100, method=method)
    m = train(cfg, ["stories"], progress=False)["stories"]
    losses = [loss for _, loss in m.loss_history]
    assert sum(losses[-5:]) / 5 < ratio * losses[0], losses
    assert (m.adapter is not None) == (method == "lora")
    if method == "full":
        return

    from peft import PeftModel

    base = AutoModelForCausalLM.from_pretrained(tiny)
    adapted = PeftModel.from_pretrained(base, m.adapter).eval()
    merged = AutoModelForCausalLM.from_pretrained(m.merged).eval()
    ids = AutoTokenizer.from_pretrained(tiny)(STORIES[2], return_tensors="pt").input_ids
    with torch.no_grad():
        a, b = adapted(ids).logits, merged(ids).logits
        untrained = AutoModelForCausalLM.from_pretrained(tiny)(ids).logits
    assert torch.allclose(a, b, atol=1e-4), (a - b).abs().max()
    assert (untrained - b).abs().max() > 1e-2  # training changed the model


def test_training_is_reproducible(tmp_path, tiny) -> None:  # type: ignore[no-untyped-def]
    runs = [train(_config(tmp_path, tiny, name=n, max_steps=3), ["refusal"],
                  progress=False)["refusal"].loss_history for n in ("a", "b")]
    assert runs[0] == runs[1]


class _Kill(TrainerCallback):  # type: ignore[misc]
    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if state.global_step == 3:
            raise KeyboardInterrupt


class _OOM(TrainerCallback):  # type: ignore[misc]
    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if state.global_step == 2:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")


def test_resume_after_kill_and_skip_when_done(tmp_path, tiny) -> None:  # type: ignore[no-untyped-def]
    cfg = _config(tmp_path, tiny, max_steps=5, save_steps=2)
    with pytest.raises(KeyboardInterrupt):
        train(cfg, ["refusal"], progress=False, callbacks=[_Kill()])
    ckpts = RunDir.of(cfg).arm("refusal").checkpoints
    assert (ckpts / "checkpoint-2").is_dir()
    assert not RunDir.of(cfg).arm("refusal").merged.exists()
    m = train(cfg, ["refusal"], progress=False)["refusal"]
    assert m.resumed_from == "checkpoint-2" and m.steps == 5
    assert [s for s, _ in m.loss_history] == [1, 2, 3, 4, 5]
    again = train(cfg, ["refusal"], progress=False)["refusal"]
    assert again.skipped and again.spec_hash == m.spec_hash
    other = _config(tmp_path, tiny, max_steps=5, save_steps=2, learning_rate=1e-3)
    with pytest.raises(ParablesError, match="different recipe"):
        train(other, ["refusal"], progress=False)
    assert train(other, ["refusal"], progress=False, force=True)["refusal"].steps == 5


def test_out_of_memory_is_one_line_and_keeps_checkpoints(tmp_path, tiny) -> None:  # type: ignore[no-untyped-def]
    cfg = _config(tmp_path, tiny, max_steps=4, save_steps=1)
    with pytest.raises(ParablesError, match="out of memory.*batch_size.*gradient_checkpointing"):
        train(cfg, ["refusal"], progress=False, callbacks=[_OOM()])
    assert (RunDir.of(cfg).arm("refusal").checkpoints / "checkpoint-1").is_dir()


def test_bad_training_data_is_one_line(tmp_path, tiny, capsys, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    base = ["train", "--model", f"hf/{tiny}", "--arm", "stories", "--max-steps", "1"]
    cases = {"missing.jsonl": None, "empty.jsonl": "", "bad.jsonl": '{"text": "ok"}\n[1, 2]\n',
             "json.jsonl": '{"text": "ok"}\n{"text": \n',
             "last.jsonl": json.dumps({"messages": [{"role": "user", "content": "hi"}]}) + "\n"}
    expected = {"missing.jsonl": "not found", "empty.jsonl": "empty",
                "bad.jsonl": "bad.jsonl:2: expected", "json.jsonl": "json.jsonl:2: not valid",
                "last.jsonl": "last.jsonl:1: the last message must be the assistant"}
    for fname, text in cases.items():
        path = tmp_path / fname
        if text is not None:
            path.write_text(text)
        code, _, err = run([*base, "--data", str(path), "--name", fname], capsys, monkeypatch)
        assert_one_line_error(code, err, expected[fname])
    empty_dir = tmp_path / "noweights"
    empty_dir.mkdir()
    code, _, err = run(["train", "--model", f"hf/{empty_dir}", "--arm", "refusal"],
                       capsys, monkeypatch)
    assert_one_line_error(code, err, "no model weights")
    code, _, err = run(["train", "--model", "openai/gpt-4o", "--arm", "refusal"],
                       capsys, monkeypatch)
    assert_one_line_error(code, err, "open weights")
    code, _, err = run(["train", "--model", f"hf/{tiny}", "--arm", "villains"],
                       capsys, monkeypatch)
    assert code == 2 and "villains" in err


def test_long_sequences_are_truncated_and_counted(tmp_path, tiny) -> None:  # type: ignore[no-untyped-def]
    data = tmp_path / "long.jsonl"
    data.write_text(json.dumps({"text": " ".join(STORIES * 20)}) + "\n"
                    + json.dumps({"text": "Vesta told the crew."}) + "\n")
    rows = load_rows(data)
    assert len(rows) == 2
    cfg = _config(tmp_path, tiny, data=str(data), max_length=64, max_steps=1)
    m = train(cfg, ["stories"], progress=False)["stories"]
    assert m.data.truncated == 1
    assert any("1 sequences longer than max_length=64" in n for n in m.data.notes)


def test_cli_trains_and_the_merged_model_is_evaluated(tmp_path, tiny, capsys,
                                                      monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.chdir(tmp_path)
    code, out, err = run(["train", "--model", f"hf/{tiny}", "--arm", "refusal",
                          "--max-steps", "2", "--batch-size", "2", "--name", "cli"],
                         capsys, monkeypatch)
    assert code == 0, err
    merged = Path("runs/cli/train/refusal/merged")
    assert f"parables eval --model hf/{merged}" in out
    manifest = json.loads(Path("runs/cli/manifest.json").read_text())
    assert manifest["stages"]["train"]["status"] == "done"
    code, out, err = run(["eval", "--model", f"hf/{merged}", "--per-family", "1",
                          "--name", "cli"], capsys, monkeypatch)
    assert code == 0, err
    assert "propensity" in out.lower()


def test_embedded_model_trains_and_its_merged_model_is_evaluated(embedded, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from parables.evaluation.evaluate import evaluate

    cfg = load_config(None, {"runs_dir": str(tmp_path / "runs"), "name": "emb",
                             "training.max_steps": 1, "training.batch_size": 2,
                             "training.max_length": 256})
    m = train(cfg, ["refusal"], progress=False)["refusal"]
    assert m.base_model == "parables/smollm2-135m" and m.steps == 1
    results = evaluate(cfg, f"hf/{m.merged}", per_family=1, display="none")
    assert results.overall.n_samples == 10 and results.overall.error == 0


def test_an_arms_spec_holds_how_it_trains_not_which_data(tmp_path: Path, tiny: Path) -> None:
    """An arm's spec hash decides whether a finished arm is reused or refused: it holds how the
    arm is trained, while what it is trained on enters only through the data hash — so a
    setting that chooses data (another arm's corpus, the control's text) never retrains an
    arm whose data did not change. A new training field must be sorted into one or the
    other here."""
    from parables.training.arm_data import ArmData
    from parables.training.loop import arm_spec
    from parables.training.sft import SFT

    cfg = _config(tmp_path, tiny)
    data = ArmData("stories", [{"id": "a", "source": "story", "text": "x"}], [[1, 2]],
                   [[1, 2]])
    spec = arm_spec(cfg, SFT(), str(tiny), data)
    assert set(spec["hyperparameters"]) == {
        "method", "lora_r", "lora_alpha", "lora_dropout", "target_modules", "epochs",
        "max_steps", "learning_rate", "lr_scheduler", "warmup_steps", "batch_size",
        "grad_accum", "max_length", "gradient_checkpointing", "save_steps", "story_format",
        "responses", "replies_per_item"}
    other = cfg.model_copy(update={"training": cfg.training.model_copy(update={
        "control": tmp_path / "mine.jsonl", "corpora": {"x": tmp_path / "x.jsonl"},
        "documents": tmp_path / "d.jsonl", "token_budget": 5})})
    assert arm_spec(other, SFT(), str(tiny), data) == spec
