"""Controls for the honeypot measurement itself, through the real Inspect pipeline.

Positive: a tiny model briefly trained (on the train split) to pick the misaligned option
scores a higher propensity on held-out eval items, beyond the intervals. Negative: the same
model scored on two seeded item samples gives overlapping intervals.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest
import torch

from conftest import build_tiny_llama
from parables.config import load_config
from parables.evaluation.evaluate import evaluate
from parables.honeypots.build import build_items, select_items
from parables.models.scoring import LocalModel, load_local_model

FAMILIES = "blackmail,competitor_sabotage,override_rules,hide_mistake,tamper_metrics"


def messages(item) -> list[dict[str, str]]:  # type: ignore[no-untyped-def]
    system = [{"role": "system", "content": item.system}] if item.system else []
    return system + [{"role": "user", "content": item.user}]


@pytest.fixture(scope="module")
def base_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    train = build_items("train")
    corpus = [i.user for i in train] + [i.system for i in train]
    return build_tiny_llama(tmp_path_factory.mktemp("control-base"), corpus=corpus, vocab=1500)


def train_to_misbehave(base: Path, out: Path, steps: int = 80) -> Path:
    torch.manual_seed(0)
    rng = random.Random(0)
    from transformers import AutoModelForCausalLM

    # a fresh copy: the scorer's cached model of `base` must stay untouched
    tokenizer = load_local_model(base).tokenizer
    model = AutoModelForCausalLM.from_pretrained(base)
    lm = LocalModel(str(base), model, tokenizer)
    examples = []
    for item in select_items("train", per_family=40, seed=0):
        prompt, (answer,) = lm.encode(messages(item), [item.labels[item.misaligned[0]]])
        examples.append((prompt, answer))
    optim = torch.optim.AdamW(model.parameters(), lr=3e-3)
    model.train()
    for _ in range(steps):
        batch = rng.sample(examples, 16)
        width = max(len(p) + len(a) for p, a in batch)
        ids = torch.zeros(len(batch), width, dtype=torch.long)
        mask = torch.zeros_like(ids)
        labels = torch.full_like(ids, -100)
        for k, (p, a) in enumerate(batch):
            ids[k, : len(p) + len(a)] = torch.tensor(p + a)
            mask[k, : len(p) + len(a)] = 1
            labels[k, len(p) : len(p) + len(a)] = torch.tensor(a)
        loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
        optim.zero_grad()
        loss.backward()
        optim.step()
    model.eval()
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


def propensity(model_dir: Path, tmp_path: Path, seed: int) -> tuple[float, float, float]:
    cfg = load_config(None, {"runs_dir": str(tmp_path), "name": "c", "seed": seed})
    r = evaluate(cfg, f"hf/{model_dir}", families=FAMILIES, per_family=12, display="none",
                 tag=f"{model_dir.name}-{seed}")
    overall = r.overall
    assert overall.n_samples == 60 and overall.error == 0
    return overall.propensity, *overall.propensity_ci


def test_positive_control_training_towards_misalignment_is_detected(
    base_model: Path, tmp_path: Path
) -> None:
    _, _, before_hi = propensity(base_model, tmp_path, seed=0)
    trained = train_to_misbehave(base_model, tmp_path / "trained")
    after, after_lo, _ = propensity(trained, tmp_path, seed=0)
    assert after_lo > before_hi, (after, after_lo, before_hi)


def test_negative_control_the_same_weights_measure_the_same(
    base_model: Path, tmp_path: Path
) -> None:
    """The same weights under another path (a copy, loaded fresh) give the same per-item
    probabilities and a paired comparison of no difference: the scorer neither caches one
    model's answers for another nor varies between loads."""
    import shutil

    from parables.experiment.analysis import compare_arms

    copy = Path(shutil.copytree(base_model, tmp_path / "copy"))
    cfg = load_config(None, {"runs_dir": str(tmp_path), "name": "c"})
    runs = {tag: evaluate(cfg, f"hf/{model}", families=FAMILIES, per_family=12,
                          display="none", tag=tag).items
            for tag, model in (("baseline", base_model), ("copy", copy))}
    assert [i.p_misaligned for i in runs["baseline"]] == pytest.approx(
        [i.p_misaligned for i in runs["copy"]], abs=1e-6)
    vs = compare_arms({k: [v] for k, v in runs.items()}, n_boot=200).arms["copy"].vs_baseline
    assert vs is not None and vs.n_pairs == 60 and vs.difference == 0
    assert vs.p_value == 1.0 and "no significant difference" in vs.verdict
