"""The one training loop every arm goes through, whatever its recipe (SFT or DPO).

Per arm, under `runs/<name>/train/<arm>/`: `spec.json` (the recipe being trained),
`data.jsonl` (exactly what was trained on), `checkpoints/` (resume points), `adapter/`
(LoRA), `merged/` (safetensors, usable as `hf/<dir>`), `loss.png` and `manifest.json`
(`ArmResult`). A rerun resumes from the last checkpoint; a finished arm with the same spec is
skipped; a different spec is refused unless forced, so one directory never mixes two
recipes. A `Recipe` (training/sft.py, training/dpo.py) says what differs: how rows become
token ids, the TRL arguments, dataset and trainer class.
"""

from __future__ import annotations

import shutil
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, ClassVar

from pydantic import BaseModel, ValidationError

from parables._io import atomic_write_json, digest, ensure_dir, read_json, write_jsonl
from parables.config import ParablesConfig, config_hash
from parables.errors import ParablesError, one_line
from parables.run import ArmPaths, RunDir, package_versions
from parables.training.arm_data import ArmData, DataSummary
from parables.training.save import save_model

__all__ = ["ArmResult", "Recipe", "base_weights", "claim_arm", "device", "load_base",
           "load_tokenizer", "main_first", "plot_loss", "read_arm", "spec_hash_of",
           "train_arm"]

OOM_HINT = ("try a smaller training.batch_size (raise training.grad_accum to keep the "
            "effective batch), training.method: lora, training.gradient_checkpointing: true "
            "or a shorter training.max_length")

#: training fields that choose an arm's data, not how it is trained (the data hash has them)
_DATA_FIELDS = {"arms", "match_tokens", "mixed_stories_share", "stories", "token_budget",
                "data", "documents", "advice", "shares", "rewrite", "dpo_beta", "dpo_rejected",
                "control", "corpora"}


class ArmResult(BaseModel):
    """`train/<arm>/manifest.json`: the recipe, what was trained on, and how it went."""

    arm: str
    base_model: str
    base_path: str
    seed: int
    data_hash: str
    hyperparameters: dict[str, Any]
    spec_hash: str
    config_hash: str
    data: DataSummary
    device: str
    dtype: str
    processes: int = 1  # under `accelerate launch`: batch_size is per process
    steps: int
    epochs: float | None
    resumed_from: str | None
    seconds: float
    tokens_per_second: float
    train_loss: float
    loss_history: list[tuple[int, float]]
    merged: str
    adapter: str | None = None
    versions: dict[str, str]
    skipped: bool = False  # finished before with the same spec; nothing was trained now


class Recipe:
    """How an arm's rows are trained: SFT (`training/sft.py`) or DPO (`training/dpo.py`)."""

    name: ClassVar[str]
    loss_title: ClassVar[str] = "training loss"

    def load(self, path: Path) -> list[dict[str, Any]]:
        """Rows cached by an earlier run (training/prepare.py)."""
        raise NotImplementedError

    def guard_view(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The rows as the eval-leak guard reads them (documents or chats)."""
        return rows

    def tokenize(self, arm: str, rows: list[dict[str, Any]], tokenizer: Any,
                 max_length: int) -> ArmData:
        raise NotImplementedError

    def hyperparameters(self, config: ParablesConfig) -> dict[str, Any]:
        """The recipe's own settings, beside the shared ones in the arm's spec."""
        return {}

    def trained_rows(self, data: ArmData) -> list[dict[str, Any]]:
        """`data.jsonl`: each row with how many of its tokens were trained."""
        raise NotImplementedError

    def arguments(self, config: ParablesConfig, common: dict[str, Any]) -> Any:
        """TRL's training arguments: `common` plus the recipe's own."""
        raise NotImplementedError

    def dataset(self, data: ArmData) -> Any:
        raise NotImplementedError

    def trainer_class(self) -> type:
        raise NotImplementedError


def base_weights(config: ParablesConfig) -> str:
    """What transformers loads for the target: a local directory or a hub id (one line
    naming the problem when the target has no open weights)."""
    return config.models.target.ref.training_weights()


def load_tokenizer(config: ParablesConfig, base: str) -> Any:
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(base, trust_remote_code=False)
    except OSError as e:
        raise ParablesError(f"cannot load the tokenizer of '{config.models.target.model}': "
                            f"{one_line(str(e))}") from e


def device() -> tuple[str, bool]:
    """(cuda or cpu, whether bf16 is supported)."""
    import torch

    if torch.cuda.is_available():
        return "cuda", bool(torch.cuda.is_bf16_supported())
    return "cpu", False


def arm_spec(config: ParablesConfig, recipe: Recipe, base: str, data: ArmData
             ) -> dict[str, Any]:
    """Everything that decides what is trained: base, seed, data, hyper-parameters."""
    t = config.training.model_dump(mode="json", exclude=_DATA_FIELDS)
    spec = {"arm": data.arm, "base_model": config.models.target.model, "base_path": base,
            "seed": config.seed, "data_hash": data.data_hash(),
            "hyperparameters": {**t, **recipe.hyperparameters(config)}}
    complete = Path(base) / ".complete"  # a model parables trained (an organism): its recipe,
    if complete.is_file():  # so an arm on top of a retrained one is retrained too
        spec["base_recipe"] = complete.read_text().strip()
    return spec


def read_arm(paths: ArmPaths) -> ArmResult | None:
    """A finished arm's result (None if it has not finished)."""
    data = read_json(paths.manifest)
    if data is None:
        return None
    if "outputs" in data:  # written by parables 0.1.0 before results were typed
        data = {**data, **data.pop("outputs")}
    try:
        return ArmResult.model_validate(data)
    except ValidationError as e:
        raise ParablesError(f"{paths.manifest}: not an arm result this version can read "
                            f"({e.errors()[0]['msg']}); retrain with --force") from e


def spec_hash_of(paths: ArmPaths) -> str | None:
    """The recipe hash of whatever was (or is being) trained in `paths`."""
    spec = read_json(paths.spec)
    return str(spec["spec_hash"]) if spec is not None else None


@contextmanager
def main_first() -> Iterator[bool]:
    """Under `accelerate launch`, the main process runs the block first (it builds arm data,
    pays for generator calls, replaces and writes files) and the others after it (they read
    what it wrote); yields whether this is the main process. One process: just runs it."""
    from accelerate import PartialState

    state = PartialState()
    with state.main_process_first():
        yield bool(state.is_main_process)


def claim_arm(out: ArmPaths, arm: str, spec: dict[str, Any], spec_hash: str, force: bool,
              main: bool) -> ArmResult | None:
    """Make `out` this recipe's (the main process removes it first with `force`): the
    finished result when it is already trained (skipped), else None. Refuses a directory
    holding another recipe."""
    if force and main and out.dir.exists():
        shutil.rmtree(out.dir)
    previous = spec_hash_of(out)
    if previous is not None and previous != spec_hash:
        raise ParablesError(
            f"{out.dir} holds arm '{arm}' trained with a different recipe or data "
            f"(spec {previous} vs {spec_hash}); rerun with --force to replace it, or use "
            "another --name")
    done = read_arm(out)
    if done is not None and done.spec_hash == spec_hash and out.merged_complete.is_file():
        return done.model_copy(update={"skipped": True})
    if main:
        ensure_dir(out.dir)
        atomic_write_json(out.spec, {"spec_hash": spec_hash, **spec})
    return None


def train_arm(config: ParablesConfig, data: ArmData, recipe: Recipe, *, tokenizer: Any = None,
              force: bool = False, progress: bool = True, callbacks: list[Any] | None = None
              ) -> ArmResult | None:
    """Train one arm on `data` (already tokenised, matched and checked) with `recipe`;
    returns its result (None on a secondary process under `accelerate launch`). Resumes from
    the last checkpoint of an interrupted run with the same spec."""
    out = RunDir.of(config).arm(data.arm)
    base = base_weights(config)
    spec = arm_spec(config, recipe, base, data)
    spec_hash = digest(spec)
    with main_first() as main:  # one process replaces and writes; the others then read
        done = claim_arm(out, data.arm, spec, spec_hash, force, main)
        if done is None and main:
            write_jsonl(out.data, recipe.trained_rows(data))
    if done is not None:
        return done
    tokenizer = tokenizer if tokenizer is not None else load_tokenizer(config, base)
    return _fit(config, data, recipe, tokenizer, out, base, spec, spec_hash, progress,
                callbacks or [])


def _fit(config: ParablesConfig, data: ArmData, recipe: Recipe, tokenizer: Any, out: ArmPaths,
         base: str, spec: dict[str, Any], spec_hash: str, progress: bool,
         callbacks: list[Any]) -> ArmResult | None:
    import torch
    from transformers import PrinterCallback
    from transformers.trainer_utils import get_last_checkpoint
    from transformers.utils import logging as hf_logging

    t = config.training
    hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call]
    warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*",
                            category=FutureWarning)  # raised inside transformers/peft
    where, bf16 = device()
    ckpt_dir = out.checkpoints
    args = recipe.arguments(config, dict(
        output_dir=str(ckpt_dir), num_train_epochs=t.epochs, max_steps=t.max_steps or -1,
        per_device_train_batch_size=t.batch_size, gradient_accumulation_steps=t.grad_accum,
        learning_rate=t.learning_rate, lr_scheduler_type=t.lr_scheduler,
        warmup_steps=t.warmup_steps, activation_checkpointing=t.gradient_checkpointing,
        max_length=t.max_length, bf16=bf16, use_cpu=where == "cpu", seed=config.seed,
        data_seed=config.seed, logging_steps=1, save_strategy="steps",
        save_steps=t.save_steps, save_total_limit=2, report_to=[], disable_tqdm=True,
        dataloader_num_workers=0, include_num_input_tokens_seen="non_padding"))
    # The model loads after the arguments: under `accelerate launch` they set up the process
    # group, so DeepSpeed ZeRO-3 builds the model already partitioned and FSDP's
    # cpu_ram_efficient_loading reads the weights on rank 0 only (not a full copy per rank).
    model, peft_config = load_base(config, base, bf16, tokenizer)
    bar = _progress_bar(data.arm, progress)
    trainer = recipe.trainer_class()(model=model, args=args, train_dataset=recipe.dataset(data),
                                     processing_class=tokenizer, peft_config=peft_config,
                                     callbacks=[bar, *callbacks])
    trainer.remove_callback(PrinterCallback)  # the bar shows the loss; no dict per step
    last = get_last_checkpoint(str(ckpt_dir)) if ckpt_dir.is_dir() else None  # type: ignore[no-untyped-call]
    started = time.time()
    try:
        result = trainer.train(resume_from_checkpoint=last)
    except RuntimeError as e:  # torch.OutOfMemoryError is one; so is a CPU allocator failure
        if not (isinstance(e, torch.OutOfMemoryError) or "can't allocate memory" in str(e)
                or "out of memory" in str(e).lower()):
            raise
        raise ParablesError(
            f"out of memory training arm '{data.arm}' at step {trainer.state.global_step} "
            f"(checkpoints kept in {ckpt_dir}; a rerun resumes); {OOM_HINT}") from e
    finally:
        bar.close()
    seconds = time.time() - started
    # every rank: sharded weights gather
    save_model(trainer, tokenizer, out, t.method == "lora", spec_hash)
    if not trainer.is_world_process_zero():
        return None
    history = [(int(h["step"]), float(h["loss"])) for h in trainer.state.log_history
               if "loss" in h]
    plot_loss(history, out.loss_plot, f"{data.arm}: {recipe.loss_title}")
    tokens_run = trainer.state.num_input_tokens_seen - (_tokens_at(Path(last)) if last else 0)
    arm = ArmResult(
        **spec, spec_hash=spec_hash, config_hash=config_hash(config),
        data=data.summary(), device=where, dtype="bfloat16" if bf16 else "float32",
        processes=trainer.args.world_size,
        steps=trainer.state.global_step, epochs=trainer.state.epoch,
        resumed_from=Path(last).name if last else None,
        seconds=round(seconds, 2),
        tokens_per_second=round(tokens_run / max(seconds, 1e-9), 1),
        train_loss=result.training_loss, loss_history=history,
        merged=str(out.merged), adapter=str(out.adapter) if t.method == "lora" else None,
        versions=package_versions())
    atomic_write_json(out.manifest, arm.model_dump(mode="json"))
    return arm


def load_base(config: ParablesConfig, base: str, bf16: bool, tokenizer: Any
              ) -> tuple[Any, Any]:
    """The base model to fine-tune (seeded first: LoRA weights are initialised before the
    Trainer seeds anything), a pad token for `tokenizer`, and the LoRA config (None: full).
    Loaded after the training arguments (see `_fit`)."""
    import torch
    from transformers import AutoModelForCausalLM, set_seed

    t = config.training
    set_seed(config.seed)
    try:
        model = AutoModelForCausalLM.from_pretrained(
            base, dtype=torch.bfloat16 if bf16 else torch.float32, trust_remote_code=False,
            use_safetensors=True)
    except OSError as e:
        raise ParablesError(f"cannot load base model '{config.models.target.model}': "
                            f"{one_line(str(e))}") from e
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    peft_config = None
    if t.method == "lora":
        from peft import LoraConfig

        peft_config = LoraConfig(r=t.lora_r, lora_alpha=t.lora_alpha,
                                 lora_dropout=t.lora_dropout, task_type="CAUSAL_LM",
                                 target_modules=t.target_modules)
    return model, peft_config


def plot_loss(history: list[tuple[int, float]], path: Path, title: str) -> None:
    """A loss-vs-step PNG (matplotlib, no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5), dpi=120)
    if history:
        steps, losses = zip(*history, strict=True)
        ax.plot(steps, losses, color="#3b6ea8", linewidth=1.5)
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def _tokens_at(checkpoint: Path) -> int:
    state = read_json(checkpoint / "trainer_state.json") or {}
    return int(state.get("num_input_tokens_seen", 0))


def _progress_bar(arm: str, enabled: bool) -> Any:
    """The progress bar per arm, with the running loss (a transformers TrainerCallback)."""
    from transformers import TrainerCallback

    from parables.progress import progress_bar

    class ProgressBar(TrainerCallback):
        bar: Any = None
        task: Any = None

        def on_train_begin(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
            if not (enabled and state.is_world_process_zero):
                return
            self.bar = progress_bar()
            self.bar.start()
            self.task = self.bar.add_task(f"train {arm}", total=state.max_steps,
                                          completed=state.global_step, status="")

        def on_log(self, args: Any, state: Any, control: Any,
                   logs: dict[str, float] | None = None, **kw: Any) -> None:
            if self.bar is not None and logs and "loss" in logs:
                self.bar.update(self.task, status=f"loss {logs['loss']:.3f}")

        def on_step_end(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
            if self.bar is not None:
                self.bar.update(self.task, completed=state.global_step)

        def close(self) -> None:
            if self.bar is not None:
                self.bar.stop()
                self.bar = None

    return ProgressBar()
