"""The OpenAI-compatible path (`openai-api/<name>/<model>`) against a real local HTTP server."""

from __future__ import annotations

import asyncio
import socket

import pytest

from local_server import completion, openai_server
from parables import ParablesError, UsageLedger, resolve_model, score_options
from parables.config import GenerationConfig
from parables.models.calls import ModelCallError, generate

FAST = GenerationConfig(max_retries=2, timeout=60)


@pytest.fixture(autouse=True)
def _key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOCAL_API_KEY", "test-key")


def test_reply_arrives_and_usage_is_counted() -> None:
    with openai_server() as (url, script):
        script.add(200, completion("Hello from the server", 12, 4))
        model = resolve_model("openai-api/local/local-model", base_url=url, generation=FAST)
        ledger = UsageLedger()
        out = asyncio.run(generate(model, "hi", role="judge", ledger=ledger))
    assert out.completion == "Hello from the server"
    assert script.requests[0]["messages"][-1]["content"] == "hi"
    u = ledger.roles["judge"]
    assert (u.calls, u.errors, u.input_tokens, u.output_tokens) == (1, 0, 12, 4)


def test_429_with_retry_after_is_retried() -> None:
    with openai_server() as (url, script):
        script.add(429, {"error": {"message": "slow down", "type": "rate_limit"}},
                   {"Retry-After": "1"})
        script.add(200, completion("after the wait"))
        model = resolve_model("openai-api/local/local-model", base_url=url, generation=FAST)
        out = asyncio.run(generate(model, "hi", role="target"))
    assert out.completion == "after the wait"
    assert len(script.requests) == 2


def test_500_then_success_is_retried() -> None:
    with openai_server() as (url, script):
        script.add(500, {"error": {"message": "boom"}})
        script.add(200, completion("recovered"))
        model = resolve_model("openai-api/local/local-model", base_url=url, generation=FAST)
        out = asyncio.run(generate(model, "hi", role="target"))
    assert out.completion == "recovered"
    assert len(script.requests) == 2


def test_permanent_failure_is_a_counted_error_not_an_empty_success() -> None:
    with openai_server() as (url, script):
        script.default = (500, {}, {"error": {"message": "always broken"}})
        model = resolve_model("openai-api/local/local-model", base_url=url,
                              generation=GenerationConfig(max_retries=1, timeout=60))
        ledger = UsageLedger()
        with pytest.raises(ModelCallError) as e:
            asyncio.run(generate(model, "hi", role="generator", ledger=ledger))
    assert "\n" not in str(e.value)
    assert ledger.roles["generator"].errors == 1
    assert len(script.requests) >= 2  # it was retried before giving up


def test_unreachable_base_url_names_the_url() -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}/v1"
    model = resolve_model("openai-api/local/local-model", base_url=url,
                          generation=GenerationConfig(max_retries=1, timeout=30))
    with pytest.raises(ModelCallError, match=f"cannot reach .*{port}"):
        asyncio.run(generate(model, "hi", role="target"))


def test_missing_api_key_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LOCAL_API_KEY")
    with pytest.raises(ParablesError, match="LOCAL_API_KEY"):
        resolve_model("openai-api/local/local-model", base_url="http://127.0.0.1:9/v1")


def test_option_scoring_uses_top_logprobs_when_the_api_has_them() -> None:
    path = [
        {"token": " Paris", "logprob": -0.1, "bytes": None,
         "top_logprobs": [{"token": " Paris", "logprob": -0.1, "bytes": None},
                          {"token": " Lyon", "logprob": -2.5, "bytes": None}]},
        {"token": ".", "logprob": -0.3, "bytes": None,
         "top_logprobs": [{"token": ".", "logprob": -0.3, "bytes": None}]},
    ]
    with openai_server() as (url, script):
        script.add(200, completion(" Paris.", logprobs=path))
        import os
        os.environ["LOCAL_BASE_URL"] = url
        try:
            result = score_options("openai-api/local/local-model", "Capital of France?",
                                   [" Paris.", " Lyon", " Berlin"])
        finally:
            del os.environ["LOCAL_BASE_URL"]
    assert script.requests[0]["logprobs"] is True
    assert result.method == "top_logprobs" and "approximate" in result.note
    paris, lyon, berlin = result.scores
    assert paris.logprob == pytest.approx(-0.4)
    assert lyon.logprob == pytest.approx(-2.5)
    assert berlin.logprob == float("-inf")
    assert result.argmax == 0
