"""The one path every model call of parables goes through: usage recorded per role in the
stage's ledger (which prices it, so budgets see every role), failures after Inspect's bounded
retries turned into counted errors — never an empty success — and service errors told apart
from bugs, which keep their traceback."""

from __future__ import annotations

import json

from inspect_ai.model import ChatMessage, GenerateConfig, Model, ModelOutput

from parables._redact import redact_text
from parables.errors import ParablesError, one_line
from parables.models.usage import UsageLedger

__all__ = ["JUDGE_CONFIG", "JUDGE_SEED", "BudgetExhausted", "ModelCallError", "generate"]

JUDGE_SEED = 20260522
#: every judge call (story rubric, ambiguous actions, ethical reasoning, annotation) decodes
#: greedily with a fixed seed, so re-judging the same text gives the same verdict
JUDGE_CONFIG = GenerateConfig(temperature=0, seed=JUDGE_SEED, max_tokens=400)


class ModelCallError(ParablesError):
    """A model call that failed after Inspect's bounded retries (counted as an error)."""


class BudgetExhausted(ParablesError):
    """The run's budget (`max_cost`) is spent: no further paid call is made."""


async def generate(
    model: Model,
    input: str | list[ChatMessage],
    *,
    role: str,
    ledger: UsageLedger | None = None,
    config: GenerateConfig | None = None,
) -> ModelOutput:
    """One model call with its usage recorded in `ledger` (inside an Inspect task, pass none:
    Inspect records the role's usage in the eval log, which the stage then adds)."""
    name = str(model)
    if ledger is not None and ledger.exhausted:
        raise BudgetExhausted(f"the run's budget is spent (${ledger.spent:.2f} of "
                              f"${ledger.limit:.2f} left for this stage); raise max_cost to "
                              "go on — nothing more was called")
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
        if isinstance(e, TimeoutError | ConnectionError | json.JSONDecodeError):
            return True  # JSONDecodeError: the server answered with something that is not JSON
        if type(e).__module__.split(".")[0] in _SERVICE_MODULES:
            return True
    return False


def _call_error(model: Model, error: Exception) -> ModelCallError:
    cause = _root_cause(error)
    kind = type(cause).__name__
    url = redact_text(model.api.base_url or "")
    if "Connect" in kind or "Timeout" in kind:
        where = f" at {url}" if url else ""
        return ModelCallError(
            f"cannot reach model '{model}'{where} after retries ({kind}); "
            "check that the server is running and the base URL is right"
        )
    return ModelCallError(redact_text(f"model '{model}' failed after retries: {kind}: "
                                      f"{one_line(str(cause))}"))
