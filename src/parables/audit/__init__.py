"""Corpus audit: how pre-training text portrays AI characters, and the rebalancing plan."""
