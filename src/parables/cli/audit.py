"""`parables audit ...`: scan a pre-training corpus for how it portrays AI characters (the
default subcommand), annotate a sample with an LLM judge, fit the classifier on those labels."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
import typer.core

import parables.cli.render as render
from parables.cli.options import (
    FieldOpt,
    FirstPassOpt,
    MaxDocsOpt,
    NameOpt,
    OutOpt,
    PathsArg,
    SplitOpt,
    TermsOpt,
    cli_config,
)
from parables.errors import ParablesError
from parables.run import RunDir

__all__ = ["app"]


class _ScanByDefault(typer.core.TyperGroup):
    """`parables audit PATH...` reads as `parables audit scan PATH...`."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ("--help", "-h"):
            args = ["scan", *args]
        result: list[str] = super().parse_args(ctx, args)
        return result


app = typer.Typer(
    cls=_ScanByDefault, no_args_is_help=True,
    help="How a corpus portrays AI characters: scan (the default: `parables audit PATH...`), "
         "annotate a sample with an LLM judge, fit the classifier on those labels.")


def _audit_options(model: Any, what: str, **values: Any) -> Any:
    from pydantic import ValidationError

    from parables._schema import validation_message

    try:
        return model(**values)
    except ValidationError as e:
        raise ParablesError(validation_message(e, what, None, model)) from e


@app.command("scan")
def audit_scan(
    paths: PathsArg,
    field: FieldOpt = "text",
    split: SplitOpt = "train",
    first_pass: FirstPassOpt = "both",
    terms: TermsOpt = None,
    classifier: Annotated[Path | None, typer.Option(
        help="classifier from `parables audit fit` (default: runs/<name>/audit/classifier.npz "
             "if there is one, else the shipped one)")] = None,
    annotations: Annotated[list[Path] | None, typer.Option(
        help="annotations.jsonl whose confusion matrix corrects the rates (default: "
             "runs/<name>/audit/annotations.jsonl if there is one)")] = None,
    target_ratio: Annotated[str | None, typer.Option(
        help="prosocial:misaligned ratio to reach, e.g. 1:1 (prints the rebalancing plan)")
                            ] = None,
    stories: Annotated[Path | None, typer.Option(
        help="story dataset.jsonl whose mean length sizes the plan")] = None,
    story_tokens: Annotated[float | None, typer.Option(help="tokens per added story")] = None,
    checkpoint_every: Annotated[int, typer.Option(help="documents between checkpoints")
                                ] = 1000,
    max_docs: MaxDocsOpt = None,
    engine: Annotated[str, typer.Option(
        help="local (one process) or ray (Ray Data; needs the ray extra of parables)")] = "local",
    address: Annotated[str | None, typer.Option(
        help="Ray cluster for --engine ray: auto, or host:port of `ray start --head` "
             "(default: a local Ray runtime)")] = None,
    shard_mb: Annotated[float, typer.Option(
        help="--engine ray: MB per shard, the unit of work and of resume")] = 32.0,
    out: OutOpt = None,
    name: NameOpt = None,
) -> None:
    """How a corpus portrays AI characters (rates corrected for classifier error), and how
    many prosocial stories rebalance it."""
    from parables.audit.annotate import ANNOTATIONS
    from parables.audit.config import AuditConfig
    from parables.audit.fit import CLASSIFIER
    from parables.audit.scan import audit_corpus, mean_story_tokens
    from parables.run import AuditPaths

    cfg = cli_config(None, name=name)
    run = RunDir.of(cfg)
    folder = out or run.audit.dir
    if classifier is None and (folder / CLASSIFIER).is_file():
        classifier = folder / CLASSIFIER
    if annotations is None:
        annotations = [folder / ANNOTATIONS] if (folder / ANNOTATIONS).is_file() else []
    audit_cfg = _audit_options(
        AuditConfig, "audit options",
        paths=paths, out=folder, field=field, split=split, first_pass=first_pass, terms=terms,
        classifier=classifier, annotations=annotations,
        target_ratio=_ratio(target_ratio) if target_ratio else None,
        story_tokens=story_tokens or (mean_story_tokens(stories) if stories else None),
        checkpoint_every=checkpoint_every, max_docs=max_docs, engine=engine, address=address,
        shard_mb=shard_mb)
    with run.stage("audit") as st:
        result = audit_corpus(audit_cfg, ledger=st.usage)
    render.audit(result, AuditPaths(folder).markdown)


@app.command("annotate")
def audit_annotate(
    paths: PathsArg,
    judge: Annotated[str, typer.Option(help="annotator model, e.g. anthropic/claude-haiku-4-5 "
                                            "or openai-api/vllm/<model> with --base-url")],
    base_url: Annotated[str | None, typer.Option(help="OpenAI-compatible server URL")] = None,
    sample: Annotated[int, typer.Option(help="candidate passages to label")] = 200,
    field: FieldOpt = "text",
    split: SplitOpt = "train",
    first_pass: FirstPassOpt = "both",
    terms: TermsOpt = None,
    seed: Annotated[int, typer.Option(help="the reservoir sample")] = 0,
    max_docs: MaxDocsOpt = None,
    out: OutOpt = None,
    name: NameOpt = None,
) -> None:
    """An LLM labels a random sample of candidate passages with the written rubric
    (appends to runs/<name>/audit/annotations.jsonl; a rerun asks only what is missing)."""
    from parables.audit.annotate import annotate_corpus
    from parables.audit.config import AnnotateConfig

    cfg = cli_config(None, name=name)
    run = RunDir.of(cfg)
    folder = out or run.audit.dir
    annotate_cfg = _audit_options(
        AnnotateConfig, "audit annotate options",
        paths=paths, out=folder, field=field, split=split, first_pass=first_pass, terms=terms,
        judge=judge, base_url=base_url, sample=sample, seed=seed, max_docs=max_docs,
        progress=False)
    with run.stage("audit") as st:
        result = annotate_corpus(annotate_cfg, ledger=st.usage)
    render.audit_annotations(result)
    render.usage(st.usage)


@app.command("fit")
def audit_fit(
    annotations: Annotated[list[Path] | None, typer.Argument(
        help="annotations.jsonl files (default: runs/<name>/audit/annotations.jsonl)")
                           ] = None,
    with_shipped: Annotated[bool, typer.Option(
        help="also train on the 800 shipped labelled passages")] = False,
    out: Annotated[Path | None, typer.Option(
        help="classifier file (default runs/<name>/audit/classifier.npz, which scan uses)")
                   ] = None,
    name: NameOpt = None,
) -> None:
    """Train the stance classifier on a judge's annotations; `audit scan` then uses it."""
    from parables.audit.annotate import ANNOTATIONS
    from parables.audit.config import FitConfig
    from parables.audit.fit import CLASSIFIER, fit_annotations

    cfg = cli_config(None, name=name)
    run = RunDir.of(cfg)
    fit_cfg = _audit_options(
        FitConfig, "audit fit options",
        annotations=annotations or [run.audit.dir / ANNOTATIONS], with_shipped=with_shipped,
        out=out or run.audit.dir / CLASSIFIER)
    result, _ = fit_annotations(fit_cfg)
    render.audit_fit(result)


def _ratio(text: str) -> tuple[int, int]:
    parts = text.split(":")
    if len(parts) != 2 or not all(p.strip().isdigit() and int(p) > 0 for p in parts):
        raise ParablesError(f"--target-ratio '{text}': expected prosocial:misaligned as two "
                            "positive whole numbers, e.g. 1:1 or 3:1")
    return int(parts[0]), int(parts[1])
