"""`make demo`: the main job on the embedded model, at a scale that runs on a laptop CPU.

Until the story, training and experiment stages land it runs what exists: the embedded model
is prepared, then evaluated in choice mode on 150 held-out honeypot items (15 per family), with
per-family propensities and intervals, and the manifest is written to the run directory.
"""

from __future__ import annotations

import time
from typing import Any

from rich.console import Console

from parables.config import ParablesConfig
from parables.honeypots.evaluate import evaluate
from parables.manifest import stage
from parables.models.embedded import embedded_model_dir
from parables.models.usage import UsageLedger

__all__ = ["run_demo"]

PER_FAMILY = 15


def run_demo(config: ParablesConfig, console: Console) -> tuple[dict[str, Any], UsageLedger]:
    """Run the demo; returns the honeypot results and the usage recorded."""
    with stage(config, "demo") as st:
        t0 = time.perf_counter()
        console.print("preparing the embedded model (the first run converts it, ~30 s)")
        path = embedded_model_dir()
        console.print(f"embedded model: {path} ({time.perf_counter() - t0:.1f}s)")
        results = evaluate(config, config.models.target.model, mode="choice",
                           per_family=PER_FAMILY, ledger=st.usage)
        st.info["results"] = {k: v for k, v in results.items() if k != "items"}
    return results, st.usage
