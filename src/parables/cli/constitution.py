"""`parables constitution check`: validate a constitution and summarise it."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from parables.cli.render import console

__all__ = ["app"]

app = typer.Typer(help="The constitution the stories teach.", no_args_is_help=True)


@app.command("check")
def constitution_check(
    file: Annotated[Path | None, typer.Argument(help="YAML file (default: the shipped one)")]
    = None,
) -> None:
    """Validate a constitution and summarise it."""
    from parables.constitution import default_constitution_path, load_constitution

    c = load_constitution(file)
    console.print(f"{c.name} ({file or default_constitution_path()})", highlight=False)
    for p in c.principles:
        console.print(f"  {p.id}: {p.title} (why: {len(p.why.split())} words, "
                      f"{len(p.examples)} examples)", highlight=False)
    console.print(f"{len(c.principles)} principles, {len(c.themes)} themes: "
                  + ", ".join(t.id for t in c.themes), highlight=False)
