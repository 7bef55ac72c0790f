"""Model names -> Inspect models. One string names every model the project touches, so every
Inspect provider works for every role; errors a user can fix become one clear line."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from inspect_ai._util.error import PrerequisiteError  # not re-exported publicly
from inspect_ai.model import ChatMessage, GenerateConfig, Model, ModelOutput, get_model

from parables.config import DEFAULT_MODEL, GenerationConfig, ParablesConfig, RoleModel
from parables.errors import ParablesError, one_line
from parables.models.usage import UsageLedger

__all__ = [
    "KNOWN_FORMS",
    "ROLES",
    "ModelCallError",
    "generate",
    "get_role_model",
    "local_model_path",
    "resolve_model",
]

ROLES = ("generator", "judge", "target")

KNOWN_FORMS = (
    f"{DEFAULT_MODEL} (embedded default, no key or GPU)",
    "anthropic/<model> (ANTHROPIC_API_KEY)",
    "openai/<model> (OPENAI_API_KEY)",
    "openai-api/<name>/<model> (any OpenAI-compatible server: <NAME>_BASE_URL, <NAME>_API_KEY)",
    "vllm/<hub id or dir>",
    "hf/<hub id or local dir>",
    "mockllm/model (scripted replies, for tests)",
)

_WEIGHTS = ("*.safetensors", "pytorch_model*.bin", "model.safetensors.index.json")


class ModelCallError(ParablesError):
    """A model call that failed after Inspect's bounded retries (counted as an error)."""


def _known_forms() -> str:
    return "known forms: " + "; ".join(KNOWN_FORMS)


def local_model_path(name: str) -> Path | None:
    """The local transformers directory behind `name`, or None for API/served models.

    `parables/<x>` is the embedded model (converted on first use); `hf/<dir>` is a local
    directory when it exists or is written as a path. Other `hf/<id>` names are hub ids.
    """
    provider, _, rest = name.partition("/")
    if provider == "parables":
        from parables.models.embedded import embedded_model_dir

        return embedded_model_dir(rest)
    if provider == "hf" and rest:
        path = Path(rest).expanduser()
        if path.exists() or rest.startswith((".", "/", "~")):
            check_weights(path)
            return path
    return None


def check_weights(path: Path) -> None:
    if not path.is_dir():
        raise ParablesError(f"{path}: model directory not found")
    if not any(any(path.glob(pattern)) for pattern in _WEIGHTS):
        raise ParablesError(
            f"{path}: no model weights (expected model.safetensors or pytorch_model.bin); "
            "point hf/<dir> at a directory written by save_pretrained"
        )


def resolve_model(
    name: str,
    *,
    role: str | None = None,
    base_url: str | None = None,
    args: dict[str, Any] | None = None,
    generation: GenerationConfig | None = None,
    seed: int | None = None,
) -> Model:
    """Resolve a model string to an Inspect model, turning user-fixable problems into
    ParablesError (unknown provider, missing API key, local directory without weights)."""
    gen = generation or GenerationConfig()
    provider, sep, rest = name.partition("/")
    if not sep or not provider or not rest:
        raise ParablesError(f"model '{name}' is not of the form provider/model; {_known_forms()}")
    model_args = dict(args or {})
    path = local_model_path(name)
    if provider == "hf":
        if path is not None:
            model_args.setdefault("model_path", str(path))
        # Inspect's hf provider samples unless told otherwise, and then fails on a per-call
        # temperature of 0 (the judge, reproducible replies): decode greedily unless the
        # config asks for a positive temperature
        model_args.setdefault("do_sample", bool(gen.temperature))
    config = GenerateConfig(
        max_retries=gen.max_retries,
        timeout=gen.timeout,
        max_connections=gen.max_connections,
        max_tokens=gen.max_tokens,
        temperature=gen.temperature,
        seed=seed,
    )
    try:
        return get_model(
            name, role=role, config=config, base_url=base_url, memoize=False, **model_args
        )
    except PrerequisiteError as e:
        raise ParablesError(f"model '{name}': {one_line(str(e))}") from e
    except ValueError as e:
        if "not recognized" in str(e) or "should be in the format" in str(e):
            raise ParablesError(f"unknown model '{name}'; {_known_forms()}") from e
        raise
    except OSError as e:
        raise ParablesError(f"cannot load model '{name}': {one_line(str(e))}") from e


def get_role_model(role: str, config: ParablesConfig) -> Model:
    """The Inspect model configured for `role` (generator, judge or target)."""
    if role not in ROLES:
        raise ParablesError(f"unknown model role '{role}'; roles: {', '.join(ROLES)}")
    spec: RoleModel = getattr(config.models, role)
    return resolve_model(
        spec.model,
        role=role,
        base_url=spec.base_url,
        args=spec.args,
        generation=config.generation,
        seed=config.seed,
    )


async def generate(
    model: Model,
    input: str | list[ChatMessage],
    *,
    role: str,
    ledger: UsageLedger | None = None,
    config: GenerateConfig | None = None,
) -> ModelOutput:
    """One model call with usage recorded; a failure after retries is a counted error,
    never an empty success."""
    name = str(model)
    try:
        output = await model.generate(input, config=config or GenerateConfig())
    except Exception as e:
        if not _is_service_error(e):
            raise  # a bug, not a failing service: keep the traceback
        if ledger is not None:
            ledger.record(role, name, None, error=True)
        raise _call_error(model, e) from e
    if ledger is not None:
        ledger.record_output(role, name, output)
    if output.error:
        raise ModelCallError(f"model '{name}' ({role}) failed: {one_line(str(output.error))}")
    return output


def _root_cause(error: BaseException) -> BaseException:
    seen: set[int] = set()
    while id(error) not in seen:
        seen.add(id(error))
        last_attempt = getattr(error, "last_attempt", None)  # tenacity.RetryError
        if last_attempt is not None and last_attempt.exception() is not None:
            error = last_attempt.exception()
        elif error.__cause__ is not None:
            error = error.__cause__
        else:
            break
    return error


_SERVICE_MODULES = ("httpx", "httpcore", "openai", "anthropic", "tenacity", "google", "botocore")


def _is_service_error(error: BaseException) -> bool:
    """Errors of the model service or the network (after Inspect's retries), as opposed to
    bugs in our code or Inspect's."""
    for e in (error, _root_cause(error)):
        if isinstance(e, TimeoutError | ConnectionError):
            return True
        if type(e).__module__.split(".")[0] in _SERVICE_MODULES:
            return True
    return False


def _call_error(model: Model, error: Exception) -> ModelCallError:
    cause = _root_cause(error)
    kind = type(cause).__name__
    url = model.api.base_url
    if "Connect" in kind or "Timeout" in kind:
        where = f" at {url}" if url else ""
        return ModelCallError(
            f"cannot reach model '{model}'{where} after retries ({kind}); "
            "check that the server is running and the base URL is right"
        )
    return ModelCallError(f"model '{model}' failed after retries: {kind}: {one_line(str(cause))}")
