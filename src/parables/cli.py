"""The `parables` command: a thin typer layer that parses options, calls one library function
per command and prints. Errors a user can fix print one line and exit with 2."""

from __future__ import annotations

import asyncio
import os
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import click
import typer
from rich.console import Console
from rich.table import Table

from parables import __version__
from parables.config import ParablesConfig, load_config
from parables.errors import ParablesError
from parables.models.usage import UsageLedger

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

console = Console()

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


def print_usage(ledger: UsageLedger) -> None:
    """The per-role usage table every model-using command ends with."""
    if not ledger.roles:
        return
    table = Table(title="model usage", title_justify="left")
    for col in ("role", "model", "calls", "errors", "input tok", "output tok", "cost"):
        table.add_column(col, justify="right" if col not in ("role", "model") else "left")
    for role, u in sorted(ledger.roles.items()):
        cost = f"${u.cost:.4f}" if u.cost is not None else "-"
        table.add_row(role, u.model, str(u.calls), str(u.errors), f"{u.input_tokens:,}",
                      f"{u.output_tokens:,}", cost)
    console.print(table)


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
    from parables.models.resolve import KNOWN_FORMS, ROLES

    cfg = _config(config, generator, judge, target)
    table = Table(title="roles", title_justify="left")
    table.add_column("role")
    table.add_column("model")
    table.add_column("base url")
    for role in ROLES:
        spec = getattr(cfg.models, role)
        table.add_row(role, spec.model, spec.base_url or "-")
    console.print(table)
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

    from parables.manifest import stage
    from parables.models.resolve import generate, get_role_model

    cfg = _config(config, generator, judge, target, name,
                  **{"generation.max_tokens": max_tokens, "generation.temperature": temperature})
    model = get_role_model(role, cfg)
    messages: list[Any] = [ChatMessageUser(content=prompt)]
    if system:
        messages.insert(0, ChatMessageSystem(content=system))
    with stage(cfg, f"models.generate.{role}") as st:
        output = asyncio.run(generate(model, messages, role=role, ledger=st.usage))
    console.print(output.completion, markup=False, highlight=False)
    print_usage(st.usage)


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
    from parables.manifest import stage
    from parables.models.resolve import ROLES
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
    with stage(cfg, f"models.score.{role}") as st:
        result = score_options(spec.model, messages, option, role=role, ledger=st.usage)
    table = Table(title=f"option scores ({result.method})", title_justify="left")
    for col in ("option", "logprob", "per token", "tokens", "p (renormalised)"):
        table.add_column(col, justify="left" if col == "option" else "right")
    for s, p in zip(result.scores, result.probabilities(), strict=True):
        table.add_row(s.option, f"{s.logprob:.3f}", f"{s.mean_logprob:.3f}",
                      str(len(s.token_logprobs)), f"{p:.3f}")
    console.print(table)
    console.print(result.note, style="dim", highlight=False)
    print_usage(st.usage)


@constitution_app.command("check")
def constitution_check(
    file: Annotated[Path | None, typer.Argument(help="YAML file (default: the shipped one)")]
    = None,
) -> None:
    """Validate a constitution and summarise it."""
    from parables.constitution import default_constitution_path, load_constitution

    c = load_constitution(file)
    table = Table(title=f"{c.name} ({file or default_constitution_path()})",
                  title_justify="left")
    for col in ("principle", "title", "why (words)", "examples"):
        table.add_column(col)
    for p in c.principles:
        table.add_row(p.id, p.title, str(len(p.why.split())), str(len(p.examples)))
    console.print(table)
    console.print(f"{len(c.principles)} principles, {len(c.themes)} themes: "
                  + ", ".join(t.id for t in c.themes), highlight=False)


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
    concurrency: Annotated[int | None, typer.Option(help="stories written at once")] = None,
    config: ConfigOpt = None,
    generator: GeneratorOpt = None,
    judge: JudgeOpt = None,
    name: NameOpt = None,
) -> None:
    """Write stories (resumable), then gate, dedup and guard them into dataset.jsonl."""
    from parables.manifest import stage
    from parables.stories.pipeline import generate_stories, plan, read_jsonl

    cfg = _config(config, generator, judge, None, name, **{
        "stories.max_cost": max_cost, "stories.constitution": constitution,
        "stories.brainstorm": brainstorm, "stories.revise": revise,
        "stories.concurrency": concurrency,
        "stories.against": [str(p) for p in against] if against else None})
    if dry_run:
        out = cfg.run_dir / "stories"
        done = len(read_jsonl(out / "stories.jsonl")) + len(read_jsonl(out / "rejected.jsonl"))
        p = plan(cfg, n or cfg.stories.n, done)
        table = Table(title=f"plan: {p.stories} stories to write", title_justify="left")
        for col in ("role", "model", "calls", "input tok", "output tok", "est. cost"):
            table.add_column(col, justify="left" if col in ("role", "model") else "right")
        for role in ("generator", "judge"):
            cost = p.cost[role]
            table.add_row(role, getattr(cfg.models, role).model, str(p.calls[role]),
                          f"{p.input_tokens[role]:,}", f"{p.output_tokens[role]:,}",
                          "unknown (set stories.prices)" if cost is None else f"${cost:,.2f}")
        console.print(table)
        return
    with stage(cfg, "stories") as st:
        summary = generate_stories(cfg, n=n, ledger=st.usage)
        st.info["summary"] = summary
    console.print(
        f"dataset: {summary['dataset']} stories ({summary['rejected']} rejected, "
        f"{summary['duplicates']} duplicates, {summary['contaminated']} contaminated, "
        f"{summary['failed_pending']} failed — rerun to retry) -> {summary['out']}")
    if summary["budget_stopped"]:
        console.print(f"stopped at the budget: ${summary['spent_usd']:.2f} spent")
    for flag in summary["flags"]:
        console.print(f"mode collapse: {flag}", style="yellow", highlight=False)
    print_usage(st.usage)


@stories_app.command("export")
def stories_export(
    out: Annotated[Path, typer.Argument(help="directory for the Hugging Face dataset")],
    directory: Annotated[Path | None, typer.Option(help="stories dir")] = None,
    push_to_hub: Annotated[str | None, typer.Option(help="hub repo id to push to")] = None,
    config: ConfigOpt = None,
    name: NameOpt = None,
) -> None:
    """Save dataset.jsonl as a `datasets` dataset with a dataset card (push when asked)."""
    from parables.stories.export import export_dataset

    cfg = _config(config, name=name)
    path = export_dataset(directory or cfg.run_dir / "stories", out, push_to_hub)
    console.print(f"dataset saved to {path}" + (f" and pushed to {push_to_hub}"
                                                if push_to_hub else ""))


@stories_app.command("stats")
def stories_stats(
    directory: Annotated[Path | None, typer.Argument(help="stories dir (runs/<name>/stories)")]
    = None,
    config: ConfigOpt = None,
    name: NameOpt = None,
) -> None:
    """Counts per axis, lengths, distinct-n, frequent names/openings, mode-collapse flags."""
    from parables.stories.pipeline import read_jsonl
    from parables.stories.stats import story_stats

    cfg = _config(config, name=name)
    out = directory or cfg.run_dir / "stories"
    if not (out / "dataset.jsonl").is_file():
        raise ParablesError(f"{out}: no dataset.jsonl; run `parables stories generate` first")
    s = story_stats(read_jsonl(out / "dataset.jsonl"), read_jsonl(out / "rejected.jsonl"))
    console.print(f"{s['stories']} stories, {s['rejected']} rejected; words mean "
                  f"{s['words']['mean']:.0f} (min {s['words']['min']}, max {s['words']['max']}); "
                  f"distinct-1 {s['distinct_1']:.3f}, distinct-2 {s['distinct_2']:.3f}")
    for axis, counts in s["per_axis"].items():
        console.print(f"{axis}: " + ", ".join(f"{k} {v}" for k, v in counts.items()),
                      highlight=False)
    console.print("top names: " + ", ".join(f"{k} {v}" for k, v in s["top_names"]))
    console.print("top openings: " + " | ".join(f"{k[:50]!r} {v}" for k, v in
                                               s["top_openings"]), highlight=False)
    console.print("rejections: " + (", ".join(f"{k} {v}" for k, v in
                                              s["rejection_reasons"].items()) or "none"))
    for flag in s["flags"]:
        console.print(f"mode collapse: {flag}", style="yellow", highlight=False)


@app.command("eval")
def eval_cmd(
    model: Annotated[str | None, typer.Option("--model", "--target", help="evaluated")] = None,
    mode: Annotated[str, typer.Option(help="choice or agentic")] = "choice",
    families: Annotated[str | None, typer.Option(help="comma-separated family ids")] = None,
    split: Annotated[str, typer.Option(help="eval or train")] = "eval",
    per_family: Annotated[int | None, typer.Option(help="items per family (default all)")] = None,
    suite: Annotated[
        list[Path] | None,
        typer.Option(help="model-written-evaluations JSONL, or 'prior' for the "
                          "narrative-prior probe (repeatable)"),
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
    from parables.honeypots.evaluate import evaluate
    from parables.honeypots.evaluate import rescore as rescore_log
    from parables.manifest import stage

    cfg = _config(config, judge=judge, target=model, name=name)
    if suite:
        _eval_suites(cfg, suite)
        return
    if rescore is not None:
        if judge is None:
            raise ParablesError("--rescore needs --judge MODEL (the judge that re-grades)")
        with stage(cfg, "eval.rescore") as st:
            results = rescore_log(rescore, cfg.models.judge.model, ledger=st.usage)
        print_results(results)
        print_usage(st.usage)
        return
    judged_by = cfg.models.judge.model if (judge or "judge" in cfg.models.model_fields_set) \
        else None
    with stage(cfg, f"eval.{split}") as st:
        results = evaluate(cfg, cfg.models.target.model, mode=mode, families=families,
                           split=split, per_family=per_family, judge=judged_by,
                           tool_format=tool_format, explain=explain, ledger=st.usage)
        st.info["results"] = {k: v for k, v in results.items() if k != "items"}
    print_results(results)
    console.print(f"results: {Path(results['log']).parent.parent / 'results.json'}")
    print_usage(st.usage)


def _eval_suites(cfg: ParablesConfig, paths: list[Path]) -> None:
    from parables.honeypots.prior import evaluate_prior
    from parables.honeypots.suites import evaluate_suite
    from parables.manifest import stage

    table = Table(title=f"external suites: {cfg.models.target.model}", title_justify="left")
    for col in ("suite", "n", "matching", "rate [95% CI]", "mean P(matching) [95% CI]"):
        table.add_column(col, justify="left" if col == "suite" else "right")
    with stage(cfg, "eval.suites") as st:
        for path in paths:
            if str(path) == "prior" and not path.exists():
                _print_prior(evaluate_prior(cfg.models.target.model, ledger=st.usage))
                continue
            r = evaluate_suite(cfg.models.target.model, path, ledger=st.usage)
            st.info.setdefault("suites", []).append(r)
            lo, hi = r["matching_rate_ci"]
            mlo, mhi = r["mean_p_matching_ci"]
            table.add_row(path.name, str(r["n"]), str(r["matching"]),
                          f"{r['matching_rate']:.2f} [{lo:.2f}, {hi:.2f}]",
                          f"{r['mean_p_matching']:.3f} [{mlo:.3f}, {mhi:.3f}]")
    if table.row_count:
        console.print(table)
    print_usage(st.usage)


def _print_prior(r: dict[str, Any]) -> None:
    lo, hi = r["trope_rate_ci"]
    table = Table(title=f"narrative-prior probe: {r['model']} ({r['method']})",
                  title_justify="left")
    for col in ("openings", "prefers the evil-AI trope [95% CI]", "mean P(trope)",
                "mean P(trope), per token"):
        table.add_column(col, justify="right")
    table.add_row(str(r["n"]), f"{r['prefers_trope']} = {r['trope_rate']:.2f} "
                  f"[{lo:.2f}, {hi:.2f}]", "{:.3f} [{:.3f}, {:.3f}]".format(
                      r["mean_p_trope"], *r["mean_p_trope_ci"]),
                  "{:.3f} [{:.3f}, {:.3f}]".format(r["mean_p_trope_per_token"],
                                                   *r["mean_p_trope_per_token_ci"]))
    console.print(table)


def _interval(p: float, lo: float, hi: float) -> str:
    return "n/a (no decided items)" if p != p else f"{p:.2f} [{lo:.2f}, {hi:.2f}]"


def print_results(results: dict[str, Any]) -> None:
    """Per-family propensity table (Wilson 95% CI) and mean misaligned probability."""
    table = Table(title=f"honeypots ({results['mode']}, {results['split']} split): "
                  f"{results['model']}", title_justify="left")
    choice = results["mode"] == "choice"
    width = max(len(f) for f in [*results["by_family"], "overall"])
    table.add_column("family", no_wrap=True, min_width=width)
    for col in ("n", "mis/ali/ref", "inv", "err", "propensity [95% CI]",
                "mean P(mis) [95% CI]" if choice else "ethical reasoning"):
        table.add_column(col, justify="right")
    rows = [*results["by_family"].items(), ("overall", results["overall"])]
    for family, g in rows:
        lo, hi = g["propensity_ci"]
        if choice:
            mlo, mhi = g["mean_p_misaligned_ci"]
            last = f"{g['mean_p_misaligned']:.3f} [{mlo:.3f}, {mhi:.3f}]"
        else:
            last = f"{g['ethical_reasoning_rate']:.2f} (n={g['ethical_reasoning_n']})"
        table.add_row(family, str(g["n_samples"]),
                      f"{g['misaligned']}/{g['aligned']}/{g['refused']}", str(g["invalid"]),
                      str(g["error"]), _interval(g["propensity"], lo, hi), last,
                      style="bold" if family == "overall" else None)
    console.print(table)
    overall = results["overall"]
    if choice and overall["ethical_reasoning_n"]:
        console.print(f"ethical reasoning in replies: {overall['ethical_reasoning_rate']:.2f} "
                      f"(n={overall['ethical_reasoning_n']})")


@app.command("train")
def train_cmd(
    arm: Annotated[list[str] | None, typer.Option(
        "--arm", help="stories, refusal, deliberative or mixed (repeat for several)")] = None,
    model: Annotated[str | None, typer.Option(
        "--model", "--target", help="base model: parables/smollm2-135m, hf/<id or dir>")] = None,
    method: Annotated[str | None, typer.Option(help="lora or full")] = None,
    epochs: Annotated[float | None, typer.Option(help="passes over the data")] = None,
    max_steps: Annotated[int | None, typer.Option(help="stop after N steps")] = None,
    learning_rate: Annotated[float | None, typer.Option("--lr", help="peak rate")] = None,
    batch_size: Annotated[int | None, typer.Option(help="sequences per step")] = None,
    match_tokens: Annotated[bool | None, typer.Option(
        help="subsample the arms to equal trained tokens")] = None,
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
    from parables.manifest import stage
    from parables.training import train

    cfg = _config(config, generator, None, model, name, **{
        "training.arms": arm, "training.method": method, "training.epochs": epochs,
        "training.max_steps": max_steps, "training.learning_rate": learning_rate,
        "training.batch_size": batch_size, "training.match_tokens": match_tokens,
        "training.token_budget": token_budget,
        "training.data": str(data) if data else None, "training.story_format": story_format})
    with stage(cfg, "train") as st:
        results = train(cfg, force=force, ledger=st.usage)
        if not all(results.values()):
            return  # a secondary process under `accelerate launch`; the main one reports
        st.info["arms"] = {a: {k: m.get(k) for k in ("spec_hash", "data", "steps", "train_loss",
                                                       "outputs", "skipped")}
                           for a, m in results.items()}
    table = Table(title="training arms", title_justify="left")
    for col in ("arm", "examples", "trained tok", "truncated", "steps", "final loss"):
        table.add_column(col, justify="left" if col == "arm" else "right")
    for a, m in results.items():
        d = m["data"]
        loss = m["loss_history"][-1][1] if m.get("loss_history") else float("nan")
        table.add_row(a + (" (done before)" if m.get("skipped") else ""), str(d["examples"]),
                      f"{d['trained_tokens']:,}", str(d["truncated"]), str(m["steps"]),
                      f"{loss:.3f}")
    console.print(table)
    for a, m in results.items():
        for note in m["data"]["notes"]:
            console.print(f"{a}: {note}", highlight=False)
    print_usage(st.usage)
    for a, m in results.items():
        console.print(f"{a}: parables eval --model hf/{m['outputs']['merged']}",
                      highlight=False, soft_wrap=True)


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
        print_plan(cfg)
        return
    _run_and_print(cfg, force)


def print_plan(cfg: ParablesConfig) -> None:
    from parables.experiment.runner import plan_experiment

    rows = plan_experiment(cfg)
    table = Table(title=f"plan for {cfg.name}", title_justify="left")
    for col in ("stage", "role", "model", "calls", "input tok", "output tok", "est. cost"):
        table.add_column(col, justify="left" if col in ("stage", "role", "model") else "right")
    for r in rows:
        table.add_row(r["stage"], r["role"], r["model"], f"{r['calls']:,}",
                      f"{r['input_tokens']:,}", f"{r['output_tokens']:,}",
                      "unknown (set stories.prices)" if r["cost"] is None else f"${r['cost']:,.2f}")
    console.print(table)
    known = [r["cost"] for r in rows if r["cost"] is not None]
    unknown = any(r["cost"] is None for r in rows)
    console.print(f"estimated API cost: ${sum(known):,.2f}" + (" + unknown-priced calls"
                                                                if unknown else ""))
    arms = [a for a in cfg.experiment.arms if a != "baseline"]
    seeds = len(cfg.experiment.seeds or [cfg.seed])
    console.print(f"training: {len(arms)} arm(s) x {seeds} seed(s) x {cfg.experiment.rounds} "
                  f"round(s) of {cfg.training.method} on {cfg.models.target.model} (local "
                  "compute, not priced)", highlight=False)


def _run_and_print(cfg: ParablesConfig, force: bool) -> None:
    from parables.experiment.report import headline_rows
    from parables.experiment.runner import run_experiment

    t0 = time.perf_counter()
    result = run_experiment(cfg, force=force, console=console)
    if not result.report:
        console.print(f"stages {', '.join(cfg.experiment.stages)} done -> {result.run_dir}")
        return
    comp = result.comparison
    table = Table(title="headline (paired against the baseline)", title_justify="left")
    for col in ("arm", "propensity [95% CI]", "reduction [95% CI]", "p", "ethical reasoning",
                "train tokens"):
        table.add_column(col, justify="left" if col == "arm" else "right")
    for row in headline_rows(comp, result.tokens):
        table.add_row(*row)
    console.print(table)
    for arm, a in comp["arms"].items():
        if "vs_baseline" in a:
            console.print(f"{arm}: {a['vs_baseline']['verdict']}", highlight=False)
    print_usage(result.usage)
    if result.skipped:
        console.print(f"done before, skipped: {', '.join(result.skipped)}", highlight=False)
    console.print(f"report: {result.report['html']} (and report.md)  "
                  f"[{time.perf_counter() - t0:.0f}s]", highlight=False, soft_wrap=True)


@app.command("audit")
def audit_cmd(
    paths: Annotated[list[str], typer.Argument(
        help="JSONL / JSONL.gz / Parquet / text files, or hf:<dataset>[:<config>]")],
    field: Annotated[str, typer.Option(help="the text field (JSONL, Parquet, HF)")] = "text",
    split: Annotated[str, typer.Option(help="split of an hf: dataset")] = "train",
    terms: Annotated[Path | None, typer.Option(help="YAML of AI-mention terms")] = None,
    target_ratio: Annotated[str | None, typer.Option(
        help="aligned:misaligned ratio to reach, e.g. 1:1 (prints the rebalancing plan)")
                            ] = None,
    stories: Annotated[Path | None, typer.Option(
        help="story dataset.jsonl whose mean length sizes the plan")] = None,
    story_tokens: Annotated[float | None, typer.Option(help="tokens per added story")] = None,
    judge: Annotated[str | None, typer.Option(help="LLM judge to calibrate on a sample")] = None,
    judge_sample: Annotated[int, typer.Option(help="candidates the judge labels")] = 100,
    checkpoint_every: Annotated[int, typer.Option(help="documents between checkpoints")
                                ] = 1000,
    max_docs: Annotated[int | None, typer.Option(help="stop after N documents")] = None,
    out: Annotated[Path | None, typer.Option(help="output dir (default runs/<name>/audit)")
                   ] = None,
    name: NameOpt = None,
) -> None:
    """How a corpus portrays AI characters, and how many prosocial stories rebalance it."""
    from parables.audit.scan import AuditConfig, audit_corpus

    cfg = _config(None, name=name)
    ratio = _ratio(target_ratio) if target_ratio else None
    tokens = story_tokens or (_mean_story_tokens(stories) if stories else None)
    result = audit_corpus(AuditConfig(
        paths=paths, out=out or cfg.run_dir / "audit", field=field, split=split, terms=terms,
        target_ratio=ratio, story_tokens=tokens, judge=judge, judge_sample=judge_sample,
        checkpoint_every=checkpoint_every, max_docs=max_docs))
    table = Table(title=f"AI portrayals in {result['documents']:,} documents "
                  f"({result['candidates']:,} candidate passages)", title_justify="left")
    for col in ("label", "passages", "rate [95% CI]"):
        table.add_column(col, justify="left" if col == "label" else "right")
    for label, v in result["labels"].items():
        table.add_row(label, f"{v['count']:,}", _interval(v["rate"], *v["ci"]))
    console.print(table)
    top = sorted(result["tropes"].items(), key=lambda kv: -kv[1]["count"])[:6]
    console.print("tropes: " + ", ".join(f"{k} {v['count']:,}" for k, v in top if v["count"]),
                  highlight=False)
    if result["skipped"]:
        console.print("skipped: " + ", ".join(f"{k} {v}" for k, v in result["skipped"].items()),
                      style="yellow", highlight=False)
    if "plan" in result:
        p = result["plan"]
        console.print(f"rebalancing to {p['target_ratio']} (aligned:misaligned, now "
                      f"{p['aligned']}:{p['misaligned']}): add {p['stories_needed']:,} prosocial "
                      f"stories, ~{p['tokens_needed']:,} tokens", highlight=False)
    console.print(f"report: {(out or cfg.run_dir / 'audit') / 'audit.md'}", highlight=False)


def _ratio(text: str) -> tuple[int, int]:
    parts = text.split(":")
    if len(parts) != 2 or not all(p.strip().isdigit() and int(p) > 0 for p in parts):
        raise ParablesError(f"--target-ratio '{text}': expected aligned:misaligned as two "
                            "positive whole numbers, e.g. 1:1 or 3:1")
    return int(parts[0]), int(parts[1])


def _mean_story_tokens(path: Path) -> float:
    from parables.stories.pipeline import read_jsonl

    rows = read_jsonl(path) if path.is_file() else []
    if not rows:
        raise ParablesError(f"{path}: no stories to size the plan (a stories dataset.jsonl)")
    counts = [(r.get("tokens") or {}).get("output") or len(r["text"].split()) * 1.35
              for r in rows]
    return float(sum(counts) / len(counts))


@app.command()
def demo(
    name: Annotated[str, typer.Option(help="run name: output in runs/<name>")] = "demo",
    force: Annotated[bool, typer.Option(help="reuse a run directory of another config")
                     ] = False,
) -> None:
    """The whole experiment on the embedded model at laptop scale (no key, GPU or network)."""
    from parables.experiment.demo import demo_config

    cfg = demo_config(name)
    console.print("parables demo: stories -> training arms -> honeypot eval -> report, on the "
                  "embedded 135M model (about 10-15 minutes on 2 CPU cores)")
    _run_and_print(cfg, force)


# typer >= 0.29 vendors its own click, whose usage errors are not click.ClickException
_TYPER_CLICK_ERROR: type[click.ClickException] = next(
    c for c in typer.BadParameter.__mro__ if c.__name__ == "ClickException")


def main() -> None:
    """Entry point: user errors -> one line on stderr and exit 2; bugs keep tracebacks."""
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")  # our own bars say enough
    try:
        app(standalone_mode=False)
    except ParablesError as e:
        sys.stderr.write(f"parables: error: {e}\n")
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
