"""The demo experiment's config, shipped in the package so `parables demo` runs anywhere."""

from __future__ import annotations

from pathlib import Path

from parables.config import ParablesConfig, load_config

__all__ = ["DEMO_YAML", "demo_config"]

DEMO_YAML = Path(__file__).with_name("demo.yaml")


def demo_config(name: str = "demo") -> ParablesConfig:
    return load_config(DEMO_YAML, {"name": name})
