"""Which model plays each role, how calls are made, and what tokens cost."""

from __future__ import annotations

import math
from typing import Any

from pydantic import Field, model_validator

from parables._redact import is_secret_name, remember_secret, remember_url_secrets
from parables._schema import Strict
from parables.models.ref import DEFAULT_MODEL, ModelRef
from parables.models.usage import Price

__all__ = ["DEFAULT_MODEL", "ROLES", "GenerationConfig", "ModelsConfig", "RoleModel"]

ROLES = ("generator", "judge", "target")


class RoleModel(Strict):
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

    @model_validator(mode="after")
    def _secrets(self) -> RoleModel:
        # keys written into a config file must never be printed or written back out
        for key, value in self.args.items():
            if isinstance(value, str) and is_secret_name(key):
                remember_secret(value)
        if self.base_url:
            remember_url_secrets(self.base_url)
        return self

    @property
    def ref(self) -> ModelRef:
        return ModelRef.parse(self.model, base_url=self.base_url, args=self.args)


class ModelsConfig(Strict):
    """The three roles; each defaults to the embedded model so nothing needs a key."""

    generator: RoleModel = Field(default_factory=RoleModel, description="writes stories")
    judge: RoleModel = Field(default_factory=RoleModel, description="grades stories/actions")
    target: RoleModel = Field(default_factory=RoleModel, description="the model evaluated")
    allow_remote_code: bool = Field(
        False, description="let `args: {trust_remote_code: true}` run a model repository's "
        "own Python code; off, parables refuses such args (run only code you have read)")
    prices: dict[str, Price] = Field(
        default_factory=dict, description="USD per 1M input/output tokens, by model string "
        "(adds to or overrides the built-in list prices)")


    @model_validator(mode="after")
    def _prices(self) -> ModelsConfig:
        for model, price in self.prices.items():
            if not all(math.isfinite(x) and x >= 0 for x in price):
                raise ValueError(f"prices['{model}']: USD per 1M input and output tokens must "
                                 f"be finite and at least 0 (got {list(price)})")
        return self

    @model_validator(mode="after")
    def _remote_code(self) -> ModelsConfig:
        for role in ROLES:
            if getattr(self, role).args.get("trust_remote_code") and not self.allow_remote_code:
                raise ValueError(
                    f"{role}.args.trust_remote_code runs code from the model repository; set "
                    "models.allow_remote_code: true to allow it")
        return self


class GenerationConfig(Strict):
    """How calls to models are made (passed to Inspect's GenerateConfig)."""

    max_retries: int = Field(3, ge=0, description="retries per call before it counts as failed")
    timeout: int = Field(120, gt=0, description="seconds per call, retries included")
    max_connections: int = Field(8, gt=0, description="concurrent calls per model")
    max_tokens: int = Field(512, gt=0, description="default output budget per call")
    temperature: float | None = Field(None, ge=0, description="None keeps provider default")
