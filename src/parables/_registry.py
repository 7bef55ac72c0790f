"""Inspect AI entry point: importing this registers parables' model provider and tasks with
Inspect (`--model parables/smollm2-135m`, `inspect eval parables/honeypots`)."""

from parables.evaluation.task import honeypots
from parables.models.provider import parables_provider

__all__ = ["honeypots", "parables_provider"]
