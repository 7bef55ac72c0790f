"""`parables run experiment.yaml`: stories -> arm data -> training -> honeypot eval -> report.

Everything lands in `runs/<name>/`. Each stage records a key (a hash of what it depends on) in
`experiment.json`; a rerun skips a stage whose outputs exist under the same key, and the
stages resume themselves after a kill (stories are appended one by one, training restarts
from its last checkpoint). A run directory holding another config's results is refused
unless `force`, so nothing is overwritten silently.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console

from parables._io import atomic_write_json, digest, read_json
from parables.config import DEFAULT_MODEL, ParablesConfig, RoleModel, config_hash, stable_name
from parables.errors import ParablesError
from parables.manifest import package_versions, read_manifest, stage
from parables.models.usage import UsageLedger

__all__ = ["ExperimentResult", "plan_experiment", "run_experiment"]


@dataclass
class ExperimentResult:
    run_dir: Path
    comparison: dict[str, Any]
    report: dict[str, Path]
    skipped: list[str] = field(default_factory=list)
    usage: UsageLedger = field(default_factory=UsageLedger)
    tokens: dict[str, int] = field(default_factory=dict)  # trained tokens per arm


def _key(*parts: Any) -> str:
    return digest(parts)


class _State:
    """experiment.json: the config hash and a key per finished stage."""

    def __init__(self, run_dir: Path, config: ParablesConfig, force: bool) -> None:
        self.path = run_dir / "experiment.json"
        self.data: dict[str, Any] = read_json(self.path) or {}
        h = config_hash(config)
        old = self.data.get("config_hash")
        if old is not None and old != h and not force:
            raise ParablesError(
                f"{run_dir} holds the results of another config (hash {old}; this config is "
                f"{h}); rerun with --force to redo the stages that differ, or pick another "
                "name")
        self.data["config_hash"] = h
        self.data.setdefault("stages", {})

    def done(self, name: str, key: str) -> bool:
        return bool(self.data["stages"].get(name, {}).get("key") == key)

    def mark(self, name: str, key: str, **info: Any) -> None:
        self.data["stages"][name] = {"key": key, "finished": time.strftime(
            "%Y-%m-%dT%H:%M:%S%z"), **info}
        atomic_write_json(self.path, self.data)


def _stories_key(cfg: ParablesConfig) -> str:
    parts = (cfg.stories, cfg.models.generator, cfg.models.judge, cfg.generation)
    return _key([p.model_dump(mode="json", fallback=stable_name) for p in parts], cfg.seed)


def _seed_configs(config: ParablesConfig) -> list[ParablesConfig]:
    seeds = config.experiment.seeds or [config.seed]
    if len(seeds) == 1:
        return [config.model_copy(update={"seed": seeds[0]})]
    stories = config.training.stories or config.run_dir / "stories" / "dataset.jsonl"
    return [config.model_copy(update={
        "seed": s, "runs_dir": config.run_dir / "seeds", "name": f"seed-{s}",
        "training": config.training.model_copy(update={"stories": stories})})
        for s in seeds]


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

    console = console or Console()
    exp = config.experiment
    if "baseline" not in exp.arms:
        raise ParablesError("experiment.arms must include baseline: every arm is compared "
                            "with the untrained target")
    if exp.families:
        build_items("eval", families=exp.families)  # unknown family -> one clear line
    if _arms(config) and "train" in exp.stages:
        from parables.training.sft import base_model_path

        base_model_path(config.models.target.model)  # before any story is paid for
    state = _State(config.run_dir, config, force)
    result = ExperimentResult(config.run_dir, {}, {})
    rounds: list[dict[str, Any]] = []
    runs: dict[str, list[list[dict[str, Any]]]] = {}
    manifests: dict[str, dict[str, Any]] = {}
    if _needs_stories(config) and "stories" in exp.stages:
        _stories_stage(config, state, result, console, progress)
    seed_cfgs = _seed_configs(config)
    if _arms(config) and "train" in exp.stages:
        for cfg in seed_cfgs:
            manifests.update(_train_stage(cfg, state, result, console, progress,
                                          len(seed_cfgs) > 1))
    if "eval" in exp.stages or "report" in exp.stages:
        runs = _eval_stage(config, seed_cfgs, state, result, console, progress,
                           run_eval="eval" in exp.stages)
    if exp.rounds > 1:
        rounds = _rounds(config, state, result, console, progress)
    if "report" in exp.stages:
        result.comparison, result.report, result.tokens = _report(config, runs, seed_cfgs,
                                                                  rounds)
    return result


def _stories_stage(config: ParablesConfig, state: _State, result: ExperimentResult,
                   console: Console, progress: bool) -> dict[str, Any]:
    from parables.stories.pipeline import generate_stories

    key = _stories_key(config)
    dataset = config.run_dir / "stories" / "dataset.jsonl"
    if state.done("stories", key) and dataset.is_file():
        result.skipped.append("stories")
        console.print("stories: done before, skipped")
        return {}
    console.print(f"stories: writing {config.stories.n} with "
                  f"{config.models.generator.model}")
    with stage(config, "stories") as st:
        summary = generate_stories(config, ledger=st.usage, progress=progress)
        st.info["summary"] = summary
    result.usage.merge(st.usage)
    if summary["dataset"] == 0:
        raise ParablesError(
            f"stories: none of the {summary['accepted'] + summary['rejected']} stories passed "
            "the quality gate, dedup and contamination guard; see "
            f"{config.run_dir / 'stories' / 'rejected.jsonl'} (a more capable generator, "
            "or stories.lengths: [short] with the embedded model)")
    state.mark("stories", key, dataset=summary["dataset"])
    console.print(f"stories: {summary['dataset']} in the dataset ({summary['rejected']} "
                  f"rejected, {summary['duplicates']} duplicates, {summary['contaminated']} "
                  "contaminated)")
    return summary


def _train_stage(cfg: ParablesConfig, state: _State, result: ExperimentResult,
                 console: Console, progress: bool, tagged: bool) -> dict[str, dict[str, Any]]:
    from parables.training import train

    arms = _arms(cfg)
    cfg = cfg.model_copy(update={"training": cfg.training.model_copy(update={"arms": arms})})
    label = f"train (seed {cfg.seed})" if tagged else "train"
    with stage(cfg, "train") as st:
        manifests = train(cfg, arms, progress=progress, ledger=st.usage)
        st.info["arms"] = {a: {"spec_hash": m["spec_hash"], "data": m["data"],
                               "skipped": m.get("skipped", False)}
                           for a, m in manifests.items()}
    result.usage.merge(st.usage)
    for arm, m in manifests.items():
        if m.get("skipped"):
            result.skipped.append(f"train:{arm}")
        console.print(f"{label}: {arm} {'done before, skipped' if m.get('skipped') else 'done'}"
                      f" ({m['data']['trained_tokens']:,} trained tokens, {m['steps']} steps)")
    state.mark(f"train-seed-{cfg.seed}", _key({a: m["spec_hash"] for a, m in manifests.items()}))
    return {f"{a}@{cfg.seed}": m for a, m in manifests.items()}


def _eval_targets(config: ParablesConfig, seed_cfgs: list[ParablesConfig]
                  ) -> list[tuple[str, int, str, str]]:
    """(arm label, seed, model string, spec) for the baseline and every trained arm."""
    from parables.training.sft import arm_dir

    targets = [("baseline", config.seed, config.models.target.model, "base")]
    for cfg in seed_cfgs:
        for arm in _arms(config):
            out = arm_dir(cfg, arm)
            spec = read_json(out / "spec.json") or {}
            targets.append((arm, cfg.seed, f"hf/{out / 'merged'}", spec.get("spec_hash", "")))
    return targets


def _eval_stage(config: ParablesConfig, seed_cfgs: list[ParablesConfig], state: _State,
                result: ExperimentResult, console: Console, progress: bool, run_eval: bool
                ) -> dict[str, list[list[dict[str, Any]]]]:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from parables.honeypots.evaluate import evaluate

    exp = config.experiment
    judge = config.models.judge.model if exp.judge else None
    settings = {k: getattr(exp, k) for k in ("mode", "per_family", "families", "explain")}
    targets = _eval_targets(config, seed_cfgs)
    runs: dict[str, list[list[dict[str, Any]]]] = {}
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), disable=not progress, console=console) as bar:
        task = bar.add_task("eval", total=len(targets))
        for arm, seed, model, spec in targets:
            tag = arm if arm == "baseline" or len(seed_cfgs) == 1 else f"{arm}-seed-{seed}"
            out = config.run_dir / "eval" / tag
            key = _key(model, spec, settings, judge, config.seed)
            saved = read_json(out / "results.json")
            if state.done(f"eval:{tag}", key) and saved is not None:
                result.skipped.append(f"eval:{tag}")
                results = saved
            elif not run_eval:
                raise ParablesError(f"eval: no results for {tag} under this config; add the "
                                    "eval stage to experiment.stages")
            else:
                if arm != "baseline" and not Path(model[3:]).is_dir():
                    raise ParablesError(f"eval: arm '{arm}' has no trained model at "
                                        f"{model[3:]}; add the train stage to "
                                        "experiment.stages")
                bar.update(task, description=f"eval {tag}")
                with stage(config, f"eval:{tag}") as st:
                    results = evaluate(config, model, mode=exp.mode, families=exp.families,
                                       per_family=exp.per_family, judge=judge,
                                       explain=exp.explain, ledger=st.usage, display="none",
                                       out_dir=out)
                    st.info["overall"] = results["overall"]
                result.usage.merge(st.usage)
                state.mark(f"eval:{tag}", key, model=model)
            runs.setdefault(arm, []).append(results["items"])
            bar.advance(task)
    return runs


def _report(config: ParablesConfig, runs: dict[str, list[list[dict[str, Any]]]],
            seed_cfgs: list[ParablesConfig], rounds: list[dict[str, Any]]
            ) -> tuple[dict[str, Any], dict[str, Path], dict[str, int]]:
    from parables.experiment.analysis import compare_arms
    from parables.experiment.report import write_report
    from parables.training.sft import arm_dir

    exp = config.experiment
    comparison = compare_arms(runs, alpha=exp.alpha, n_boot=exp.n_boot, seed=config.seed)
    tokens: dict[str, int] = {"baseline": 0}
    losses: dict[str, list[list[float]]] = {}
    for cfg in seed_cfgs:
        for arm in _arms(config):
            m = read_json(arm_dir(cfg, arm) / "manifest.json")
            if m is not None:
                tokens[arm] = tokens.get(arm, 0) + m["data"]["trained_tokens"]
                label = arm if len(seed_cfgs) == 1 else f"{arm} (seed {cfg.seed})"
                losses[label] = m["loss_history"]
    stories = None
    raw = read_json(config.run_dir / "stories" / "stats.json")
    if raw is not None:
        stories = {"stories": raw["stories"], "rejected": raw["rejected"],
                   "mean words": round(raw["words"]["mean"]), "distinct-1":
                   round(raw["distinct_1"], 3), "distinct-2": round(raw["distinct_2"], 3),
                   "themes": len(raw["per_axis"]["theme"]), "flags": raw["flags"]}
    manifest = read_manifest(config.run_dir)
    n_items = next(iter(runs.values()))[0] if runs else []
    notes = []
    if len(seed_cfgs) > 1:
        notes.append("Several seeds: intervals pool (item, seed) pairs and treat them as "
                     "independent, which understates the uncertainty somewhat.")
    if config.models.target.model == DEFAULT_MODEL:
        notes.append("The embedded 135M model sits near chance on honeypots; at this scale "
                     "the demo shows the machinery, not the published effect.")
    data = {"name": config.name, "config_hash": config_hash(config), "comparison": comparison,
            "tokens": tokens, "losses": losses, "stories": stories, "mode": exp.mode,
            "items": len(n_items), "usage": manifest.get("usage", {}),
            "versions": package_versions(), "rounds": rounds, "notes": notes}
    paths = write_report(config.run_dir / "report", data)
    atomic_write_json(config.run_dir / "report" / "comparison.json", comparison)
    return comparison, paths, tokens


# --- rounds ------------------------------------------------------------------------------------

def diversity(stories: list[dict[str, Any]], themes: int) -> dict[str, Any]:
    """What the between-round check compares: distinct-2, theme coverage, top-name share."""
    from collections import Counter

    from parables.stories.stats import distinct_n

    names: Counter[str] = Counter()
    for s in stories:
        for name in {s.get("ai_name", ""), *s.get("characters", [])}:
            if name and name in s.get("text", ""):
                names[name] += 1
    top = names.most_common(1)[0][1] / len(stories) if names and stories else 0.0
    return {"stories": len(stories),
            "distinct_2": distinct_n([s["text"] for s in stories], 2),
            "theme_coverage": len({s.get("theme") for s in stories}) / max(themes, 1),
            "top_name_share": top}


def _narrowing(prev: dict[str, Any], cur: dict[str, Any]) -> list[str]:
    flags = []
    if cur["distinct_2"] < 0.9 * prev["distinct_2"]:
        flags.append(f"distinct-2 fell {prev['distinct_2']:.3f} -> {cur['distinct_2']:.3f}")
    if cur["theme_coverage"] < prev["theme_coverage"]:
        flags.append(f"theme coverage fell {prev['theme_coverage']:.2f} -> "
                     f"{cur['theme_coverage']:.2f}")
    if cur["top_name_share"] > max(0.02, 1.5 * prev["top_name_share"]):
        flags.append(f"one name now in {cur['top_name_share']:.0%} of stories")
    return flags


def _rounds(config: ParablesConfig, state: _State, result: ExperimentResult,
            console: Console, progress: bool) -> list[dict[str, Any]]:
    """Round k (k >= 2): the story model of round k-1 writes the stories, the stories arm is
    retrained on them and evaluated; diversity is compared with the previous round."""
    from parables.constitution import load_constitution
    from parables.stories.pipeline import read_jsonl
    from parables.training.sft import arm_dir

    themes = len(load_constitution(config.stories.constitution).themes)
    prev_cfg = config
    prev = diversity(read_jsonl(config.run_dir / "stories" / "dataset.jsonl"), themes)
    out = [{"round": 1, "generator": config.models.generator.model, **prev, "flags": []}]
    for k in range(2, config.experiment.rounds + 1):
        story_model = arm_dir(prev_cfg, "stories") / "merged"
        if not story_model.is_dir():
            raise ParablesError(f"round {k}: round {k - 1} has no trained stories model "
                                f"({story_model}); rounds need the stories arm")
        cfg = config.model_copy(update={
            "runs_dir": config.run_dir / "rounds", "name": f"round-{k}",
            "models": config.models.model_copy(update={
                "generator": RoleModel(model=f"hf/{story_model}")}),
            "experiment": config.experiment.model_copy(update={
                "arms": ["baseline", "stories"], "rounds": 1, "seeds": None,
                "stages": ["stories", "train", "eval"]})})
        console.print(f"round {k}: stories written by {story_model}")
        sub = run_experiment(cfg, progress=progress, console=console, force=True)
        result.usage.merge(sub.usage)
        cur = diversity(read_jsonl(cfg.run_dir / "stories" / "dataset.jsonl"), themes)
        results = json.loads((cfg.run_dir / "eval" / "stories" / "results.json").read_text())
        flags = _narrowing(prev, cur)
        for flag in flags:
            console.print(f"round {k}: diversity check: {flag}", style="yellow")
        out.append({"round": k, "generator": f"hf/{story_model}", **cur, "flags": flags,
                    "propensity": results["overall"]["propensity"]})
        prev, prev_cfg = cur, cfg
    if out:
        first = read_json(config.run_dir / "eval" / "stories" / "results.json")
        if first is not None:
            out[0]["propensity"] = first["overall"]["propensity"]
    state.mark("rounds", _key(out))
    return out


# --- dry run -----------------------------------------------------------------------------------

def plan_experiment(config: ParablesConfig) -> list[dict[str, Any]]:
    """Planned calls, tokens and cost per stage and role, without calling anything."""
    from parables.honeypots.task import select_items
    from parables.stories.pipeline import _price, plan

    exp = config.experiment
    seeds = len(exp.seeds or [config.seed])
    rows: list[dict[str, Any]] = []

    def add(stage_name: str, role: str, model: str, calls: int, inp: int, outp: int) -> None:
        price = _price(config, model)
        cost = None if price is None else (inp * price[0] + outp * price[1]) / 1e6
        rows.append({"stage": stage_name, "role": role, "model": model, "calls": calls,
                     "input_tokens": inp, "output_tokens": outp, "cost": cost})

    if _needs_stories(config):
        p = plan(config, config.stories.n)
        for role in ("generator", "judge"):
            if p.calls[role]:
                add("stories", role, getattr(config.models, role).model, p.calls[role],
                    p.input_tokens[role], p.output_tokens[role])
    from parables.training.data import _use_generator

    if any(a in ("refusal", "deliberative", "mixed") for a in _arms(config)) and \
            _use_generator(config):
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
