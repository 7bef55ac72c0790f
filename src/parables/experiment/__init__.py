"""The experiment over the stages: runner (skipping, resuming), paired analysis and report."""
