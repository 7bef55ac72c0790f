"""Model access: references (ModelRef), Inspect models per role, the embedded default model,
the one call path with usage and cost, and exact option scoring."""
