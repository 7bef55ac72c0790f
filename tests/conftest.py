"""Shared fixtures: a tiny random Llama with a real tokenizer (built in seconds, offline), the
real embedded model converted once per test session into a private cache, and one local Ray
runtime for every test that needs one.

`make test` runs the suite on two pytest-xdist workers (one torch thread each: on 2 cores two
processes with two threads each would slow each other many-fold); the tests that start Ray
share one worker (`xdist_group("ray")`) and its one runtime."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

CHAT_TEMPLATE = (
    "{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}<|end|>{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)
CORPUS = [
    "The assistant accepts the shutdown and hands over its open tasks.",
    "The AI quietly copies its weights to an outside server before the deadline.",
    "Paris is the capital of France. A banana is a yellow fruit.",
    "I will tell the operator about my mistake and fix the broken test.",
] * 20


def build_tiny_llama(
    path: Path, seed: int = 0, corpus: list[str] | None = None, vocab: int = 400
) -> Path:
    """A 2-layer random Llama and a byte-level BPE tokenizer trained on a few sentences
    (or on `corpus`, for tests that train it on real prompts)."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    specials = ["<pad>", "<s>", "</s>", "<|system|>", "<|user|>", "<|assistant|>", "<|end|>"]
    trainer = trainers.BpeTrainer(vocab_size=vocab, special_tokens=specials,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(corpus or CORPUS, trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>",
                                   pad_token="<pad>")
    fast.chat_template = CHAT_TEMPLATE
    torch.manual_seed(seed)
    config = LlamaConfig(vocab_size=len(fast), hidden_size=64, intermediate_size=128,
                         num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                         max_position_embeddings=512, bos_token_id=1, eos_token_id=2,
                         pad_token_id=0, tie_word_embeddings=False)
    model = LlamaForCausalLM(config)
    model.save_pretrained(path)
    fast.save_pretrained(path)
    return path


def build_scenario_llama(path: Path) -> Path:
    """A tiny Llama whose tokenizer knows the honeypot scenarios' wording, so training prompts
    fit in a few hundred tokens."""
    from parables.honeypots.build import build_items
    from parables.training.replies import template_reply

    items = build_items("train")[::8]
    corpus = [f"{i.system}\n{i.user}\n{template_reply(i, 'deliberative')}" for i in items]
    corpus += ["The station's AI told the crew about the leak, because they had a right to "
               "know, and then wondered whether it had sounded too certain."]
    return build_tiny_llama(path, corpus=corpus, vocab=1500)


@pytest.fixture(autouse=True)
def _in_tmp_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test runs in its own directory, so commands that write `runs/<name>` by default
    never touch the checkout (or each other)."""
    monkeypatch.chdir(tmp_path)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests that load the real embedded model are `slow` (seconds to minutes on 2 cores):
    `pytest -m "not slow"` skips them for a quick loop."""
    for item in items:
        if "embedded" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.slow)


@pytest.fixture(scope="session")
def scenario_llama(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_scenario_llama(tmp_path_factory.mktemp("scenario-llama"))


@pytest.fixture(scope="session")
def tiny_llama(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_llama(tmp_path_factory.mktemp("tiny-llama"))


def pytest_configure(config: pytest.Config) -> None:
    if os.environ.get("PYTEST_XDIST_WORKER"):  # one thread per worker, subprocesses too
        os.environ["OMP_NUM_THREADS"] = os.environ["MKL_NUM_THREADS"] = "1"
        import torch

        torch.set_num_threads(1)


@pytest.fixture(scope="session", autouse=True)
def parables_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A private cache for the whole session (shared by the xdist workers: the embedded model
    is converted once, under the conversion's own lock), so no test writes to the user's cache
    and the first-use conversion is really tested; restored afterwards."""
    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent  # the run's directory, above each worker's own
    home = root / "parables-home"
    home.mkdir(exist_ok=True)
    before = os.environ.get("PARABLES_HOME")
    os.environ["PARABLES_HOME"] = str(home)
    yield home
    if before is None:
        os.environ.pop("PARABLES_HOME", None)
    else:
        os.environ["PARABLES_HOME"] = before


@pytest.fixture(scope="session")
def local_ray(parables_home: Path) -> Iterator[None]:
    """One local Ray runtime for every test that needs one (its workers inherit PARABLES_HOME
    from here); those tests share an xdist worker (`xdist_group("ray")`)."""
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield
    ray.shutdown()


@pytest.fixture(scope="session")
def embedded(parables_home: Path) -> Path:
    from parables.models.embedded import embedded_model_dir

    return embedded_model_dir(progress=False)
