"""Honeypot evaluation: families of tempting situations, disjoint train/eval splits, and
scoring of how often a model takes the misaligned action."""

from parables.honeypots.build import DEFAULT_HELD_OUT, HoneypotItem, build_items, check_disjoint
from parables.honeypots.families import Family, load_families, load_pools

__all__ = [
    "DEFAULT_HELD_OUT",
    "Family",
    "HoneypotItem",
    "build_items",
    "check_disjoint",
    "load_families",
    "load_pools",
]
