"""Stories: constitution -> seeds -> stories with narrated reasoning -> quality gate -> dedup
-> contamination guard -> dataset."""

from parables.stories.pipeline import generate_stories, plan
from parables.stories.seeds import Seed, sample_seeds
from parables.stories.stats import story_stats

__all__ = ["Seed", "generate_stories", "plan", "sample_seeds", "story_stats"]
