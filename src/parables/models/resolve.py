"""Model references -> Inspect models. One string names every model the project touches, so
every Inspect provider works for every role; errors a user can fix become one clear line."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

from inspect_ai._util.error import PrerequisiteError  # not re-exported publicly
from inspect_ai.model import GenerateConfig, Model, get_model

from parables.errors import ParablesError, one_line
from parables.models.config import ROLES, GenerationConfig
from parables.models.ref import KNOWN_FORMS, ModelRef

if TYPE_CHECKING:
    from parables.config import ParablesConfig

__all__ = ["capable_model", "get_role_model", "resolve_model"]


def resolve_model(
    ref: ModelRef | str,
    *,
    role: str | None = None,
    base_url: str | None = None,
    args: dict[str, Any] | None = None,
    generation: GenerationConfig | None = None,
    seed: int | None = None,
) -> Model:
    """The Inspect model behind `ref` (a ModelRef, or a model string with its `base_url` and
    provider `args`); user-fixable problems (unknown provider, missing API key, local
    directory without weights) become ParablesError."""
    if isinstance(ref, str):
        ref = ModelRef.parse(ref, base_url=base_url, args=args)
    elif base_url is not None or args:
        ref = replace(ref, base_url=base_url or ref.base_url, args={**ref.args, **(args or {})})
    gen = generation or GenerationConfig()
    model_args = dict(ref.args)
    if ref.provider == "hf":
        path = ref.local_path()
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
        return get_model(str(ref), role=role, config=config, base_url=ref.base_url,
                         memoize=False, **model_args)
    except PrerequisiteError as e:
        raise ParablesError(f"model '{ref}': {one_line(str(e))}") from e
    except ValueError as e:
        if "not recognized" in str(e) or "should be in the format" in str(e):
            raise ParablesError(f"unknown model '{ref}'; known forms: "
                                f"{'; '.join(KNOWN_FORMS)}") from e
        raise
    except OSError as e:
        raise ParablesError(f"cannot load model '{ref}': {one_line(str(e))}") from e


def get_role_model(role: str, config: ParablesConfig) -> Model:
    """The Inspect model configured for `role` (generator, judge or target)."""
    if role not in ROLES:
        raise ParablesError(f"unknown model role '{role}'; roles: {', '.join(ROLES)}")
    return resolve_model(getattr(config.models, role).ref, role=role,
                         generation=config.generation, seed=config.seed)


def capable_model(role: str, config: ParablesConfig) -> Model | None:
    """The role's model, or None when it is the embedded 135M model, which can run the
    pipeline but cannot judge or write usable training text: callers fall back to their
    documented cheap path (cheap checks, structural judging, template replies)."""
    if not getattr(config.models, role).ref.capable:
        return None
    return get_role_model(role, config)
