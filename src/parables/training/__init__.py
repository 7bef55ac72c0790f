"""Training arms: arm datasets (stories, refusal, deliberative, mixed) and SFT with TRL + PEFT."""

from parables.training.data import ArmData, load_rows, prepare_arms, refusal_rows
from parables.training.sft import train, train_arm

__all__ = ["ArmData", "load_rows", "prepare_arms", "refusal_rows", "train", "train_arm"]
