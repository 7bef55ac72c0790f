"""The `parables` command: a thin typer layer that parses options, calls one library function
per command and prints. Errors a user can fix print one line and exit with 2.

The app is assembled here from one module per command group (models, constitution, corpora,
evals, train, experiment, audit); options that several commands take are declared once in
options.py, and the output is printed by render.py."""

from __future__ import annotations

import os
import signal
import sys
from typing import Annotated

import click
import typer

from parables import __version__
from parables._redact import redact_text
from parables.cli import audit, constitution, corpora, evals, experiment, models, train
from parables.errors import ParablesError

__all__ = ["app", "main"]

app = typer.Typer(
    help="Teach language models why: constitution stories, training arms, honeypot evals.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,  # plain tracebacks for bugs; never dump locals (API keys)
    add_completion=False,
)


def _version(value: bool) -> None:
    if value:
        print(f"parables {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="print version")
    ] = False,
) -> None:
    """Constitution -> stories -> fine-tuning arms -> honeypot evaluation -> report."""


# the commands, in the order `parables --help` lists them, then the command groups
app.command("generate")(corpora.generate_cmd)
app.command("eval")(evals.eval_cmd)
app.command("train")(train.train_cmd)
app.command("accelerate-config")(train.accelerate_config_cmd)
app.command("run")(experiment.run_cmd)
app.command("demo")(experiment.demo)
app.add_typer(models.app, name="models")
app.add_typer(constitution.app, name="constitution")
app.add_typer(corpora.stories_app, name="stories")
app.add_typer(audit.app, name="audit")

# typer >= 0.29 vendors its own click, whose usage errors are not click.ClickException
_TYPER_CLICK_ERROR: type[click.ClickException] = next(
    c for c in typer.BadParameter.__mro__ if c.__name__ == "ClickException")


def _interrupt_on_signals() -> None:
    """Ctrl-C and SIGTERM (what timeout, Slurm and container runtimes send) both interrupt:
    every open stage still records what it spent, and the exit code says it was stopped.
    (asyncio.run keeps a handler installed this way, instead of cancelling its tasks.)"""
    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, interrupt)


def main() -> None:
    """Entry point: user errors -> one line on stderr and exit 2; bugs keep tracebacks."""
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")  # our own bars say enough
    _interrupt_on_signals()
    try:
        code = app(standalone_mode=False)
        if code == 130:  # typer turns KeyboardInterrupt into an exit code it returns
            raise KeyboardInterrupt
        if isinstance(code, int) and code:
            sys.exit(code)
    except ParablesError as e:
        sys.stderr.write(redact_text(f"parables: error: {e}") + "\n")
        sys.exit(2)
    except (click.exceptions.Exit, typer.Exit) as e:
        sys.exit(e.exit_code)
    except (click.ClickException, _TYPER_CLICK_ERROR) as e:
        e.show()
        sys.exit(2)
    except (click.exceptions.Abort, typer.Abort, KeyboardInterrupt):
        sys.stderr.write("parables: interrupted\n")
        sys.exit(130)


if __name__ == "__main__":
    main()
