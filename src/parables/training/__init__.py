"""Training arms: arm datasets (stories, refusal, deliberative, mixed) and SFT with TRL + PEFT."""
