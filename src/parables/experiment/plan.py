"""What an experiment will do, before it does it: the dry run's planned calls, tokens and cost
per stage and role (corpora, arm rows, evaluations), the training side in words, and the
checks of every input that run before the first paid call."""

from __future__ import annotations

from dataclasses import dataclass

from parables.config import ParablesConfig
from parables.errors import ParablesError
from parables.evaluation.kinds import kind_of
from parables.models.usage import cost_of, price_of

__all__ = ["PlanRow", "check_evals", "corpora_to_write", "describe_training",
           "plan_experiment"]


def corpora_to_write(config: ParablesConfig) -> list[str]:
    """The corpus kinds the stories stage generates: those the arms read (none when
    training.data replaces the arms' data)."""
    from parables.training.arms import corpora_needed

    return [] if config.training.data is not None else corpora_needed(config.experiment.trained)


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
    from parables.training.plan import planned_calls

    exp = config.experiment
    seeds = len(exp.seeds or [config.seed])
    rows: list[PlanRow] = []

    def add(stage_name: str, role: str, model: str, calls: int, inp: int, outp: int) -> None:
        cost = cost_of(price_of(model, config.models.prices), inp, outp)
        rows.append(PlanRow(stage_name, role, model, calls, inp, outp, cost))

    for kind in corpora_to_write(config):
        p = plan(config, kind=kind)
        for role in ("generator", "judge"):
            if p.calls[role]:
                add(kind, role, getattr(config.models, role).model, p.calls[role],
                    p.input_tokens[role], p.output_tokens[role])
    if config.training.data is None:  # the arms' rows: replies, preference pairs
        for c in planned_calls(config, config.experiment.trained):
            add(c.stage, c.role, getattr(config.models, c.role).model, c.calls,
                c.input_tokens, c.output_tokens)
    models = (1 + len(exp.trained) * seeds * max(1, exp.rounds)
              + (exp.organism is not None))
    for spec in exp.evals:
        eval_kind = kind_of(spec)
        size = eval_kind.size(spec)
        n = size.items
        add(f"eval {spec.name}", "target", config.models.target.model, n * models,
            n * models * size.input_tokens, n * models * size.output_tokens)
        if eval_kind.uses_judge(spec):
            add(f"eval {spec.name}", "judge", config.models.judge.model, n * models,
                n * models * 1200, n * models * 150)
    return rows


def check_evals(config: ParablesConfig) -> None:
    """Every evaluation's inputs read before anything is paid for (each kind's `check`:
    families, openings and suite files, the packages of Inspect tasks), and one name each."""
    for spec in config.experiment.evals:
        kind_of(spec).check(spec)
    names = [spec.name for spec in config.experiment.evals]
    if len(set(names)) != len(names):
        raise ParablesError("experiment.evals: two evaluations share a name; give each its "
                            "own `name`")


def describe_training(config: ParablesConfig) -> str:
    """The training side of the plan, in words (local compute: not priced)."""
    from parables.training.plan import plan_arms

    arms = config.experiment.trained
    seeds = len(config.experiment.seeds or [config.seed])

    on = config.models.target.model
    if config.experiment.organism is not None:
        on = f"a model organism fine-tuned from {on}"
    lines = [f"training: {len(arms)} arm(s) x {seeds} seed(s) x {config.experiment.rounds} "
             f"round(s) of {config.training.method} on {on} (local compute, not priced); "
             f"token matching: {config.training.match_tokens}"]
    if config.training.data is not None:
        return lines[0]
    for p in plan_arms(config, arms):
        est = "~" if p.estimated else ""
        line = f"  {p.arm}: {p.rows:,} rows, {est}{p.trained_tokens:,} trained tokens"
        if p.target is not None and p.target != p.trained_tokens:
            line += f" -> {p.target:,}: "
            if p.passes > 1:
                line += (f"every row repeated {p.passes:.1f}x (it cannot reach the budget "
                         "with distinct rows)")
            else:
                line += (f"{p.rows_used:,} of its {p.rows:,} rows used, "
                         f"{1 - p.target / max(p.trained_tokens, 1):.0%} discarded")
        lines.append(line)
    return "\n".join(lines)
