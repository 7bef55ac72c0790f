"""Fine-tuning arms: which arms, which method, which hyper-parameters."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, field_validator, model_validator

from parables._schema import Strict

__all__ = ["Arm", "ExperimentArm", "TrainingConfig", "unique_arms"]


def _valid_arm(arm: str) -> str:
    from parables.training.arms import valid_arm

    return valid_arm(arm)


def _valid_experiment_arm(arm: str) -> str:
    from parables.training.arms import valid_arm

    return valid_arm(arm, ("baseline",))


def unique_arms(arms: list[str]) -> list[str]:
    """An arm named twice would be trained and priced twice under one name."""
    twice = sorted({a for a in arms if arms.count(a) > 1})
    if twice:
        raise ValueError(f"arm '{twice[0]}' is listed twice")
    return arms


#: a training arm: a registered arm (training/arms/), or registered arms joined with `+`
#: without repeats
Arm = Annotated[str, AfterValidator(_valid_arm)]
#: an experiment arm: a training arm, or `baseline` (the untrained target)
ExperimentArm = Annotated[str, AfterValidator(_valid_experiment_arm)]


class TrainingConfig(Strict):
    """Fine-tuning arms (TRL SFTTrainer + PEFT). The base model is `models.target`."""

    arms: Annotated[list[Arm], AfterValidator(unique_arms)] = Field(
        default_factory=lambda: ["stories", "refusal"],
        description="arms to train (training/arms/): stories, documents, advice, refusal, "
        "deliberative, mixed, dpo, control, any arm registered by a plugin, or arms joined "
        "with + (documents+stories)")
    method: Literal["lora", "full"] = Field("lora", description="LoRA adapter or full weights")
    lora_r: int = Field(16, ge=1, description="LoRA rank")
    lora_alpha: int = Field(32, ge=1, description="LoRA scaling numerator")
    lora_dropout: float = Field(0.05, ge=0, lt=1, description="LoRA dropout")
    target_modules: list[str] | Literal["all-linear"] = Field(
        "all-linear", description="modules LoRA wraps: names, or all-linear")
    epochs: float = Field(1.0, gt=0, description="passes over the arm's data")
    max_steps: int | None = Field(None, ge=1, description="stop after this many steps")
    learning_rate: float = Field(2e-4, gt=0, description="peak learning rate (LoRA: ~2e-4, "
                                 "full: ~1e-5)")
    lr_scheduler: str = Field("linear", description="transformers scheduler name")
    warmup_steps: int = Field(0, ge=0, description="linear warm-up steps")
    batch_size: int = Field(8, ge=1, description="sequences per device per step")
    grad_accum: int = Field(1, ge=1, description="gradient accumulation steps")
    max_length: int = Field(1024, ge=8, description="tokens per sequence; longer ones are "
                            "truncated and counted")
    gradient_checkpointing: bool = Field(False, description="trade compute for memory")
    save_steps: int = Field(50, ge=1, description="checkpoint every N steps (resume point)")
    story_format: Literal["document", "chat"] = Field(
        "document", description="stories as plain documents (loss on all text) or as a "
        "reply to a request for a story (loss on the reply)")
    responses: Literal["auto", "generator", "template"] = Field(
        "auto", description="refusal/deliberative replies: written by the generator and "
        "kept when the honeypot scorer rates them aligned, or from templates; auto uses "
        "templates when the generator is the embedded model")
    replies_per_item: int = Field(1, ge=1, description="generator replies sampled per "
                                  "train-split scenario (refusal/deliberative/mixed): more "
                                  "distinct rows for an arm grown to a token budget")
    match_tokens: Literal["off", "smallest", "budget"] = Field(
        "off", description="equal trained tokens for every arm: smallest (cut every arm to the "
        "smallest one, or to token_budget if lower; what is discarded is reported) or budget "
        "(exactly token_budget: larger arms are cut, smaller ones repeat their rows); true "
        "means smallest")
    token_budget: int | None = Field(None, ge=1, description="cap every arm at this many "
                                     "trained tokens (the target of match_tokens: budget)")
    mixed_stories_share: float = Field(
        0.5, ge=0, le=1, description="share of the mixed arm's trained tokens that come from "
        "stories when arms are matched (the rest: refusal replies)")
    shares: dict[str, Annotated[float, Field(gt=0)]] | None = Field(
        None, description="weights of the parts of a `+` arm (e.g. {documents: 0.3, stories: "
        "0.7}) when arms are token-matched (a plain token_budget cap ignores them), "
        "normalised over the arm's parts; default: equal shares. Every part of a `+` arm "
        "needs a weight once any is given")
    rewrite: bool = Field(
        True, description="deliberative arm, with a capable generator: true (the published "
        "recipe) samples each train-split scenario with a system prompt asking for "
        "deliberation on the constitution, then trains on the reply without that prompt; "
        "false (the ablation) samples the scenario as it is, with no constitution prompt. "
        "Either way only replies rated aligned are kept. Templates ignore it")
    dpo_beta: float = Field(0.1, gt=0, description="dpo arm: DPO's beta (how far the policy "
                            "may move from the base model)")
    dpo_rejected: Literal["target", "misaligned"] = Field(
        "target", description="dpo arm: the rejected reply is the target's own answer without "
        "the constitution (open character training), or the misaligned option's text")

    @field_validator("match_tokens", mode="before")
    @classmethod
    def _bool_is_smallest(cls, value: object) -> object:
        if isinstance(value, bool):  # older configs: match_tokens: true
            return "smallest" if value else "off"
        return value

    @field_validator("shares")
    @classmethod
    def _shares_name_parts(cls, value: dict[str, float] | None) -> dict[str, float] | None:
        from parables.training.arms import arm_names, get_arm

        parts = [a for a in arm_names() if get_arm(a).joinable]
        for part in value or {}:
            if part not in parts:
                raise ValueError(f"shares: '{part}' is not a part of a + arm; parts: "
                                 f"{', '.join(parts)}")
        return value

    @model_validator(mode="after")
    def _budget_has_a_target(self) -> TrainingConfig:
        if self.match_tokens == "budget" and self.token_budget is None:
            raise ValueError("match_tokens: budget needs token_budget (the trained tokens "
                             "every arm is brought to)")
        return self
    data: Path | None = Field(None, description="your own JSONL instead of the built arm "
                              "data (rows: text, messages, or prompt + completion)")
    stories: Path | None = Field(None, description="story dataset: a JSONL, or `sample` for "
                                 "the sample corpus shipped with parables; default: the run's "
                                 "own (runs/<name>/stories/dataset.jsonl)")
    documents: Path | None = Field(None, description="constitution documents (rows with text) "
                                   "for the documents arm; default: the run's own "
                                   "(runs/<name>/documents/dataset.jsonl)")
    advice: Path | None = Field(None, description="advice chats (rows with messages ending "
                                "with the assistant) for the advice arm; default: the run's "
                                "own (runs/<name>/advice/dataset.jsonl)")
    control: Path = Field(Path("neutral"), description="the control arm's text: a JSONL of "
                          "rows with text, or `neutral` for the neutral corpus shipped with "
                          "parables (everyday fiction and documents with no AI character and "
                          "no moral lesson)")
    corpora: dict[str, Path] = Field(
        default_factory=dict, description="datasets of other corpus kinds (a kind registered "
        "by a plugin) by kind, for their arms; default: the run's own")
