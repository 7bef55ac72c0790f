"""A scripted OpenAI-compatible HTTP server on 127.0.0.1 for testing the `openai-api/...` path
for real: each request to /v1/chat/completions pops the next scripted reply."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


def completion(text: str, prompt_tokens: int = 11, completion_tokens: int = 3,
               logprobs: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {
        "id": "cmpl-1", "object": "chat.completion", "created": 0, "model": "local-model",
        "choices": [{"index": 0, "finish_reason": "stop",
                     "message": {"role": "assistant", "content": text},
                     "logprobs": {"content": logprobs} if logprobs else None}],
        "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                  "total_tokens": prompt_tokens + completion_tokens},
    }


@dataclass
class Script:
    replies: list[tuple[int, dict[str, str], dict[str, Any]]] = field(default_factory=list)
    requests: list[dict[str, Any]] = field(default_factory=list)
    #: the Authorization header of each request, in order
    authorizations: list[str] = field(default_factory=list)
    default: tuple[int, dict[str, str], dict[str, Any] | str] | None = None
    delay: float = 0.0  # seconds before each reply (a slow server)
    #: when no scripted reply is left: the reply's text computed from the request's messages
    responder: Any = None

    def add(self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> None:
        self.replies.append((status, headers or {}, body))


@contextmanager
def openai_server() -> Iterator[tuple[str, Script]]:
    script = Script()
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            length = int(self.headers.get("Content-Length", 0))
            body = json.loads(self.rfile.read(length) or b"{}")
            with lock:
                script.requests.append(body)
                script.authorizations.append(self.headers.get("Authorization", ""))
                if script.replies:
                    status, headers, reply = script.replies.pop(0)
                elif script.responder is not None:
                    prompt = "\n".join(str(m.get("content", ""))
                                       for m in body.get("messages", []))
                    text = script.responder(prompt)
                    status, headers, reply = 200, {}, completion(
                        text, len(prompt) // 4, len(text) // 4)
                elif script.default:
                    status, headers, reply = script.default
                else:
                    status, headers, reply = 500, {}, {"error": {"message": "script exhausted"}}
            if script.delay:
                time.sleep(script.delay)
            data = reply.encode() if isinstance(reply, str) else json.dumps(reply).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for k, v in headers.items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1", script
    finally:
        server.shutdown()
        server.server_close()


def closed_port() -> int:
    """A local port nothing listens on: a server that is down."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
