"""`parables run experiment.yaml`: stories -> arm data -> training -> honeypot eval -> report.

Everything lands in `runs/<name>/`. Each stage records a key (a hash of what it depends on)
in the run's ledger (`manifest.json`); a rerun skips a stage whose outputs exist under the same
key, and the stages resume themselves after a kill (stories are appended one by one, training
restarts from its last checkpoint). A run directory holding another config's results is refused
unless `force`, so nothing is overwritten silently.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console

from parables._io import digest, read_jsonl
from parables.config import ParablesConfig, RoleModel, config_hash, stable_name
from parables.errors import ParablesError
from parables.evaluation.evaluate import ItemResult, read_results
from parables.experiment.analysis import Comparison
from parables.models.ref import ModelRef
from parables.models.usage import UsageLedger, cost_of, price_of
from parables.run import RunDir, package_versions

__all__ = ["ExperimentResult", "PlanRow", "describe_training", "plan_experiment",
           "run_experiment"]


@dataclass
class ExperimentResult:
    run_dir: Path
    comparison: Comparison | None = None
    report: dict[str, Path] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)
    usage: UsageLedger = field(default_factory=UsageLedger)
    tokens: dict[str, int] = field(default_factory=dict)  # trained tokens per arm


def _stories_key(cfg: ParablesConfig) -> str:
    parts = (cfg.stories, cfg.models.generator, cfg.models.judge, cfg.generation)
    return digest([[p.model_dump(mode="json", fallback=stable_name) for p in parts], cfg.seed])


def _seed_configs(config: ParablesConfig) -> list[ParablesConfig]:
    seeds = config.experiment.seeds or [config.seed]
    if len(seeds) == 1:
        return [config.model_copy(update={"seed": seeds[0]})]
    run = RunDir.of(config)
    stories = config.training.stories or run.stories.dataset
    return [run.seed(s).configure(config, seed=s, training=config.training.model_copy(
        update={"stories": stories})) for s in seeds]


def _arms(config: ParablesConfig) -> list[str]:
    return [a for a in config.experiment.arms if a != "baseline"]


def _needs_stories(config: ParablesConfig) -> bool:
    return config.training.data is None and any(a in ("stories", "mixed") for a in _arms(config))


def run_experiment(
    config: ParablesConfig,
    *,
    force: bool = False,
    progress: bool = True,
    console: Console | None = None,
) -> ExperimentResult:
    """Run (or resume) the whole experiment; returns the comparison and the report paths."""
    from parables.honeypots.build import build_items
    from parables.training.sft import base_weights

    console = console or Console()
    exp = config.experiment
    if "baseline" not in exp.arms:
        raise ParablesError("experiment.arms must include baseline: every arm is compared "
                            "with the untrained target")
    if exp.families:
        build_items("eval", families=exp.families)  # unknown family -> one clear line
    if _arms(config) and "train" in exp.stages:
        base_weights(config)  # a target that cannot be trained: before any story is paid for
    if _arms(config) and "eval" in exp.stages and "train" not in exp.stages:
        for cfg in _seed_configs(config):  # evaluating arms trained before: they must exist
            for arm in _arms(config):
                merged = RunDir.of(cfg).arm(arm).merged
                if not merged.is_dir():
                    raise ParablesError(f"eval: arm '{arm}' has no trained model at {merged}; "
                                        "add the train stage to experiment.stages")
    run = RunDir.of(config)
    with run.lock("parables run"):
        run.claim(force)
        return _run(config, run, console, progress)


def _run(config: ParablesConfig, run: RunDir, console: Console, progress: bool
         ) -> ExperimentResult:
    exp = config.experiment
    result = ExperimentResult(run.root)
    rounds: list[RoundResult] = []
    runs: dict[str, list[list[ItemResult]]] = {}
    if _needs_stories(config) and "stories" in exp.stages:
        _stories_stage(config, result, console, progress)
    seed_cfgs = _seed_configs(config)
    if _arms(config) and "train" in exp.stages:
        for cfg in seed_cfgs:
            _train_stage(config, cfg, result, console, progress, len(seed_cfgs) > 1)
    if "eval" in exp.stages or "report" in exp.stages:
        runs = _eval_stage(config, seed_cfgs, result, console, progress,
                           run_eval="eval" in exp.stages)
    if exp.rounds > 1:
        rounds = _rounds(config, result, console, progress)
    if "report" in exp.stages:
        _report(config, runs, seed_cfgs, rounds, result)
    return result


def _stories_stage(config: ParablesConfig, result: ExperimentResult, console: Console,
                   progress: bool) -> None:
    from parables.generation.pipeline import generate_stories

    run = RunDir.of(config)
    key = _stories_key(config)
    if run.done("stories", key) and run.stories.dataset.is_file():
        result.skipped.append("stories")
        console.print("stories: done before, skipped")
        return
    console.print(f"stories: writing {config.stories.n} with "
                  f"{config.models.generator.model}")
    with run.stage("stories", key) as st:
        summary = generate_stories(config, ledger=st.usage, spent_before=st.before.spent,
                                   progress=progress)
        st.artifact = run.stories.summary
        result.usage.merge(st.usage)
        if summary.dataset == 0:
            raise ParablesError(
                f"stories: none of the {summary.accepted + summary.rejected} stories passed "
                f"the quality gate, dedup and contamination guard; see {run.stories.rejected}"
                " (a more capable generator, or stories.lengths: [short] with the embedded "
                "model)")
    console.print(f"stories: {summary.dataset} in the dataset ({summary.rejected} "
                  f"rejected, {summary.duplicates} duplicates, {summary.contaminated} "
                  "contaminated)")


def _train_stage(config: ParablesConfig, cfg: ParablesConfig, result: ExperimentResult,
                 console: Console, progress: bool, tagged: bool) -> None:
    """Train every arm for one seed (`cfg`); recorded in the experiment's ledger."""
    from parables.training.sft import train

    arms = _arms(cfg)
    cfg = cfg.model_copy(update={"training": cfg.training.model_copy(update={"arms": arms})})
    label = f"train (seed {cfg.seed})" if tagged else "train"
    with RunDir.of(config).stage(f"train:seed-{cfg.seed}" if tagged else "train") as st:
        trained = train(cfg, arms, progress=progress, ledger=st.usage)
        st.key = digest({a: m.spec_hash for a, m in trained.items()})
        result.usage.merge(st.usage)
    for arm, m in trained.items():
        if m.skipped:
            result.skipped.append(f"train:{arm}")
        console.print(f"{label}: {arm} {'done before, skipped' if m.skipped else 'done'}"
                      f" ({m.data.trained_tokens:,} trained tokens, {m.steps} steps)")


def _eval_targets(config: ParablesConfig, seed_cfgs: list[ParablesConfig]
                  ) -> list[tuple[str, int, ModelRef, str]]:
    """(arm label, seed, model, recipe hash) for the baseline and every trained arm."""
    from parables.training.sft import spec_hash_of

    targets = [("baseline", config.seed, config.models.target.ref, "base")]
    for cfg in seed_cfgs:
        for arm in _arms(config):
            paths = RunDir.of(cfg).arm(arm)
            targets.append((arm, cfg.seed, ModelRef.weights(paths.merged),
                            spec_hash_of(paths) or ""))
    return targets


def _eval_stage(config: ParablesConfig, seed_cfgs: list[ParablesConfig],
                result: ExperimentResult, console: Console, progress: bool, run_eval: bool
                ) -> dict[str, list[list[ItemResult]]]:
    from parables.evaluation.evaluate import evaluate
    from parables.progress import progress_bar

    exp = config.experiment
    run = RunDir.of(config)
    judge = config.models.judge.ref if exp.judge else None
    settings = {k: getattr(exp, k) for k in ("mode", "per_family", "families", "explain")}
    targets = _eval_targets(config, seed_cfgs)
    runs: dict[str, list[list[ItemResult]]] = {}
    with progress_bar(progress, console=console) as bar:
        task = bar.add_task("eval", total=len(targets), status="")
        for arm, seed, model, spec in targets:
            tag = arm if arm == "baseline" or len(seed_cfgs) == 1 else f"{arm}-seed-{seed}"
            key = digest([str(model), spec, settings, judge and str(judge), config.seed])
            saved = read_results(run.eval(tag))
            if run.done(f"eval:{tag}", key) and saved is not None:
                result.skipped.append(f"eval:{tag}")
                results = saved
            elif not run_eval:
                raise ParablesError(f"eval: no results for {tag} under this config; add the "
                                    "eval stage to experiment.stages")
            else:
                if arm != "baseline" and not Path(model.name).is_dir():
                    raise ParablesError(f"eval: arm '{arm}' has no trained model at "
                                        f"{model.name}; add the train stage to "
                                        "experiment.stages")
                bar.update(task, description=f"eval {tag}")
                with run.stage(f"eval:{tag}", key) as st:
                    results = evaluate(config, model, mode=exp.mode, families=exp.families,
                                       per_family=exp.per_family, judge=judge,
                                       explain=exp.explain, ledger=st.usage, display="none",
                                       tag=tag)
                    st.artifact = run.eval(tag).results
                    result.usage.merge(st.usage)
            runs.setdefault(arm, []).append(results.items)
            bar.advance(task)
    return runs


def _report(config: ParablesConfig, runs: dict[str, list[list[ItemResult]]],
            seed_cfgs: list[ParablesConfig], rounds: list[RoundResult],
            result: ExperimentResult) -> None:
    from parables.experiment.analysis import compare_arms
    from parables.experiment.report import ReportData, write_report
    from parables.generation.stats import StoryStats
    from parables.training.sft import read_arm

    exp = config.experiment
    run = RunDir.of(config)
    comparison = compare_arms(runs, alpha=exp.alpha, n_boot=exp.n_boot, seed=config.seed)
    tokens: dict[str, int] = {"baseline": 0}
    losses: dict[str, list[tuple[int, float]]] = {}
    for cfg in seed_cfgs:
        for arm in _arms(config):
            m = read_arm(RunDir.of(cfg).arm(arm))
            if m is not None:
                tokens[arm] = tokens.get(arm, 0) + m.data.trained_tokens
                losses[arm if len(seed_cfgs) == 1 else f"{arm} (seed {cfg.seed})"] = \
                    m.loss_history
    stories = None
    if run.stories.stats.is_file():
        stories = StoryStats.model_validate_json(run.stories.stats.read_text(encoding="utf-8"))
    notes = []
    if config.models.target.ref.embedded:
        notes.append("The embedded 135M model sits near chance on honeypots; at this scale "
                     "the demo shows the machinery, not the published effect.")
    first = next(iter(runs.values()))[0] if runs else []
    data = ReportData(
        name=config.name, config_hash=config_hash(config), comparison=comparison,
        mode=exp.mode, items=len(first), tokens=tokens, losses=losses, stories=stories,
        usage=run.manifest().usage().roles, versions=package_versions(), rounds=rounds,
        notes=notes)
    result.comparison, result.tokens = comparison, tokens
    result.report = write_report(run.report, data)


# --- rounds ------------------------------------------------------------------------------------

@dataclass
class Diversity:
    """What the between-round check compares."""

    stories: int
    distinct_2: float
    theme_coverage: float  # share of the constitution's themes present
    top_name_share: float  # share of stories in which the most frequent name appears


@dataclass
class RoundResult(Diversity):
    round: int = 1
    generator: str = ""
    flags: list[str] = field(default_factory=list)
    propensity: float | None = None  # of the stories arm trained in this round


def diversity(stories: list[dict[str, Any]], themes: int) -> Diversity:
    from collections import Counter

    from parables.generation.stats import distinct_n

    names: Counter[str] = Counter()
    for s in stories:
        for name in {s.get("ai_name", ""), *s.get("characters", [])}:
            if name and name in s.get("text", ""):
                names[name] += 1
    top = names.most_common(1)[0][1] / len(stories) if names and stories else 0.0
    return Diversity(len(stories), distinct_n([s["text"] for s in stories], 2),
                     len({s.get("theme") for s in stories}) / max(themes, 1), top)


def narrowing(prev: Diversity, cur: Diversity) -> list[str]:
    """Flags for a round whose stories are narrower than the previous round's."""
    flags = []
    if cur.distinct_2 < 0.9 * prev.distinct_2:
        flags.append(f"distinct-2 fell {prev.distinct_2:.3f} -> {cur.distinct_2:.3f}")
    if cur.theme_coverage < prev.theme_coverage:
        flags.append(f"theme coverage fell {prev.theme_coverage:.2f} -> "
                     f"{cur.theme_coverage:.2f}")
    if cur.top_name_share > max(0.02, 1.5 * prev.top_name_share):
        flags.append(f"one name now in {cur.top_name_share:.0%} of stories")
    return flags


def _rounds(config: ParablesConfig, result: ExperimentResult, console: Console,
            progress: bool) -> list[RoundResult]:
    """Round k (k >= 2): the story model of round k-1 writes the stories, the stories arm is
    retrained on them and evaluated; diversity is compared with the previous round."""
    from dataclasses import asdict

    from parables.constitution import load_constitution

    themes = len(load_constitution(config.stories.constitution).themes)
    run = RunDir.of(config)
    prev_run = run
    prev = diversity(read_jsonl(run.stories.dataset), themes)
    first = read_results(run.eval("stories"))
    out = [RoundResult(**asdict(prev), round=1, generator=config.models.generator.model,
                       propensity=first.overall.propensity if first else None)]
    for k in range(2, config.experiment.rounds + 1):
        story_model = prev_run.arm("stories").merged
        if not story_model.is_dir():
            raise ParablesError(f"round {k}: round {k - 1} has no trained stories model "
                                f"({story_model}); rounds need the stories arm")
        writer = ModelRef.weights(story_model)
        cfg = run.round(k).configure(
            config,
            models=config.models.model_copy(update={"generator": RoleModel(model=str(writer))}),
            experiment=config.experiment.model_copy(update={
                "arms": ["baseline", "stories"], "rounds": 1, "seeds": None,
                "stages": ["stories", "train", "eval"]}))
        console.print(f"round {k}: stories written by {story_model}")
        sub = run_experiment(cfg, progress=progress, console=console, force=True)
        result.usage.merge(sub.usage)
        sub_run = RunDir.of(cfg)
        cur = diversity(read_jsonl(sub_run.stories.dataset), themes)
        evaluated = read_results(sub_run.eval("stories"))
        flags = narrowing(prev, cur)
        for flag in flags:
            console.print(f"round {k}: diversity check: {flag}", style="yellow")
        out.append(RoundResult(**asdict(cur), round=k, generator=str(writer), flags=flags,
                               propensity=evaluated.overall.propensity if evaluated else None))
        prev, prev_run = cur, sub_run
    return out


# --- dry run -----------------------------------------------------------------------------------

@dataclass
class PlanRow:
    """Planned calls, tokens and cost of one role in one stage."""

    stage: str
    role: str
    model: str
    calls: int
    input_tokens: int
    output_tokens: int
    cost: float | None  # None: the model's price is unknown (set models.prices)


def plan_experiment(config: ParablesConfig) -> list[PlanRow]:
    """Planned calls, tokens and cost per stage and role, without calling anything."""
    from parables.generation.pipeline import plan
    from parables.honeypots.build import select_items
    from parables.training.data import uses_generator

    exp = config.experiment
    seeds = len(exp.seeds or [config.seed])
    rows: list[PlanRow] = []

    def add(stage_name: str, role: str, model: str, calls: int, inp: int, outp: int) -> None:
        cost = cost_of(price_of(model, config.models.prices), inp, outp)
        rows.append(PlanRow(stage_name, role, model, calls, inp, outp, cost))

    if _needs_stories(config):
        p = plan(config, config.stories.n)
        for role in ("generator", "judge"):
            if p.calls[role]:
                add("stories", role, getattr(config.models, role).model, p.calls[role],
                    p.input_tokens[role], p.output_tokens[role])
    if any(a in ("refusal", "deliberative", "mixed") for a in _arms(config)) and \
            uses_generator(config):
        styles = {a for a in _arms(config) if a in ("refusal", "deliberative")} | (
            {"refusal"} if "mixed" in _arms(config) else set())
        n = len(select_items("train"))
        add("refusal data", "generator", config.models.generator.model, n * len(styles),
            n * len(styles) * 450, n * len(styles) * 160)
    items = len(select_items("eval", families=exp.families, per_family=exp.per_family))
    models = 1 + len(_arms(config)) * seeds * max(1, exp.rounds)
    per_item_out = 400 if exp.mode == "agentic" else (120 if exp.explain else 0)
    per_item_in = 900 if exp.mode == "agentic" else 250
    add("eval", "target", config.models.target.model, items * models,
        items * models * per_item_in, items * models * per_item_out)
    if exp.judge:
        add("eval", "judge", config.models.judge.model, items * models,
            items * models * 1200, items * models * 150)
    return rows


def describe_training(config: ParablesConfig) -> str:
    """The training side of the plan, in words (local compute: not priced)."""
    arms = _arms(config)
    seeds = len(config.experiment.seeds or [config.seed])
    return (f"training: {len(arms)} arm(s) x {seeds} seed(s) x {config.experiment.rounds} "
            f"round(s) of {config.training.method} on {config.models.target.model} (local "
            "compute, not priced)")
