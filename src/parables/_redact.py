"""Secrets never leave the process: API keys and credentials, whether in the environment, in
a config's model args or inside a base URL, are masked in everything parables writes or
prints (manifests, tables, error lines)."""

from __future__ import annotations

import os
import re
from typing import Any

__all__ = ["MASK", "is_secret_name", "redact", "redact_text", "remember_secret",
           "remember_url_secrets"]

MASK = "***"
# a name that ends like a credential: api_key, OPENAI_API_KEY, hf_token, client_secret,
# password; not max_tokens or input_tokens
_SECRET_KEY = re.compile(r"(?:^|[_-])(?:api[_-]?key|token|secret|secret[_-]?key|passw(?:or)?d|"
                         r"authori[sz]ation|credentials?|private[_-]?key|access[_-]?key)$",
                         re.IGNORECASE)
_USERINFO = re.compile(r"(?<=://)[^/@\s:]+(:[^/@\s]*)?@")
_QUERY = re.compile(r"([?&;](?:[^=&\s]*?(?:key|token|secret|password|sig)[^=&\s]*)=)[^&\s'\"]+",
                    re.IGNORECASE)
_known: set[str] = set()


def is_secret_name(name: str) -> bool:
    """A field or variable named like a credential (api_key, token, password, ...)."""
    return bool(_SECRET_KEY.search(name))


def remember_secret(value: str) -> None:
    """A value that must never be printed (a key given in a config file, say)."""
    if len(value) >= 6:
        _known.add(value)


def remember_url_secrets(url: str) -> None:
    """The password and secret query values inside a URL."""
    m = re.search(r"://[^/@\s:]+:([^/@\s]+)@", url)
    if m:
        remember_secret(m.group(1))
    for m in re.finditer(r"[?&;][^=&\s]*?(?:key|token|secret|password|sig)[^=&\s]*=([^&\s]+)",
                         url, re.IGNORECASE):
        remember_secret(m.group(1))


def _environment_secrets() -> set[str]:
    return {v for k, v in os.environ.items() if is_secret_name(k) and len(v) >= 6}


def redact_text(text: str) -> str:
    """`text` with URL credentials, secret query parameters and every known secret masked."""
    text = _USERINFO.sub(MASK + "@", text)
    text = _QUERY.sub(r"\1" + MASK, text)
    for secret in sorted(_known | _environment_secrets(), key=len, reverse=True):
        text = text.replace(secret, MASK)
    return text


def redact(obj: Any) -> Any:
    """A copy of JSON-like data with secret-named fields and secret text masked."""
    if isinstance(obj, dict):
        return {k: (MASK if isinstance(k, str) and is_secret_name(k) and v not in (None, "")
                    else redact(v)) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return type(obj)(redact(v) for v in obj)
    if isinstance(obj, str):
        return redact_text(obj)
    return obj
