"""Training: arms (what a model is trained on: training/arms/, one registered class per arm),
their data (rows -> guard -> tokens -> matching), and one training loop with two recipes, SFT
and DPO (TRL + PEFT)."""
