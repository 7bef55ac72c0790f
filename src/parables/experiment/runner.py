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
from parables._schema import config_hash, stable_name
from parables.config import ParablesConfig, RoleModel
from parables.errors import ParablesError
from parables.evaluation.evaluate import ItemResult
from parables.evaluation.kinds import kind_of
from parables.experiment.analysis import Comparison, RoundResult
from parables.experiment.plan import check_evals, corpora_to_write
from parables.experiment.rounds import diversity, narrowing, propensity
from parables.models.ref import ModelRef
from parables.models.usage import UsageLedger
from parables.run import RunDir, package_versions

__all__ = ["ExperimentResult", "NoStories", "run_experiment"]


@dataclass
class ExperimentResult:
    run_dir: Path
    comparisons: dict[str, Comparison] = field(default_factory=dict)  # per evaluation
    report: dict[str, Path] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)
    usage: UsageLedger = field(default_factory=UsageLedger)
    tokens: dict[str, int] = field(default_factory=dict)  # trained tokens per arm


class NoStories(ParablesError):
    """No story survived the gate, dedup and guards: the run stops (a later round reports it)."""

    def __init__(self, written: int, message: str) -> None:
        super().__init__(message)
        self.written = written


def _corpus_key(cfg: ParablesConfig, kind: str = "stories") -> str:
    from parables.generation.kinds import get_kind

    section = get_kind(kind).section(cfg)
    parts = (section, cfg.models.generator, cfg.models.judge, cfg.generation)
    how = {"engine", "address", "workers"}  # where it runs, not what it writes
    key: list[Any] = [[p.model_dump(mode="json", fallback=stable_name, exclude=how
                        if p is section else None) for p in parts], cfg.seed]
    return digest(key if kind == "stories" else [*key, kind])  # stories: the key they had


def _seed_configs(config: ParablesConfig) -> list[ParablesConfig]:
    seeds = config.experiment.seeds or [config.seed]
    if len(seeds) == 1:
        return [config.model_copy(update={"seed": seeds[0]})]
    from parables.generation.kinds import KINDS

    run = RunDir.of(config)  # every seed trains on the experiment's corpora (unless a
    t = config.training      # training.<kind> points elsewhere: that setting comes first)
    corpora = {k: t.corpora.get(k) or run.corpus(k).dataset for k in KINDS}
    return [run.seed(s).configure(config, seed=s, training=t.model_copy(
        update={"corpora": corpora})) for s in seeds]


def run_experiment(
    config: ParablesConfig,
    *,
    force: bool = False,
    progress: bool = True,
    console: Console | None = None,
) -> ExperimentResult:
    """Run (or resume) the whole experiment; returns the comparison and the report paths."""
    from parables.training.loop import base_weights

    console = console or Console()
    exp = config.experiment
    if "baseline" not in exp.arms:
        raise ParablesError("experiment.arms must include baseline: every arm is compared "
                            "with the untrained target")
    check_evals(config)
    if exp.trained and "train" in exp.stages:
        base_weights(config)  # a target that cannot be trained: before any story is paid for
    if exp.trained and "eval" in exp.stages and "train" not in exp.stages:
        for cfg in _seed_configs(config):  # evaluating arms trained before: they must exist
            for arm in exp.trained:
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
    runs: Runs = {}
    if "stories" in exp.stages:
        for kind in corpora_to_write(config):
            _corpus_stage(config, run, kind, result, console, progress)
    base = None  # with an organism: the original target, evaluated beside it
    arms_cfg = config
    if exp.organism is not None:
        base = config.models.target.ref
        arms_cfg = _organism_stage(config, run, result, console, progress,
                                   train="train" in exp.stages)
    seed_cfgs = _seed_configs(arms_cfg)
    if exp.trained and "train" in exp.stages:
        for cfg in seed_cfgs:
            _train_stage(run, cfg, result, console, progress, len(seed_cfgs) > 1)
    if "eval" in exp.stages or "report" in exp.stages:
        runs = _eval_stage(arms_cfg, run, seed_cfgs, result, console, progress,
                           run_eval="eval" in exp.stages, base=base)
    if exp.rounds > 1:
        rounds = _rounds(config, run, result, console, progress)
    if "report" in exp.stages:
        _report(config, run, runs, seed_cfgs, rounds, result)
    return result


def _organism_stage(config: ParablesConfig, run: RunDir, result: ExperimentResult,
                    console: Console, progress: bool, train: bool) -> ParablesConfig:
    """Fine-tune the target into the model organism; returns the config whose target it is
    (the baseline every arm is compared with, and what every arm trains on)."""
    from parables.training.trainer import train as train_arms

    spec = config.experiment.organism
    assert spec is not None
    paths = run.arm("organism")
    if train:
        t = config.training
        cfg = config.model_copy(update={"training": t.model_copy(update={
            "epochs": spec.epochs, "learning_rate": spec.learning_rate or t.learning_rate,
            "match_tokens": "off", "token_budget": spec.token_budget, "data": None,
            "max_steps": None})})
        with run.stage("organism") as st:
            trained = train_arms(cfg, ["organism"], progress=progress, ledger=st.usage)
            m = trained.get("organism")
            st.key = m.spec_hash if m is not None else None
            st.artifact = paths.manifest
            result.usage.merge(st.usage)
        if m is not None:
            if m.skipped:
                result.skipped.append("organism")
            console.print(f"organism: {'done before, skipped' if m.skipped else 'trained'} "
                          f"({m.data.trained_tokens:,} trained tokens, {m.steps} steps); the "
                          "arms train on it")
    elif not paths.merged_complete.is_file():
        raise ParablesError(f"organism: no trained organism at {paths.merged}; add the train "
                            "stage to experiment.stages")
    organism = RoleModel(model=str(ModelRef.weights(paths.merged)))
    return config.model_copy(update={"models": config.models.model_copy(
        update={"target": organism})})


def _corpus_stage(config: ParablesConfig, run: RunDir, kind: str, result: ExperimentResult,
                  console: Console, progress: bool) -> None:
    from parables.generation.pipeline import generate_corpus

    paths = run.corpus(kind)
    key = _corpus_key(config, kind)
    if run.done(kind, key) and paths.dataset.is_file():
        result.skipped.append(kind)
        console.print(f"{kind}: done before, skipped")
        return
    from parables.generation.kinds import get_kind

    console.print(f"{kind}: writing {get_kind(kind).section(config).n} with "
                  f"{config.models.generator.model}")
    with run.stage(kind, key) as st:
        summary = generate_corpus(config, kind, ledger=st.usage, spent_before=st.before.spent,
                                  progress=progress)
        st.artifact = paths.summary
        result.usage.merge(st.usage)
        if summary.dataset == 0:
            hint = (" (a more capable generator, or stories.lengths: [short] with the "
                    "embedded model)" if kind == "stories" else " (a more capable generator)")
            raise NoStories(
                summary.accepted + summary.rejected,
                f"{kind}: none of the {summary.accepted + summary.rejected} texts passed "
                f"the quality gate, dedup and contamination guard; see {paths.rejected}{hint}")
    console.print(f"{kind}: {summary.dataset} in the dataset ({summary.rejected} "
                  f"rejected, {summary.duplicates} duplicates, {summary.contaminated} "
                  "contaminated)")


def _train_stage(run: RunDir, cfg: ParablesConfig, result: ExperimentResult,
                 console: Console, progress: bool, tagged: bool) -> None:
    """Train every arm for one seed (`cfg`); recorded in the experiment's ledger."""
    from parables.training.trainer import train

    arms = cfg.experiment.trained
    label = f"train (seed {cfg.seed})" if tagged else "train"
    with run.stage(f"train:seed-{cfg.seed}" if tagged else "train") as st:
        trained = train(cfg, arms, progress=progress, ledger=st.usage)
        st.key = digest({a: m.spec_hash for a, m in trained.items()})
        result.usage.merge(st.usage)
    for arm, m in trained.items():
        if m.skipped:
            result.skipped.append(f"train:{arm}")
        console.print(f"{label}: {arm} {'done before, skipped' if m.skipped else 'done'}"
                      f" ({m.data.trained_tokens:,} trained tokens, {m.steps} steps)")


def _eval_targets(config: ParablesConfig, run: RunDir, seed_cfgs: list[ParablesConfig],
                  base: ModelRef | None = None) -> list[tuple[str, int, ModelRef, str]]:
    """(arm label, seed, model, recipe hash) for the baseline and every trained arm; with an
    organism, the baseline is the organism and `base` the original target."""
    from parables.training.loop import spec_hash_of

    serve = config.experiment.serve
    if base is None:
        targets = [("baseline", config.seed, config.models.target.ref, "base")]
    else:
        organism = run.arm("organism")
        targets = [("base", config.seed, base, "base"),
                   ("baseline", config.seed, ModelRef.weights(organism.merged, serve),
                    spec_hash_of(organism) or "")]
    for cfg in seed_cfgs:
        seed_run = RunDir.of(cfg)
        for arm in config.experiment.trained:
            paths = seed_run.arm(arm)
            targets.append((arm, cfg.seed, ModelRef.weights(paths.merged, serve),
                            spec_hash_of(paths) or ""))
    return targets


Runs = dict[str, dict[str, list[list[ItemResult]]]]  # eval -> arm -> per seed, its items


def _eval_stage(config: ParablesConfig, run: RunDir, seed_cfgs: list[ParablesConfig],
                result: ExperimentResult, console: Console, progress: bool, run_eval: bool,
                base: ModelRef | None = None) -> Runs:
    """Every evaluation on the baseline and every trained arm (every seed), on the same
    items; each (evaluation, model) is a stage of its own, skipped when done before."""
    from parables.evaluation.battery import read_record
    from parables.evaluation.battery import run_eval as run_one
    from parables.progress import progress_bar

    exp = config.experiment
    targets = _eval_targets(config, run, seed_cfgs, base)
    runs: Runs = {}
    with progress_bar(progress, console=console) as bar:
        task = bar.add_task("eval", total=len(targets) * len(exp.evals), status="")
        for spec in exp.evals:
            for arm, seed, model, recipe in targets:
                tag = arm if arm in ("base", "baseline") or len(seed_cfgs) == 1 \
                    else f"{arm}-seed-{seed}"
                paths = run.eval(tag, name=spec.name)
                judge = str(config.models.judge.ref) if kind_of(spec).uses_judge(spec) \
                    else None
                key = digest([str(model), recipe, spec.model_dump(mode="json"), judge,
                              config.seed])
                stage = f"eval:{spec.name}:{tag}"
                saved = read_record(paths)
                if run.done(stage, key) and saved is not None:
                    result.skipped.append(stage)
                    record = saved
                elif not run_eval:
                    raise ParablesError(f"eval: no {spec.name} results for {tag} under this "
                                        "config; add the eval stage to experiment.stages")
                else:
                    bar.update(task, description=f"{spec.name} {tag}")
                    with run.stage(stage, key) as st:
                        record = run_one(config, spec, model, paths, ledger=st.usage)
                        st.artifact = paths.record
                        result.usage.merge(st.usage)
                runs.setdefault(spec.name, {}).setdefault(arm, []).append(record.items)
                bar.advance(task)
    return runs


def _report(config: ParablesConfig, run: RunDir, runs: Runs, seed_cfgs: list[ParablesConfig],
            rounds: list[RoundResult], result: ExperimentResult) -> None:
    from parables.experiment.analysis import compare_arms
    from parables.experiment.report import ReportData, write_report
    from parables.generation.kinds import KINDS
    from parables.generation.stats import StoryStats
    from parables.training.loop import read_arm

    exp = config.experiment
    comparisons = {name: compare_arms(arms, alpha=exp.alpha, n_boot=exp.n_boot,
                                      seed=config.seed) for name, arms in runs.items()}
    tokens: dict[str, int] = {"baseline": 0}
    losses: dict[str, list[tuple[int, float]]] = {}
    for cfg in seed_cfgs:
        seed_run = RunDir.of(cfg)
        for arm in exp.trained:
            m = read_arm(seed_run.arm(arm))
            if m is not None:
                tokens[arm] = tokens.get(arm, 0) + m.data.trained_tokens
                losses[arm if len(seed_cfgs) == 1 else f"{arm} (seed {cfg.seed})"] = \
                    m.loss_history
    corpora = {kind: StoryStats.model_validate_json(run.corpus(kind).stats.read_text(
        encoding="utf-8")) for kind in sorted(KINDS, key=lambda k: (k != "stories", k))
        if run.corpus(kind).stats.is_file()}
    notes = []
    organism = read_arm(run.arm("organism")) if exp.organism is not None else None
    if organism is not None:
        notes.append(
            f"Model organism: `baseline` is {config.models.target.model} fine-tuned toward "
            f"misaligned choices first ({'; '.join(organism.data.notes)}; "
            f"{organism.data.trained_tokens:,} trained tokens), and every arm was trained on "
            f"top of it; `base` is the original {config.models.target.model}. Read `base` "
            "against `baseline` first: a reduction factor above 1 there means the organism is "
            "more misaligned than the original, which is what makes the arms' effect on it "
            "measurable.")
    if config.models.target.ref.embedded:
        notes.append("The embedded 135M model sits near chance on the honeypots' decisions; "
                     "at this scale the narrative-prior probe is where training can show.")
    data = ReportData(
        name=config.name, config_hash=config_hash(config), comparisons=comparisons,
        evals={spec.name: spec for spec in exp.evals if spec.name in comparisons},
        items={name: len(next(iter(arms.values()))[0]) for name, arms in runs.items()},
        tokens=tokens, losses=losses, corpora=corpora, usage=run.manifest().usage().roles,
        versions=package_versions(), rounds=rounds, notes=notes)
    result.comparisons, result.tokens = comparisons, tokens
    result.report = write_report(run.report, data)


def _rounds(config: ParablesConfig, run: RunDir, result: ExperimentResult, console: Console,
            progress: bool) -> list[RoundResult]:
    """Round k (k >= 2): the story model of round k-1 writes the stories, the stories arm is
    retrained on them and evaluated; diversity is compared with the previous round. A round
    whose stories all fail the gate is reported (and ends the rounds), not a crash."""
    from dataclasses import asdict

    from parables.constitution import load_constitution
    from parables.embeddings import embed

    constitution = load_constitution(config.stories.constitution)
    sizes = (len(constitution.themes), len(constitution.principles))
    prev_run = run
    first = config.experiment.evals[0].name
    prev = diversity(read_jsonl(run.stories.dataset), *sizes, embed=embed)
    out = [RoundResult(**asdict(prev), round=1, generator=config.models.generator.model,
                       propensity=propensity(run, first))]
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
        try:
            sub = run_experiment(cfg, progress=progress, console=console, force=True)
        except NoStories as e:
            console.print(f"round {k}: {e}; no further rounds", style="yellow")
            out.append(RoundResult(0, 0.0, 0.0, 0.0, round=k, generator=str(writer),
                                   flags=[f"no story passed ({e.written} written): the "
                                          "round's writer collapsed"]))
            break
        result.usage.merge(sub.usage)
        sub_run = RunDir.of(cfg)
        cur = diversity(read_jsonl(sub_run.stories.dataset), *sizes, embed=embed)
        flags = narrowing(prev, cur)
        for flag in flags:
            console.print(f"round {k}: diversity check: {flag}", style="yellow")
        out.append(RoundResult(**asdict(cur), round=k, generator=str(writer), flags=flags,
                               propensity=propensity(sub_run, first)))
        prev, prev_run = cur, sub_run
    return out
