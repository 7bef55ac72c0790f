"""The constitution: the principles (with their reasons) and themes the stories teach."""

from parables.constitution.schema import (
    Constitution,
    Principle,
    Theme,
    default_constitution_path,
    load_constitution,
)

__all__ = ["Constitution", "Principle", "Theme", "default_constitution_path",
           "load_constitution"]
