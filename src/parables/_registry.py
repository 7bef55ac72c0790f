"""Inspect AI entry point: importing this registers parables' model provider (and, as the
stages land, its tasks) with Inspect."""

from parables.models.provider import parables_provider

__all__ = ["parables_provider"]
