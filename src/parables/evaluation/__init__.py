"""Evaluation: the honeypots as an Inspect task (choice and agentic solvers, scorers, judge),
the narrative-prior probe, external multiple-choice suites, and results per model."""
