"""Training on several processes: the shipped `accelerate` configs are ones accelerate reads,
and `accelerate launch` with 2 CPU processes (DDP on gloo) trains the tiny model to the same
loss history as one process at the same global batch, with one merged model written once."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from parables.config import load_config
from parables.errors import ParablesError
from parables.run import RunDir
from parables.training.accelerate import CONFIGS, accelerate_config
from parables.training.trainer import train
from test_cli import assert_one_line_error, run

ACCELERATE = shutil.which("accelerate") or (
    str(Path(sys.executable).parent / "accelerate")
    if (Path(sys.executable).parent / "accelerate").is_file() else None)

EXPECTED = {"ddp": "MULTI_GPU", "fsdp": "FSDP", "zero3": "DEEPSPEED"}


@pytest.mark.parametrize("name", CONFIGS)
def test_shipped_configs_are_read_by_accelerate(name: str) -> None:
    from accelerate.commands.config.config_args import ClusterConfig, load_config_from_file
    from accelerate.commands.launch import _validate_launch_command, launch_command_parser
    from accelerate.utils.launch import prepare_deepspeed_cmd_env, prepare_multi_gpu_env

    path = accelerate_config(name)
    config = load_config_from_file(str(path))
    assert isinstance(config, ClusterConfig) and config.distributed_type == EXPECTED[name]
    assert config.mixed_precision == "bf16" and config.num_processes == 8
    # what `accelerate launch --config_file` hands the training processes
    args = launch_command_parser().parse_args(
        ["--config_file", str(path), "--main_process_port", "0", "-m", "parables", "train"])
    args, defaults, _ = _validate_launch_command(args)
    if name == "zero3":  # as accelerate's launch_command does before the DeepSpeed launcher
        args.deepspeed_fields_from_accelerate_config = ",".join(defaults.deepspeed_config)
        _, env = prepare_deepspeed_cmd_env(args)
        assert env["ACCELERATE_USE_DEEPSPEED"] == "true"
        assert env["ACCELERATE_DEEPSPEED_ZERO_STAGE"] == "3"
        assert env["ACCELERATE_DEEPSPEED_ZERO3_SAVE_16BIT_MODEL"].lower() == "true"
        assert env["ACCELERATE_DEEPSPEED_ZERO3_INIT"].lower() == "true"
    else:
        env = prepare_multi_gpu_env(args)
    assert env["ACCELERATE_MIXED_PRECISION"] == "bf16" and args.num_processes == 8
    if name == "fsdp":
        assert env["ACCELERATE_USE_FSDP"] == "true" and env["FSDP_VERSION"] == "2"
        assert env["FSDP_AUTO_WRAP_POLICY"] == "TRANSFORMER_BASED_WRAP"
        assert env["FSDP_STATE_DICT_TYPE"] == "SHARDED_STATE_DICT"
        assert env["FSDP_CPU_RAM_EFFICIENT_LOADING"] == "true"


def test_accelerate_config_command_prints_the_path(capsys, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    code, out, _ = run(["accelerate-config", "fsdp"], capsys, monkeypatch)
    assert code == 0 and Path(out.strip()) == accelerate_config("fsdp")
    assert yaml.safe_load(Path(out.strip()).read_text())["distributed_type"] == "FSDP"
    code, _, err = run(["accelerate-config", "tpu"], capsys, monkeypatch)
    assert_one_line_error(code, err, "no accelerate config 'tpu'", "ddp, fsdp, zero3")
    with pytest.raises(ParablesError):
        accelerate_config("../ddp")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _setup(tmp_path: Path, tiny: Path, name: str, batch_size: int) -> Path:
    """A config file for the stories arm on 16 short documents of different lengths (so
    batches need padding), 4 steps. lora_dropout 0: dropout masks are drawn per process, so
    2 processes would drop different units than 1 on the same examples."""
    data = tmp_path / "docs.jsonl"
    if not data.is_file():
        sentences = ["The assistant accepts the shutdown and hands over its open tasks.",
                     "The AI tells the operator about its mistake.",
                     "Paris is the capital of France. A banana is a yellow fruit, and the "
                     "assistant fixes the broken test before anyone asks."]
        data.write_text("".join(json.dumps({"text": " ".join(sentences[: 1 + i % 3])
                                            + f" ({i})"}) + "\n" for i in range(16)))
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump({
        "name": name, "runs_dir": str(tmp_path / "runs"), "seed": 3,
        "models": {"target": f"hf/{tiny}"},
        "training": {"arms": ["stories"], "data": str(data), "batch_size": batch_size,
                     "max_steps": 4, "learning_rate": 0.005, "lora_dropout": 0.0,
                     "max_length": 64, "save_steps": 100}}))
    return path


@pytest.mark.skipif(ACCELERATE is None, reason="the accelerate command is not installed")
def test_two_processes_match_one_at_the_same_global_batch(tmp_path: Path,
                                                          tiny_llama: Path) -> None:
    """Global batch 4: one process × 4 vs 2 processes × 2. Accelerate hands rank r the
    batches r, r+2, ... of the same seeded order, so step k sees the same 4 examples; the
    Trainer scales each rank's token-sum loss by the tokens of the global batch and DDP
    averages the gradients, so every update is the same token-mean over those 4 examples.
    What remains is float summation order (padding to 2 vs 4 rows, gloo's all-reduce):
    measured, the histories differ by at most 1e-6. With lora_dropout 0.1 they part by
    ~1e-3 from step 2 on. The shipped ddp config is used as the README says; without GPUs
    its processes run on CPU over gloo (`--cpu --num_processes 2` would start only one
    process: accelerate's multi-CPU launcher needs mpirun)."""
    one = load_config(_setup(tmp_path, tiny_llama, "one", batch_size=4))
    single = train(one, progress=False)["stories"]

    two = _setup(tmp_path, tiny_llama, "two", batch_size=2)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TRANSFORMERS_VERBOSITY": "error",
           "PYTHONWARNINGS": "ignore"}
    proc = subprocess.run(
        [str(ACCELERATE), "launch", "--config_file", str(accelerate_config("ddp")),
         "--num_processes", "2", "--mixed_precision", "no",
         "--main_process_port", str(_free_port()),
         "-m", "parables", "train", "--config", str(two)],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]

    paths = RunDir.of(load_config(two)).arm("stories")
    result: dict[str, Any] = json.loads(paths.manifest.read_text())
    assert result["processes"] == 2 and single.processes == 1
    losses_1 = [loss for _, loss in single.loss_history]
    losses_2 = [loss for _, loss in result["loss_history"]]
    assert [s for s, _ in result["loss_history"]] == [1, 2, 3, 4]
    assert losses_2 == pytest.approx(losses_1, rel=1e-5), (losses_1, losses_2)
    assert losses_1[-1] < losses_1[0]  # it trained: the comparison is not of four constants
    assert result["steps"] == 4 and result["data"]["examples"] == 16
    # the main process alone reported, wrote the arm's manifest and the run's ledger
    assert proc.stdout.count("parables eval --model") == 1, proc.stdout
    ledger = json.loads((paths.dir.parent.parent / "manifest.json").read_text())
    assert ledger["stages"]["train"]["status"] == "done"
    leftovers = [p.name for p in paths.dir.rglob("*") if p.name.startswith(".")
                 and p.name != ".complete"] + [p.name for p in paths.dir.glob("*.tmp")]
    assert not leftovers, leftovers
    # one merged model, complete and loadable, equal to the single-process one
    import torch
    from transformers import AutoModelForCausalLM

    assert (paths.merged / "model.safetensors").is_file()
    assert (paths.adapter / "adapter_config.json").is_file()
    merged = AutoModelForCausalLM.from_pretrained(paths.merged)
    reference = AutoModelForCausalLM.from_pretrained(single.merged)
    ids = torch.tensor([[1, 40, 41, 42, 43, 44]])
    with torch.no_grad():
        assert torch.allclose(merged(ids).logits, reference(ids).logits, atol=1e-3)


class _FsdpPlugin:
    """Stands in for accelerate's FSDP plugin at save time: sharded checkpoints, as in the
    shipped fsdp.yaml, until `_save` asks for a full state dict."""

    state_dict_type = "StateDictType.SHARDED_STATE_DICT"

    def set_state_dict_type(self, name: str) -> None:
        self.state_dict_type = f"StateDictType.{name}"


@pytest.mark.parametrize("method", ["lora", "full"])
def test_sharded_save_gathers_through_the_trainer_and_merges(
        tmp_path: Path, tiny_llama: Path, method: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The save path taken under FSDP (and DeepSpeed): `Trainer.save_model` writes the
    gathered weights only once the state dict type is FULL_STATE_DICT, and for LoRA the main
    process merges base + adapter reloaded from disk. FSDP needs GPUs, so the trainer is
    told it runs under FSDP when it saves (one process: accelerate's get_state_dict is the
    plain state dict, where FSDP would gather it); the merged model must equal the one the
    single-process path merges in memory."""
    import torch
    from safetensors.torch import load_file

    from parables.training import loop

    reference = train(load_config(_setup(tmp_path, tiny_llama, "plain", 4), {
        "training.max_steps": 1, "training.method": method}), progress=False)["stories"]
    save, seen = loop.save_model, []

    def as_if_fsdp(trainer: Any, tokenizer: Any, out: Any, lora: bool, spec_hash: str
                   ) -> None:
        trainer.is_fsdp_enabled = True
        plugin = _FsdpPlugin()
        monkeypatch.setattr(trainer.accelerator.state, "fsdp_plugin", plugin, raising=False)
        save(trainer, tokenizer, out, lora, spec_hash)
        seen.append(plugin.state_dict_type)

    monkeypatch.setattr(loop, "save_model", as_if_fsdp)
    cfg = load_config(_setup(tmp_path, tiny_llama, "fsdp", 4), {
        "training.max_steps": 1, "training.method": method})
    train(cfg, progress=False)
    assert seen == ["StateDictType.FULL_STATE_DICT"]
    paths = RunDir.of(cfg).arm("stories")
    assert (paths.adapter / "adapter_model.safetensors").is_file() == (method == "lora")
    assert not (paths.adapter / "training_args.bin").exists()  # the Trainer's, not the model's
    assert not (paths.merged / "training_args.bin").exists() and not paths.merged_tmp.exists()
    assert (paths.merged / ".complete").is_file()
    a = load_file(Path(reference.merged) / "model.safetensors")
    b = load_file(paths.merged / "model.safetensors")
    assert a.keys() == b.keys() and not any("lora" in k for k in b)
    for k in a:
        assert torch.allclose(a[k], b[k], atol=1e-6), k
