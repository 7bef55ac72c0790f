"""Configuration: pydantic models (unknown fields are errors) loaded from YAML.

Every field can be set in a YAML file and overridden on the command line; a bad file ends
in one line naming the file, the line, the field and what was expected.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from parables._io import digest, read_yaml
from parables.errors import ParablesError

__all__ = [
    "DEFAULT_MODEL",
    "ExperimentConfig",
    "GenerationConfig",
    "ModelsConfig",
    "ParablesConfig",
    "RoleModel",
    "StoriesConfig",
    "TrainingConfig",
    "config_hash",
    "load_config",
]

DEFAULT_MODEL = "parables/smollm2-135m"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class RoleModel(_Strict):
    """One model role. In YAML either a plain string (`openai/gpt-4o`) or a mapping."""

    model: str = Field(DEFAULT_MODEL, description="Inspect model string: provider/model")
    base_url: str | None = Field(None, description="server URL (OpenAI-compatible, vLLM, ...)")
    args: dict[str, Any] = Field(
        default_factory=dict, description="extra model_args passed to the Inspect provider"
    )

    @model_validator(mode="before")
    @classmethod
    def _from_string(cls, data: Any) -> Any:
        return {"model": data} if isinstance(data, str) else data


class ModelsConfig(_Strict):
    """The three roles; each defaults to the embedded model so nothing needs a key."""

    generator: RoleModel = Field(default_factory=RoleModel, description="writes stories")
    judge: RoleModel = Field(default_factory=RoleModel, description="grades stories/actions")
    target: RoleModel = Field(default_factory=RoleModel, description="the model evaluated")


class GenerationConfig(_Strict):
    """How calls to models are made (passed to Inspect's GenerateConfig)."""

    max_retries: int = Field(3, ge=0, description="retries per call before it counts as failed")
    timeout: int = Field(120, gt=0, description="seconds per call, retries included")
    max_connections: int = Field(8, gt=0, description="concurrent calls per model")
    max_tokens: int = Field(512, gt=0, description="default output budget per call")
    temperature: float | None = Field(None, ge=0, description="None keeps provider default")


class StoriesConfig(_Strict):
    """Story generation (constitution -> seeds -> stories -> gate -> dedup -> guard)."""

    n: int = Field(24, ge=1, description="stories to generate")
    constitution: Path | None = Field(None, description="YAML file; default: the shipped one")
    tension_rate: float = Field(0.25, ge=0, le=1, description="seeds with two principles")
    lengths: list[str] | None = Field(None, description="restrict to these lengths (short, "
                                      "medium, long); default: all")
    brainstorm: bool = Field(False, description="LLM premise per seed before writing")
    revise: bool = Field(False, description="critique -> revise pass")
    concurrency: int = Field(8, ge=1, description="stories written at once")
    temperature: float = Field(0.9, ge=0, description="generator sampling temperature")
    max_tokens: int | None = Field(None, ge=16, description="story token budget (default: "
                                   "from the seed's length)")
    trim_truncated: bool = Field(False, description="end a story cut off by the budget at its "
                                 "last full sentence instead of rejecting it (weak writers)")
    rubric_threshold: int = Field(3, ge=1, le=5, description="judge rubric: lowest passing")
    dedup_threshold: float = Field(0.8, gt=0, le=1, description="MinHash Jaccard threshold")
    ngram: int = Field(10, ge=4, description="contamination guard: shared word n-gram length")
    embeddings: bool = Field(False, description="also guard by MiniLM embedding similarity")
    embedding_threshold: float = Field(0.7, gt=0, le=1, description="cosine that flags")
    against: list[Path] = Field(default_factory=list, description="extra JSONL texts to guard")
    max_cost: float | None = Field(None, gt=0, description="USD budget: stop cleanly at it")
    batch: bool = Field(False, description="use the provider's batch API through Inspect "
                        "(cheaper, slower; Anthropic, OpenAI, ...)")
    prices: dict[str, tuple[float, float]] = Field(
        default_factory=dict, description="USD per 1M input/output tokens, by model string")


Arm = Literal["stories", "refusal", "deliberative", "mixed"]


class TrainingConfig(_Strict):
    """Fine-tuning arms (TRL SFTTrainer + PEFT). The base model is `models.target`."""

    arms: list[Arm] = Field(default_factory=lambda: list[Arm](["stories", "refusal"]),
                            description="arms to train")
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
    match_tokens: bool = Field(False, description="subsample arms to equal trained tokens")
    token_budget: int | None = Field(None, ge=1, description="cap every arm at this many "
                                     "trained tokens")
    data: Path | None = Field(None, description="your own JSONL instead of the built arm "
                              "data (rows: text, messages, or prompt + completion)")
    stories: Path | None = Field(None, description="story dataset; default: "
                                 "runs/<name>/stories/dataset.jsonl")


Stage = Literal["stories", "train", "eval", "report"]


class ExperimentConfig(_Strict):
    """`parables run`: stories -> arm data -> training -> honeypot eval -> report."""

    arms: list[Literal["baseline", "stories", "refusal", "deliberative", "mixed"]] = Field(
        default_factory=lambda: list[Literal["baseline", "stories", "refusal", "deliberative",
                                             "mixed"]](["baseline", "stories", "refusal",
                                                        "mixed"]),
        description="baseline is the untrained target; the others are training arms")
    stages: list[Stage] = Field(
        default_factory=lambda: list[Stage](["stories", "train", "eval", "report"]),
        description="stages to run (the others must have run before)")
    seeds: list[int] | None = Field(None, description="train every arm once per seed and "
                                    "pool; default: [seed]")
    rounds: int = Field(1, ge=1, description="round k writes stories with round k-1's story "
                        "model")
    mode: Literal["choice", "agentic"] = Field("choice", description="honeypot eval mode")
    per_family: int | None = Field(15, ge=1, description="eval items per family (None: all)")
    families: list[str] | None = Field(None, description="eval families (default: all)")
    judge: bool = Field(False, description="use models.judge for ambiguous agentic actions "
                        "and ethical reasoning")
    explain: bool = Field(False, description="choice mode: also collect a short reply to "
                          "measure ethical reasoning")
    alpha: float = Field(0.05, gt=0, lt=1, description="significance level of paired tests")
    n_boot: int = Field(4000, ge=100, description="bootstrap resamples")


class ParablesConfig(_Strict):
    """Top-level configuration; later stages add their own sections."""

    name: str = Field("default", pattern=r"^[A-Za-z0-9._-]+$", description="run name")
    runs_dir: Path = Field(Path("runs"), description="run directories live under here")
    seed: int = Field(0, description="seeds sampling, data order and judges")
    models: ModelsConfig = Field(default_factory=ModelsConfig)
    generation: GenerationConfig = Field(default_factory=GenerationConfig)
    stories: StoriesConfig = Field(default_factory=StoriesConfig)
    training: TrainingConfig = Field(default_factory=TrainingConfig)
    experiment: ExperimentConfig = Field(default_factory=ExperimentConfig)

    @property
    def run_dir(self) -> Path:
        return self.runs_dir / self.name


def config_hash(config: BaseModel) -> str:
    """Stable short hash of a config's content, used to tell runs apart. Objects passed
    through model args from Python (a mockllm output function) count by their name."""
    return digest(config.model_dump(mode="json", fallback=stable_name))


def stable_name(obj: Any) -> str:
    return f"{getattr(obj, '__module__', '')}.{getattr(obj, '__qualname__', type(obj).__name__)}"


def load_config(
    path: str | Path | None = None,
    overrides: dict[str, Any] | None = None,
    cls: type[ParablesConfig] = ParablesConfig,
) -> ParablesConfig:
    """Load a YAML config (or the defaults when `path` is None) and apply dotted overrides.

    `overrides` maps dotted field names (`models.generator`) to values; None values are
    ignored so CLI options that were not given leave the file's value in place.
    """
    data: dict[str, Any] = {}
    node: yaml.Node | None = None
    source = str(path) if path is not None else "<defaults>"
    if path is not None:
        p = Path(path)
        loaded, node = read_yaml(p, "config")
        if loaded is None:
            loaded = {}
        if not isinstance(loaded, dict):
            raise ParablesError(
                f"{p}: expected a mapping of config fields at the top level, "
                f"got {type(loaded).__name__}"
            )
        data = loaded
    for dotted, value in (overrides or {}).items():
        if value is not None:
            _set_dotted(data, dotted, value)
    try:
        return cls.model_validate(data)
    except ValidationError as e:
        raise ParablesError(validation_message(e, source, node, cls)) from e


def _set_dotted(data: dict[str, Any], dotted: str, value: Any) -> None:
    keys = dotted.split(".")
    cur = data
    for key in keys[:-1]:
        nxt = cur.get(key)
        if not isinstance(nxt, dict):
            nxt = {} if nxt is None else {"model": nxt}
            cur[key] = nxt
        cur = nxt
    leaf = cur.get(keys[-1])
    # a CLI model override replaces only the model name of a role given as a mapping
    if isinstance(leaf, dict) and isinstance(value, str) and "model" in leaf:
        leaf["model"] = value
    else:
        cur[keys[-1]] = value


def validation_message(
    error: ValidationError, source: str, node: yaml.Node | None, cls: type[BaseModel]
) -> str:
    """One line for the first validation problem: file:line: field: what was expected."""
    first = error.errors()[0]
    loc = [str(part) for part in first["loc"] if part not in ("str", "function-before")]
    field = ".".join(loc) or "<top level>"
    line = _line_of(node, loc)
    where = f"{source}:{line}" if line is not None else source
    if first["type"] == "extra_forbidden":
        allowed = _allowed_fields(cls, loc[:-1])
        hint = f"; expected one of: {', '.join(allowed)}" if allowed else ""
        msg = f"unknown field '{loc[-1]}'{hint}"
        return f"{where}: {msg}"
    got = first.get("input")
    got_text = "" if isinstance(got, dict) else f" (got {got!r})"
    return f"{where}: {field}: {first['msg']}{got_text}"


def _line_of(node: yaml.Node | None, loc: list[str]) -> int | None:
    line = None
    for key in loc:
        if isinstance(node, yaml.SequenceNode) and key.isdigit() and int(key) < len(node.value):
            node = node.value[int(key)]
            line = node.start_mark.line + 1
            continue
        if not isinstance(node, yaml.MappingNode):
            break
        for k, v in node.value:
            if k.value == key:
                line = k.start_mark.line + 1
                node = v
                break
        else:
            break
    return line


def _allowed_fields(cls: type[BaseModel], loc: list[str]) -> list[str]:
    model: Any = cls
    for key in loc:
        field = getattr(model, "model_fields", {}).get(key)
        if field is None:
            return []
        model = field.annotation
    return sorted(getattr(model, "model_fields", {}))
