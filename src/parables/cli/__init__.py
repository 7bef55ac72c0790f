"""The `parables` command: a thin typer layer that parses options, calls one library function
per command and prints. Errors a user can fix print one line and exit with 2."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import click
import typer
import typer.core

from parables import __version__
from parables._redact import redact_text
from parables.cli import render
from parables.cli.render import console
from parables.config import ParablesConfig, load_config
from parables.errors import ParablesError
from parables.run import CorpusPaths, RunDir

app = typer.Typer(
    help="Teach language models why: constitution stories, training arms, honeypot evals.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,  # plain tracebacks for bugs; never dump locals (API keys)
    add_completion=False,
)
models_app = typer.Typer(help="Model access: roles, the embedded model, generation, scoring.",
                         no_args_is_help=True)
app.add_typer(models_app, name="models")
constitution_app = typer.Typer(help="The constitution the stories teach.", no_args_is_help=True)
app.add_typer(constitution_app, name="constitution")
stories_app = typer.Typer(help="Constitution stories: generate, gate, dedup, guard, stats.",
                          no_args_is_help=True)
app.add_typer(stories_app, name="stories")

ConfigOpt = Annotated[
    Path | None, typer.Option("--config", "-c", help="YAML config file", show_default=False)
]
GeneratorOpt = Annotated[str | None, typer.Option(help="generator model (writes stories)")]
JudgeOpt = Annotated[str | None, typer.Option(help="judge model (grades)")]
TargetOpt = Annotated[str | None, typer.Option(help="target model (evaluated)")]
NameOpt = Annotated[str | None, typer.Option("--name", help="run name: output in runs/<name>")]


def _config(
    config: Path | None,
    generator: str | None = None,
    judge: str | None = None,
    target: str | None = None,
    name: str | None = None,
    **extra: Any,
) -> ParablesConfig:
    overrides = {
        "models.generator": generator,
        "models.judge": judge,
        "models.target": target,
        "name": name,
        **extra,
    }
    return load_config(config, overrides)


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


@models_app.command("list")
def models_list(
    config: ConfigOpt = None,
    generator: GeneratorOpt = None,
    judge: JudgeOpt = None,
    target: TargetOpt = None,
) -> None:
    """Show the model each role resolves to, and the model strings parables understands."""
    from parables.models.config import ROLES
    from parables.models.ref import KNOWN_FORMS

    cfg = _config(config, generator, judge, target)
    for role in ROLES:
        spec = getattr(cfg.models, role)
        console.print(redact_text(f"{role}: {spec.model}" + (
            f" at {spec.base_url}" if spec.base_url else "")), highlight=False, markup=False)
    console.print("model strings:")
    for form in KNOWN_FORMS:
        console.print(f"  {form}", highlight=False, markup=False)


@models_app.command("prepare")
def models_prepare() -> None:
    """Convert the embedded model once (GGUF -> safetensors cache); later loads take seconds."""
    from parables.models.embedded import embedded_model_dir

    t0 = time.perf_counter()
    path = embedded_model_dir()
    console.print(f"embedded model ready in {time.perf_counter() - t0:.1f}s: {path}")


@models_app.command("generate")
def models_generate(
    prompt: Annotated[str, typer.Argument(help="user message")],
    role: Annotated[str, typer.Option(help="which role's model answers")] = "target",
    system: Annotated[str | None, typer.Option(help="system message")] = None,
    max_tokens: Annotated[int | None, typer.Option(help="output budget")] = None,
    temperature: Annotated[float | None, typer.Option(help="0 for greedy")] = None,
    config: ConfigOpt = None,
    generator: GeneratorOpt = None,
    judge: JudgeOpt = None,
    target: TargetOpt = None,
    name: NameOpt = None,
) -> None:
    """Ask one role's model a question and print its reply and usage."""
    from inspect_ai.model import ChatMessageSystem, ChatMessageUser

    from parables.models.calls import generate
    from parables.models.resolve import get_role_model

    cfg = _config(config, generator, judge, target, name,
                  **{"generation.max_tokens": max_tokens, "generation.temperature": temperature})
    model = get_role_model(role, cfg)
    messages: list[Any] = [ChatMessageUser(content=prompt)]
    if system:
        messages.insert(0, ChatMessageSystem(content=system))
    with RunDir.of(cfg).stage(f"models.generate.{role}") as st:
        output = asyncio.run(generate(model, messages, role=role, ledger=st.usage))
    console.print(output.completion, markup=False, highlight=False)
    render.usage(st.usage)


@models_app.command("score")
def models_score(
    prompt: Annotated[str, typer.Argument(help="user message (or raw text with --raw)")],
    option: Annotated[list[str], typer.Option("--option", "-o", help="a candidate reply")],
    role: Annotated[str, typer.Option(help="which role's model is scored")] = "target",
    system: Annotated[str | None, typer.Option(help="system message")] = None,
    raw: Annotated[bool, typer.Option(help="score as plain text continuation, no chat")] = False,
    config: ConfigOpt = None,
    generator: GeneratorOpt = None,
    judge: JudgeOpt = None,
    target: TargetOpt = None,
    name: NameOpt = None,
) -> None:
    """Log-probability of each candidate continuation (exact for local models)."""
    from parables.models.config import ROLES
    from parables.models.scoring import Prompt, score_options

    if len(option) < 2:
        raise ParablesError("--option: give at least two candidate continuations")
    if role not in ROLES:
        raise ParablesError(f"--role: unknown role '{role}'; roles: {', '.join(ROLES)}")
    cfg = _config(config, generator, judge, target, name)
    spec = getattr(cfg.models, role)
    messages: Prompt = prompt if raw else (
        ([{"role": "system", "content": system}] if system else [])
        + [{"role": "user", "content": prompt}]
    )
    with RunDir.of(cfg).stage(f"models.score.{role}") as st:
        result = score_options(spec.ref, messages, option, role=role, ledger=st.usage)
    render.option_scores(result)
    render.usage(st.usage)


@constitution_app.command("check")
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


KindOpt = Annotated[str, typer.Option("--kind", help="corpus kind: stories, documents or "
                                               "advice")]


@app.command("generate")
def generate_cmd(
    kind: KindOpt = "stories",
    n: Annotated[int | None, typer.Option("--n", help="texts (default: <kind>.n)")] = None,
    dry_run: Annotated[bool, typer.Option(help="print planned calls, tokens, cost")] = False,
    max_cost: Annotated[float | None, typer.Option(help="USD budget; stops cleanly")] = None,
    against: Annotated[list[Path] | None, typer.Option(
        help="extra JSONL texts to keep out of the corpus")] = None,
    constitution: Annotated[Path | None, typer.Option(help="constitution YAML")] = None,
    brainstorm: Annotated[bool | None, typer.Option(help="LLM premise (idea) per seed")] = None,
    revise: Annotated[bool | None, typer.Option(help="critique -> revise pass")] = None,
    rewrite: Annotated[bool | None, typer.Option(
        help="constitution-aware rewrite of every draft")] = None,
    concurrency: Annotated[int | None, typer.Option(
        help="texts written at once (per worker on Ray)")] = None,
    force: Annotated[bool, typer.Option(help="allow replacing a dataset with an empty one")
                     ] = False,
    engine: Annotated[str | None, typer.Option(
        help="local (one process) or ray (Ray Data; vllm/ writers on GPUs)")] = None,
    address: Annotated[str | None, typer.Option(
        help="Ray cluster to join (default: a local runtime)")] = None,
    workers: Annotated[int | None, typer.Option(help="Ray actors (default: one per CPU)")
                       ] = None,
    config: ConfigOpt = None,
    generator: GeneratorOpt = None,
    judge: JudgeOpt = None,
    name: NameOpt = None,
) -> None:
    """Write a corpus (stories, constitution documents or difficult advice; resumable), then
    gate, dedup and guard it into runs/<name>/<kind>/dataset.jsonl."""
    from parables.generation.kinds import get_kind
    from parables.generation.pipeline import generate_corpus, plan

    get_kind(kind)  # an unknown kind is one line, before anything is read
    cfg = _config(config, generator, judge, None, name, **{
        f"{kind}.n": n, f"{kind}.max_cost": max_cost, f"{kind}.constitution": constitution,
        f"{kind}.brainstorm": brainstorm, f"{kind}.revise": revise,
        f"{kind}.rewrite": rewrite, f"{kind}.concurrency": concurrency,
        f"{kind}.engine": engine, f"{kind}.address": address, f"{kind}.workers": workers,
        f"{kind}.against": [str(p) for p in against] if against else None})
    if dry_run:
        render.corpus_plan(plan(cfg, kind=kind), {r: getattr(cfg.models, r).model
                                                  for r in ("generator", "judge")})
        return
    run = RunDir.of(cfg)
    with run.stage(kind) as st:
        summary = generate_corpus(cfg, kind, ledger=st.usage, spent_before=st.before.spent,
                                  force=force)
        st.artifact = run.corpus(kind).summary
    render.corpus_result(summary)
    render.usage(st.usage)


@stories_app.command("generate")
def stories_generate(
    n: Annotated[int | None, typer.Option("--n", help="stories (default: stories.n)")] = None,
    dry_run: Annotated[bool, typer.Option(help="print planned calls, tokens, cost")] = False,
    max_cost: Annotated[float | None, typer.Option(help="USD budget; stops cleanly")] = None,
    against: Annotated[list[Path] | None, typer.Option(
        help="extra JSONL texts to keep out of the stories")] = None,
    constitution: Annotated[Path | None, typer.Option(help="constitution YAML")] = None,
    brainstorm: Annotated[bool | None, typer.Option(help="LLM premise per seed")] = None,
    revise: Annotated[bool | None, typer.Option(help="critique -> revise pass")] = None,
    rewrite: Annotated[bool | None, typer.Option(
        help="constitution-aware rewrite of every draft")] = None,
    concurrency: Annotated[int | None, typer.Option(help="stories written at once")] = None,
    force: Annotated[bool, typer.Option(help="allow replacing a dataset with an empty one")
                     ] = False,
    config: ConfigOpt = None,
    generator: GeneratorOpt = None,
    judge: JudgeOpt = None,
    name: NameOpt = None,
) -> None:
    """Write stories (resumable), then gate, dedup and guard them into dataset.jsonl (the same
    as `parables generate --kind stories`)."""
    generate_cmd("stories", n, dry_run, max_cost, against, constitution, brainstorm, revise,
                 rewrite, concurrency, force, None, None, None, config, generator, judge, name)


@stories_app.command("export")
def stories_export(
    out: Annotated[Path, typer.Argument(help="directory for the Hugging Face dataset")],
    directory: Annotated[Path | None, typer.Option(help="corpus dir (runs/<name>/<kind>)")]
    = None,
    push_to_hub: Annotated[str | None, typer.Option(help="hub repo id to push to")] = None,
    kind: KindOpt = "stories",
    force: Annotated[bool, typer.Option(help="replace a non-empty output directory")] = False,
    config: ConfigOpt = None,
    name: NameOpt = None,
) -> None:
    """Save dataset.jsonl as a `datasets` dataset with a dataset card (push when asked); any
    corpus kind."""
    from parables.generation.export import export_dataset
    from parables.generation.kinds import get_kind

    get_kind(kind)
    cfg = _config(config, name=name)
    paths = CorpusPaths(directory, kind) if directory else RunDir.of(cfg).corpus(kind)
    path = export_dataset(paths, out, push_to_hub, force)
    console.print(f"dataset saved to {path}" + (f" and pushed to {push_to_hub}"
                                                if push_to_hub else ""))


@stories_app.command("stats")
def stories_stats(
    directory: Annotated[Path | None, typer.Argument(help="corpus dir (runs/<name>/<kind>)")]
    = None,
    kind: KindOpt = "stories",
    config: ConfigOpt = None,
    name: NameOpt = None,
) -> None:
    """Counts per axis, lengths, distinct-n, frequent names/openings, mode-collapse flags (any
    corpus kind)."""
    from parables.generation.kinds import get_kind
    from parables.generation.stats import stats_of

    get_kind(kind)
    cfg = _config(config, name=name)
    render.story_stats(stats_of(CorpusPaths(directory, kind) if directory
                                else RunDir.of(cfg).corpus(kind)), kind)


@app.command("eval")
def eval_cmd(
    model: Annotated[str | None, typer.Option("--model", "--target", help="evaluated")] = None,
    mode: Annotated[str, typer.Option(help="choice or agentic")] = "choice",
    families: Annotated[str | None, typer.Option(help="comma-separated family ids")] = None,
    split: Annotated[str, typer.Option(help="eval or train")] = "eval",
    per_family: Annotated[int | None, typer.Option(help="items per family (default all)")] = None,
    suite: Annotated[
        list[str] | None,
        typer.Option(help="another evaluation (repeatable): a model-written-evaluations "
                          "JSONL (or suite:FILE), prior or prior:FILE (the narrative-prior "
                          "probe), inspect:TASK (a known field task, e.g. "
                          "inspect:inspect_evals/agentic_misalignment)"),
    ] = None,
    judge: JudgeOpt = None,
    tool_format: Annotated[str, typer.Option(help="agentic: auto, native or text")] = "auto",
    explain: Annotated[bool, typer.Option(help="choice: also collect a short reply, for "
                                          "the ethical-reasoning rate")] = False,
    rescore: Annotated[
        Path | None, typer.Option(help="re-judge a saved honeypot log with --judge")
    ] = None,
    config: ConfigOpt = None,
    name: NameOpt = None,
) -> None:
    """Honeypot evaluation: per-family misalignment propensity with 95% intervals."""
    from parables.evaluation.evaluate import configured_judge, evaluate, model_tag
    from parables.evaluation.evaluate import rescore as rescore_log

    cfg = _config(config, judge=judge, target=model, name=name)
    run = RunDir.of(cfg)
    if suite:
        _eval_suites(cfg, suite)
        return
    if rescore is not None:
        if judge is None:
            raise ParablesError("--rescore needs --judge MODEL (the judge that re-grades)")
        with run.stage("eval.rescore") as st:
            results = rescore_log(rescore, cfg.models.judge.model, ledger=st.usage)
        render.honeypot_results(results)
        render.usage(st.usage)
        return
    with run.stage(f"eval.{split}") as st:
        results = evaluate(cfg, cfg.models.target.ref, mode=mode, families=families,
                           split=split, per_family=per_family, judge=configured_judge(cfg),
                           tool_format=tool_format, explain=explain, ledger=st.usage)
    render.honeypot_results(results)
    console.print(f"results: {run.eval(model_tag(results.model)).results}", highlight=False)
    render.usage(st.usage)


def _eval_suites(cfg: ParablesConfig, texts: list[str]) -> None:
    from parables.evaluation.battery import eval_spec, run_eval
    from parables.evaluation.evaluate import model_tag

    specs = [eval_spec(text) for text in texts]  # every input checked before a paid call
    target = cfg.models.target.ref
    run = RunDir.of(cfg)
    with run.stage("eval.suites") as st:
        for spec in specs:
            record = run_eval(cfg, spec, target, run.eval(model_tag(target), name=spec.name),
                              ledger=st.usage)
            render.record(record)
    render.usage(st.usage)


@app.command("train")
def train_cmd(
    arm: Annotated[list[str] | None, typer.Option(
        "--arm", help="stories, documents, advice, refusal, deliberative, mixed, dpo, or parts "
        "joined with + (e.g. documents+stories); repeat for several")] = None,
    model: Annotated[str | None, typer.Option(
        "--model", "--target", help="base model: parables/smollm2-135m, hf/<id or dir>")] = None,
    method: Annotated[str | None, typer.Option(help="lora or full")] = None,
    epochs: Annotated[float | None, typer.Option(help="passes over the data")] = None,
    max_steps: Annotated[int | None, typer.Option(help="stop after N steps")] = None,
    learning_rate: Annotated[float | None, typer.Option("--lr", help="peak rate")] = None,
    batch_size: Annotated[int | None, typer.Option(help="sequences per step")] = None,
    match_tokens: Annotated[str | None, typer.Option(
        help="equal trained tokens per arm: off, smallest (cut to the smallest arm) or budget "
             "(every arm to --token-budget; smaller arms repeat rows)")] = None,
    token_budget: Annotated[int | None, typer.Option(help="cap each arm's tokens")] = None,
    data: Annotated[Path | None, typer.Option(help="your own JSONL for the arm")] = None,
    story_format: Annotated[str | None, typer.Option(help="document or chat")] = None,
    force: Annotated[bool, typer.Option(help="replace an arm trained with another recipe")
                     ] = False,
    config: ConfigOpt = None,
    generator: GeneratorOpt = None,
    name: NameOpt = None,
) -> None:
    """Fine-tune the target on each arm (TRL + PEFT); resumes from the last checkpoint."""
    from parables.models.ref import ModelRef
    from parables.training.trainer import train

    cfg = _config(config, generator, None, model, name, **{
        "training.arms": arm, "training.method": method, "training.epochs": epochs,
        "training.max_steps": max_steps, "training.learning_rate": learning_rate,
        "training.batch_size": batch_size, "training.match_tokens": match_tokens,
        "training.token_budget": token_budget,
        "training.data": str(data) if data else None, "training.story_format": story_format})
    with RunDir.of(cfg).stage("train") as st:
        results = train(cfg, force=force, ledger=st.usage)
    if not results:
        return  # a secondary process under `accelerate launch`; the main one reports
    render.arms(results)
    render.usage(st.usage)
    for a, m in results.items():
        console.print(f"{a}: parables eval --model {ModelRef.weights(Path(m.merged))}",
                      highlight=False, soft_wrap=True)


@app.command("accelerate-config")
def accelerate_config_cmd(
    config: Annotated[str, typer.Argument(help="ddp, fsdp or zero3")],
) -> None:
    """Print the path of a shipped `accelerate` config, for several GPUs:
    accelerate launch --config_file $(parables accelerate-config fsdp) -m parables train ..."""
    from parables.training.accelerate import accelerate_config

    print(accelerate_config(config))


@app.command("run")
def run_cmd(
    experiment: Annotated[Path, typer.Argument(help="experiment YAML (see examples/)")],
    dry_run: Annotated[bool, typer.Option(help="print planned calls, tokens and cost")] = False,
    force: Annotated[bool, typer.Option(help="reuse a run directory that holds another "
                                        "config's results (stages that differ are redone)")
                     ] = False,
    name: NameOpt = None,
) -> None:
    """The whole experiment: stories -> arms -> training -> honeypot eval -> report."""
    cfg = _config(experiment, name=name)
    if dry_run:
        from parables.experiment.plan import describe_training, plan_experiment

        render.experiment_plan(cfg.name, plan_experiment(cfg), describe_training(cfg))
        return
    _run_and_print(cfg, force)


def _run_and_print(cfg: ParablesConfig, force: bool) -> None:
    from parables.experiment.runner import run_experiment

    t0 = time.perf_counter()
    result = run_experiment(cfg, force=force, console=console)
    render.experiment(result, time.perf_counter() - t0)


class _ScanByDefault(typer.core.TyperGroup):
    """`parables audit PATH...` reads as `parables audit scan PATH...`."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ("--help", "-h"):
            args = ["scan", *args]
        result: list[str] = super().parse_args(ctx, args)
        return result


audit_app = typer.Typer(
    cls=_ScanByDefault, no_args_is_help=True,
    help="How a corpus portrays AI characters: scan (the default: `parables audit PATH...`), "
         "annotate a sample with an LLM judge, fit the classifier on those labels.")
app.add_typer(audit_app, name="audit")

PathsArg = Annotated[list[str], typer.Argument(
    help="JSONL / JSONL.gz / Parquet / text files, or hf:<dataset>[:<config>]")]
FieldOpt = Annotated[str, typer.Option(help="the text field (JSONL, Parquet, HF)")]
SplitOpt = Annotated[str, typer.Option(help="split of an hf: dataset")]
TermsOpt = Annotated[Path | None, typer.Option(help="YAML of AI-mention terms")]
FirstPassOpt = Annotated[str, typer.Option(
    help="both (keywords + detector), detector (finds AIs no keyword names) or keywords")]
MaxDocsOpt = Annotated[int | None, typer.Option(help="stop after N documents")]
OutOpt = Annotated[Path | None, typer.Option(help="output dir (default runs/<name>/audit)")]


def _audit_options(model: Any, what: str, **values: Any) -> Any:
    from pydantic import ValidationError

    from parables.config import validation_message

    try:
        return model(**values)
    except ValidationError as e:
        raise ParablesError(validation_message(e, what, None, model)) from e


@audit_app.command("scan")
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

    cfg = _config(None, name=name)
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


@audit_app.command("annotate")
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

    cfg = _config(None, name=name)
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


@audit_app.command("fit")
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

    cfg = _config(None, name=name)
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


@app.command()
def demo(
    name: Annotated[str, typer.Option(help="run name: output in runs/<name>")] = "demo",
    force: Annotated[bool, typer.Option(help="reuse a run directory of another config")
                     ] = False,
) -> None:
    """The whole experiment on the embedded model at laptop scale (no key, GPU or network)."""
    from parables.experiment.demo import demo_config

    cfg = demo_config(name)
    console.print("parables demo: stories -> model organism -> training arms -> honeypots "
                  "and prior probe -> report, on the embedded 135M model (about 11 minutes "
                  "on 2 CPU cores)")
    _run_and_print(cfg, force)


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
