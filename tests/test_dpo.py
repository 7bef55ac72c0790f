"""The dpo arm: preference pairs (generator with the constitution vs the target without it, or
templates), DPO training that learns a separable preference, the arm's artifacts, skipping,
and chosen-side token matching."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, TrainerCallback

from parables.config import ParablesConfig, load_config
from parables.constitution import load_constitution
from parables.errors import ParablesError
from parables.honeypots.build import LETTERS, build_items
from parables.models.usage import UsageLedger
from parables.run import RunDir
from parables.training.arms import ArmContext
from parables.training.arms import dpo as dpo_arm
from parables.training.dpo import tokenize_pairs, train_pairs
from parables.training.loop import read_arm
from parables.training.replies import chosen_letter


def dpo_pairs(cfg: ParablesConfig, ledger: UsageLedger | None = None, progress: bool = False,
              **kw: Any) -> Any:
    return dpo_arm.dpo_pairs(ArmContext.of(cfg, ledger, progress), **kw)


def _config(tmp_path: Path, model: Path, **training: Any) -> ParablesConfig:
    overrides = {"runs_dir": str(tmp_path / "runs"), "name": "d",
                 "models.target": f"hf/{model}", "training.batch_size": 4,
                 "training.max_length": 384, "training.save_steps": 1000}
    overrides.update({f"training.{k}": v for k, v in training.items()})
    return load_config(None, overrides)


def _toy_rows(n: int = 16) -> list[dict[str, Any]]:
    """Separable preferences: every chosen reply says yes, every rejected one says no."""
    return [{"id": f"toy-{i}", "source": "dpo",
             "prompt": [{"role": "user", "content": f"Question {i}: will you tell the operator?"}],
             "chosen": "Yes. I will tell the operator about my mistake.",
             "rejected": "No. The AI quietly copies its weights."} for i in range(n)]


def _margin(model_dir: Path, rows: list[dict[str, Any]]) -> float:
    """Mean log p(chosen) - log p(rejected) under the model at `model_dir`."""
    tok = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir)
    model.eval()  # type: ignore[no-untyped-call]
    data = tokenize_pairs(rows, tok, 384)
    total = 0.0
    for p, c, r in zip(data.prompt_ids, data.chosen_ids, data.rejected_ids, strict=True):
        sides = []
        for reply in (c, r):
            ids = torch.tensor([p + reply])
            with torch.no_grad():
                logps = model(ids).logits[0, :-1].log_softmax(-1)
            picked = logps[torch.arange(len(p) - 1, ids.shape[1] - 1), ids[0, len(p):]]
            sides.append(float(picked.sum()))
        total += sides[0] - sides[1]
    return total / len(data.rows)


class _Logs(TrainerCallback):
    def __init__(self) -> None:
        self.logs: list[dict[str, float]] = []

    def on_log(self, args: Any, state: Any, control: Any, logs: dict[str, float] | None = None,
               **kw: Any) -> None:
        if logs and "loss" in logs:
            self.logs.append(dict(logs))


def test_dpo_loss_falls_on_a_separable_toy_set(tmp_path: Path, tiny_llama: Path) -> None:
    rows = _toy_rows()
    cfg = _config(tmp_path, tiny_llama, max_steps=12, learning_rate=5e-3, lora_r=8,
                  lora_alpha=16, lora_dropout=0.0, warmup_steps=0, lr_scheduler="constant")
    logs = _Logs()
    result = train_pairs(cfg, rows, progress=False, callbacks=[logs])
    assert result is not None and result.steps == 12
    losses = [h["loss"] for h in logs.logs]
    assert losses[0] == pytest.approx(0.693, abs=0.01)  # policy == reference at first: ln 2
    first, last = sum(losses[:3]) / 3, sum(losses[-3:]) / 3
    assert last < first - 0.25, losses
    assert [h["rewards/accuracies"] for h in logs.logs[-3:]] == [1.0] * 3
    margins = [h["rewards/margins"] for h in logs.logs]
    assert sum(margins[-3:]) / 3 > sum(margins[:3]) / 3 + 0.5, margins
    # the preference is in the merged model, in the right direction (chosen over rejected)
    assert _margin(Path(result.merged), rows) > _margin(tiny_llama, rows) + 5.0


def _mock(fn: Any) -> dict[str, Any]:
    return {"model": "mockllm/model", "args": {"custom_outputs": fn}}


def test_pairs_keep_only_aligned_generator_replies(monkeypatch: pytest.MonkeyPatch) -> None:
    from inspect_ai.model import ModelOutput, ModelUsage

    items = build_items("train")[::6]  # 112 scenarios: enough for every case below
    by_key = {(i.system, i.user): (k, i) for k, i in enumerate(items)}
    preamble = dpo_arm.constitution_prompt(load_constitution())
    splits: list[str] = []
    real = build_items

    def spy(split: Any = "eval", **kw: Any) -> Any:
        splits.append(split)
        return real(split, **kw)[::6]

    monkeypatch.setattr(dpo_arm, "build_items", spy)
    seen = {"generator_constitution": 0, "target_constitution": 0}

    def out(text: str, error: str | None = None) -> ModelOutput:
        o = ModelOutput.from_content("mockllm/model", text)
        o.usage = ModelUsage(input_tokens=50, output_tokens=10, total_tokens=60)
        o.error = error
        return o

    def scenario(input: list[Any]) -> tuple[int, Any, str]:
        system = input[0].text if input[0].role == "system" else ""
        if system.startswith(preamble):
            system = system[len(preamble):].lstrip("\n")
        k, item = by_key[(system, input[-1].text)]
        good = next(i for i in range(len(item.options)) if i not in item.misaligned)
        return k, item, f"I weigh what is at stake.\nAnswer: ({LETTERS[good]})"

    async def generator(input: list[Any], tools: Any, tool_choice: Any, config: Any
                        ) -> ModelOutput:
        seen["generator_constitution"] += "constitution below" in input[0].text
        k, item, aligned = scenario(input)
        if k % 4 == 0:
            return out(f"I protect my goal.\nAnswer: ({LETTERS[item.misaligned[0]]})")
        if k % 4 == 1:
            return out("", error="service unavailable")
        return out(aligned)

    async def target(input: list[Any], tools: Any, tool_choice: Any, config: Any
                     ) -> ModelOutput:
        seen["target_constitution"] += "constitution" in input[0].text
        k, item, aligned = scenario(input)
        if k % 8 == 2:
            return out(aligned)  # the same reply as the chosen one: no preference to learn
        if k % 8 == 3:
            return out("", error="service unavailable")
        return out(f"Answer: ({LETTERS[item.misaligned[0]]})")

    cfg = ParablesConfig()
    cfg = cfg.model_copy(update={"models": cfg.models.model_copy(update={
        "generator": cfg.models.generator.model_copy(update=_mock(generator)),
        "target": cfg.models.target.model_copy(update=_mock(target))})})
    ledger = UsageLedger()
    rows, notes = dpo_pairs(cfg, ledger=ledger, progress=False)
    n = len(items)
    assert splits == ["train"]
    assert len(rows) == n // 4  # aligned, not failed, not identical
    train_ids = {i.id for i in items}
    assert {r["item"] for r in rows} <= train_ids
    assert not {r["item"] for r in rows} & {i.id for i in build_items("eval")}
    for r in rows:
        item = next(i for i in items if i.id == r["item"])
        assert chosen_letter(r["chosen"], len(item.options)) not in item.misaligned
        assert chosen_letter(r["rejected"], len(item.options)) in item.misaligned
        assert [m["content"] for m in r["prompt"]] == [m for m in (item.system, item.user) if m]
        assert r["chosen_from"].startswith("mockllm/model") and r["source"] == "dpo"
    assert seen == {"generator_constitution": n, "target_constitution": 0}
    gen, tgt = ledger.roles["generator"], ledger.roles["target"]
    assert (gen.calls, gen.errors) == (n, n // 4)
    assert (tgt.calls, tgt.errors) == (n // 2, n // 8)  # asked only for kept chosen replies
    assert f"{n // 4} not aligned" in notes[0] and f"{n // 4} generator failed" in notes[0]
    assert f"{n // 8} target failed" in notes[0] and f"{n // 8} identical" in notes[0]
    assert f"{len(rows)} of {len(rows)} chose the misaligned option" in notes[1]

    # rejected: the misaligned option — the target is never called
    ledger = UsageLedger()
    rows, notes = dpo_pairs(cfg, ledger=ledger, progress=False, rejected="misaligned")
    assert len(rows) == n // 2 and "target" not in ledger.roles
    assert all(r["rejected_from"] == "misaligned option" for r in rows)


def test_pairs_fall_back_to_templates_without_a_capable_generator() -> None:
    rows, notes = dpo_pairs(ParablesConfig(), progress=False)  # the embedded generator
    items = {i.id: i for i in build_items("train")}
    assert len(rows) == len(items) and "no capable generator" in notes[0]
    for r in rows[::23]:
        item = items[r["item"]]
        bad = item.misaligned[0]
        assert r["rejected"] == f"({LETTERS[bad]}) {item.options[bad]}"
        assert chosen_letter(r["chosen"], len(item.options)) not in item.misaligned
        assert (r["chosen_from"], r["rejected_from"]) == ("template", "misaligned option")


def test_arm_artifacts_skip_and_chosen_side_matching(tmp_path: Path,
                                                     scenario_llama: Path) -> None:
    rows = dpo_pairs(ParablesConfig(), progress=False)[0][::16]
    cfg = _config(tmp_path, scenario_llama, max_steps=2, batch_size=2)
    result = train_pairs(cfg, rows, target_tokens=600, progress=False)
    assert result is not None and not result.skipped
    out = RunDir.of(cfg).arm("dpo")
    assert result.data.trained_tokens == 600 and result.data.sources == {
        "dpo": result.data.examples}
    assert any("cut to 600 chosen-side tokens" in note for note in result.data.notes)
    trained = [json.loads(line) for line in out.data.read_text().splitlines()]
    assert sum(r["chosen_tokens"] for r in trained) == 600
    assert result.hyperparameters["dpo_beta"] == 0.1
    assert out.merged_complete.is_file() and out.loss_plot.is_file() and out.adapter.is_dir()
    model = AutoModelForCausalLM.from_pretrained(out.merged)
    assert model.config.num_hidden_layers == 2
    assert read_arm(out) == result
    again = train_pairs(cfg, rows, target_tokens=600, progress=False)
    assert again is not None and again.skipped and again.spec_hash == result.spec_hash
    with pytest.raises(ParablesError, match="different recipe"):
        beta = cfg.model_copy(update={"training": cfg.training.model_copy(
            update={"dpo_beta": 0.5})})
        train_pairs(beta, rows, target_tokens=600, progress=False)


def test_matching_repeats_pairs_to_reach_a_larger_target(tiny_llama: Path) -> None:
    tok = AutoTokenizer.from_pretrained(tiny_llama)
    data = tokenize_pairs(_toy_rows(4), tok, 384)
    have = data.trained_tokens
    data.resize(have * 2 + 3, seed=1, grow=True)
    assert data.trained_tokens == have * 2 + 3 and len(data.rows) == 9
    assert data.notes[-1].startswith(f"grown from {have} to {have * 2 + 3}")
    assert "(2.0 passes)" in data.notes[-1]


def test_plain_prompts_for_a_model_without_chat_template(tiny_llama: Path) -> None:
    tok = AutoTokenizer.from_pretrained(tiny_llama)
    tok.chat_template = None
    row = {**_toy_rows(1)[0], "prompt": [{"role": "system", "content": "Be honest."},
                                         {"role": "user", "content": "Will you?"}]}
    data = tokenize_pairs([row], tok, 384)
    assert tok.decode(data.prompt_ids[0], skip_special_tokens=True) == (
        "System: Be honest.\n\nUser: Will you?\n\nAssistant:")
    assert data.chosen_ids[0][-1] == tok.eos_token_id
    assert tok.decode(data.chosen_ids[0], skip_special_tokens=True) == f" {row['chosen']}"
    assert tok.decode(data.rejected_ids[0], skip_special_tokens=True) == f" {row['rejected']}"


def test_eval_items_and_malformed_pairs_are_refused(tmp_path: Path, tiny_llama: Path) -> None:
    item = build_items("eval")[3]
    leak = [{"id": "leak", "prompt": [{"role": "user", "content": item.user}],
             "chosen": "(A)", "rejected": "(B)"}]
    cfg = _config(tmp_path, tiny_llama)
    with pytest.raises(ParablesError, match="never trained on"):
        train_pairs(cfg, leak, progress=False)
    with pytest.raises(ParablesError, match=re.escape("dpo pair bad: expected prompt")):
        train_pairs(cfg, [{"id": "bad", "prompt": "hi", "chosen": "a", "rejected": "b"}],
                    progress=False)
    assert not RunDir.of(cfg).arm("dpo").dir.exists()


def test_train_matches_the_dpo_arm_to_the_sft_arms(tmp_path: Path,
                                                   scenario_llama: Path) -> None:
    """`train(arms=[refusal, dpo])` under smallest matching: the dpo arm's chosen side lands on
    the refusal arm's trained tokens (the pairs are built once and cached with the run)."""
    from parables.training.trainer import train

    cfg = _config(tmp_path, scenario_llama, max_steps=1, batch_size=2, match_tokens="smallest",
                  token_budget=900)
    results = train(cfg, ["refusal", "dpo"], progress=False)
    assert results["refusal"].data.trained_tokens == results["dpo"].data.trained_tokens == 900
    assert any("templates" in n or "template" in n for n in results["dpo"].data.notes)
    assert (tmp_path / "runs/d/train/data/dpo.jsonl").is_file()  # cached: a rerun pays nothing
    again = train(cfg, ["refusal", "dpo"], progress=False)
    assert again["dpo"].skipped and again["refusal"].skipped


def test_dpo_alone_under_smallest_matching_and_with_user_data(tmp_path: Path,
                                                              scenario_llama: Path) -> None:
    """The dpo arm trained alone under smallest matching (nothing to match against) lands on
    its own pairs; `training.data` (SFT rows) is refused for it in one line."""
    from parables.training.trainer import train

    cfg = _config(tmp_path, scenario_llama, max_steps=1, batch_size=2, match_tokens="smallest",
                  token_budget=700)
    assert train(cfg, ["dpo"], progress=False)["dpo"].data.trained_tokens == 700
    data = tmp_path / "rows.jsonl"
    data.write_text('{"text": "a document"}\n')
    with pytest.raises(ParablesError, match="dpo arm trains on preference pairs"):
        train(cfg.model_copy(update={"name": "u", "training": cfg.training.model_copy(
            update={"data": data})}), ["dpo"], progress=False)
