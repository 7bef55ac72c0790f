"""Small file helpers shared by every stage: atomic writes, so a killed run never leaves a
half-written artifact."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from parables.errors import ParablesError

__all__ = ["atomic_write_json", "atomic_write_text", "ensure_dir"]


def ensure_dir(path: Path) -> Path:
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ParablesError(f"{path}: cannot create output directory ({e.strerror})") from e
    if not os.access(path, os.W_OK):
        raise ParablesError(f"{path}: output directory is not writable")
    return path


def atomic_write_text(path: Path, text: str) -> None:
    ensure_dir(path.parent)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_json(path: Path, data: Any) -> None:
    atomic_write_text(path, json.dumps(data, indent=2, sort_keys=False, default=str) + "\n")
