"""A model reference, parsed once: which provider, which model, where its weights live and how
to reach it. Every stage takes a ModelRef rather than a string it would have to take apart."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from parables.errors import ParablesError

__all__ = ["DEFAULT_MODEL", "KNOWN_FORMS", "ModelRef", "check_weights"]

DEFAULT_MODEL = "parables/smollm2-135m"

KNOWN_FORMS = (
    f"{DEFAULT_MODEL} (embedded default, no key or GPU)",
    "anthropic/<model> (ANTHROPIC_API_KEY)",
    "openai/<model> (OPENAI_API_KEY)",
    "openai-api/<name>/<model> (any OpenAI-compatible server: <NAME>_BASE_URL, <NAME>_API_KEY)",
    "vllm/<hub id or dir>",
    "hf/<hub id or local dir>",
    "mockllm/model (scripted replies, for tests)",
)

#: serve models by API only: nothing there to fine-tune
_API = frozenset({"openai", "anthropic", "google", "mistral", "grok", "groq", "together",
                  "bedrock", "azureai", "perplexity", "fireworks", "openrouter", "openai-api",
                  "mockllm", "vllm", "sglang", "ollama", "hf-inference-providers"})
#: run inside this process with transformers: exact option scoring, text tool format
_IN_PROCESS = frozenset({"hf", "parables"})
#: no per-token price: weights on this machine or a self-hosted server, or a test double
_FREE = frozenset({"hf", "parables", "vllm", "sglang", "ollama", "llama-cpp-python",
                   "transformer_lens", "mockllm"})
def check_weights(path: Path) -> None:
    """A local model directory parables will load: safetensors weights only (a pickle file
    can run code when it is loaded)."""
    if not path.is_dir():
        raise ParablesError(f"{path}: model directory not found")
    if any(path.glob("*.safetensors")):
        return
    if any(path.glob("pytorch_model*.bin")) or any(path.glob("*.pt")):
        raise ParablesError(
            f"{path}: only pickle weights (pytorch_model.bin), which parables does not load; "
            "convert them once, where you trust the file: python -c \"from transformers import "
            f"AutoModelForCausalLM as M; M.from_pretrained('{path}').save_pretrained('{path}', "
            "safe_serialization=True)\"")
    raise ParablesError(f"{path}: no model weights (expected model.safetensors); point "
                        "hf/<dir> at a directory written by save_pretrained")


@dataclass(frozen=True)
class ModelRef:
    """`provider/name`, plus the server URL and provider arguments of its role."""

    provider: str
    name: str
    base_url: str | None = None
    args: Mapping[str, Any] = field(default_factory=dict, compare=False, hash=False)

    @classmethod
    def parse(cls, text: str, *, base_url: str | None = None,
              args: Mapping[str, Any] | None = None) -> ModelRef:
        """An Inspect model string, or a local directory written by save_pretrained (taken as
        `hf/<dir>`); anything else ends in one line listing the known forms."""
        provider, sep, rest = text.partition("/")
        if provider not in _IN_PROCESS and Path(text).expanduser().is_dir():
            return cls("hf", text, base_url, dict(args or {}))
        if not sep or not provider or not rest:
            raise ParablesError(f"model '{text}' is not of the form provider/model; "
                                f"known forms: {'; '.join(KNOWN_FORMS)}")
        return cls(provider, rest, base_url, dict(args or {}))

    @classmethod
    def weights(cls, path: Path, provider: str = "hf") -> ModelRef:
        """A model trained by parables, served by `provider` (hf on CPU, vllm on GPUs)."""
        return cls(provider, str(path))

    def __str__(self) -> str:
        return f"{self.provider}/{self.name}"

    @property
    def embedded(self) -> bool:
        """The embedded 135M model: enough to run the pipeline, too weak to judge or write."""
        return self.provider == "parables"

    @property
    def in_process(self) -> bool:
        return self.provider in _IN_PROCESS

    @property
    def capable(self) -> bool:
        """Fit to judge or to write training text: every model but the embedded 135M one,
        which runs the pipeline but whose verdicts and stories would be noise."""
        return not self.embedded

    @property
    def free(self) -> bool:
        """Calls cost nothing per token (local weights, a self-hosted server, a mock)."""
        return self.provider in _FREE

    def local_path(self) -> Path | None:
        """The transformers directory behind this model, or None for API/served models.

        `parables/<x>` is the embedded model (converted on first use); `hf/<dir>` is a local
        directory when it exists or is written as a path. Other `hf/<id>` names are hub ids.
        """
        if self.provider == "parables":
            from parables.models.embedded import embedded_model_dir

            return embedded_model_dir(self.name)
        if self.provider == "hf":
            path = Path(self.name).expanduser()
            if path.exists() or self.name.startswith((".", "/", "~")):
                check_weights(path)
                return path
        return None

    def training_weights(self) -> str:
        """What transformers loads to fine-tune this model: a local directory or a hub id."""
        local = self.local_path()
        if local is not None:
            return str(local)
        if self.provider in _API:
            raise ParablesError(
                f"cannot fine-tune '{self}': training needs open weights (parables/smollm2-135m, "
                "hf/<hub id or dir>, or a directory written by save_pretrained)")
        return self.name if self.provider == "hf" else str(self)  # a hub id (org/model)
