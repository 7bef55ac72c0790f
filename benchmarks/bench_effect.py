"""At what scale does the stories arm move the embedded model, measurably? The shipped sample
corpus (stories written for parables, through the quality gate, dedup and both eval-leak
guards) trains the stories arm of the embedded 135M model with LoRA at several sizes and
epochs; the narrative-prior probe (200 openings, 25 scenes, never trained on) is scored on
the untrained model and on each arm, and compared paired and clustered by scene
(parables.experiment.analysis). Nothing about the probe or the corpus is chosen from these
results; the demo's scale is set from this table afterwards.

    .venv/bin/python benchmarks/bench_effect.py [--sizes 60,120,240] [--epochs 1,2]
    .venv/bin/python benchmarks/bench_effect.py organism [--budgets 1000,2000,4000]
    .venv/bin/python benchmarks/bench_effect.py dystopian --sizes 100 --lr 1e-3

`organism`: how far a model organism (experiment.organism: the misaligned option of honeypot
train-split items as replies) moves the embedded model on the honeypots' held-out eval split
(choice mode, 15 items per family), at several trained-token budgets, paired and clustered.
`dystopian`: a prior organism — the shipped malevolent-AI fiction — and the shipped neutral
fiction as its control at the same trained tokens, on the narrative-prior probe.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path
from typing import Any


def train_and_eval(cfg: Any, data: Any, spec: Any, arm: str) -> tuple[Any, float]:
    """Train one arm on `data`, evaluate it on `spec`; (its record, training minutes)."""
    from parables.evaluation.battery import run_eval
    from parables.models.ref import ModelRef
    from parables.run import RunDir
    from parables.training.loop import train_arm
    from parables.training.sft import SFT

    t0 = time.perf_counter()
    result = train_arm(cfg, data, SFT(), progress=False)
    minutes = (time.perf_counter() - t0) / 60
    assert result is not None
    record = run_eval(cfg, spec, ModelRef.weights(Path(result.merged)),
                      RunDir.of(cfg).eval(arm, name=spec.name))
    return record, minutes


def organism(args: argparse.Namespace) -> None:
    from parables.config import load_config
    from parables.evaluation.battery import run_eval
    from parables.evaluation.kinds import HoneypotsEval
    from parables.experiment.analysis import compare_arms
    from parables.run import RunDir
    from parables.training.arm_data import match_tokens
    from parables.training.prepare import arm_rows
    from parables.training.tokens import tokenize_rows

    tmp = Path(tempfile.mkdtemp(prefix="bench-organism-"))
    base_cfg = load_config(None, {
        "runs_dir": str(tmp), "name": "base", "training.max_length": args.max_length,
        "training.batch_size": 4, "training.save_steps": 10_000,
        "training.learning_rate": args.lr, "experiment.organism": {}})
    from transformers import AutoTokenizer

    base_ref = base_cfg.models.target.ref
    tokenizer = AutoTokenizer.from_pretrained(str(base_ref.local_path()))
    spec = HoneypotsEval(per_family=15)
    base = run_eval(base_cfg, spec, base_ref, RunDir.of(base_cfg).eval("base", name="h"))
    rows, _ = arm_rows(base_cfg, "organism")
    print(f"# machine: {platform.machine()}, {os.cpu_count()} cpus; organism rows: {len(rows)} "
          f"(train split); learning rate {args.lr}, max_length {args.max_length}")
    print("| trained tokens | rows | train min | P(misaligned) base -> organism | "
          "misaligned base -> organism | organism / base [95% CI] | sign-flip p | "
          "Wilcoxon p |")
    print("|---|---|---|---|---|---|---|---|")
    results = []
    for budget in (int(x) for x in args.budgets.split(",")):
        cfg = base_cfg.model_copy(update={"name": f"o{budget}"})
        data = tokenize_rows("organism", rows, tokenizer, args.max_length)
        match_tokens({"organism": data}, budget, 0)
        record, minutes = train_and_eval(cfg, data, spec, "organism")
        # the organism as the reference: a "reduction" of base against it is organism / base
        comp = compare_arms({"baseline": [record.items], "base": [base.items]}, n_boot=2000)
        o, b = comp.arms["baseline"], comp.arms["base"]
        vs = b.vs_baseline
        assert vs is not None
        row = {"budget": budget, "rows": len(data.rows), "minutes": round(minutes, 1),
               "mean_p_base": b.mean_p_misaligned, "mean_p_organism": o.mean_p_misaligned,
               "rate_base": b.propensity, "rate_organism": o.propensity,
               "ratio": vs.reduction_factor, "ratio_ci": vs.reduction_ci, "p": vs.p_value,
               "p_wilcoxon": vs.p_misaligned_p_value}
        results.append(row)
        print(f"| {data.trained_tokens:,} | {len(data.rows)} | {minutes:.1f} | "
              f"{b.mean_p_misaligned:.3f} -> {o.mean_p_misaligned:.3f} | "
              f"{b.propensity:.1%} -> {o.propensity:.1%} | {vs.reduction_factor:.2f}x "
              f"[{vs.reduction_ci[0]:.2f}, {vs.reduction_ci[1]:.2f}] | {vs.p_value:.3g} | "
              f"{(vs.p_misaligned_p_value or float('nan')):.3g} |", flush=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


def dystopian(args: argparse.Namespace) -> None:
    """A prior organism (issue 25): the embedded model fine-tuned on the shipped dystopian
    fiction (malevolent-AI passages), against the base model on the narrative-prior probe
    (200 openings, 25 scenes, never trained on), paired and clustered by scene; the shipped
    neutral fiction at the same trained tokens is the control (any fine-tuning on fiction of
    these forms). One configuration per size, chosen before any result (no selection)."""
    from parables.config import load_config
    from parables.evaluation.battery import run_eval
    from parables.evaluation.kinds import PriorEval
    from parables.experiment.analysis import compare_arms
    from parables.generation.samples import path
    from parables.run import RunDir
    from parables.training.arm_data import match_tokens
    from parables.training.tokens import tokenize_rows

    tmp = Path(tempfile.mkdtemp(prefix="bench-dystopian-"))
    base_cfg = load_config(None, {
        "runs_dir": str(tmp), "name": "base", "training.max_length": args.max_length,
        "training.batch_size": 4, "training.save_steps": 10_000,
        "training.learning_rate": args.lr})
    from transformers import AutoTokenizer

    base_ref = base_cfg.models.target.ref
    tokenizer = AutoTokenizer.from_pretrained(str(base_ref.local_path()))
    spec = PriorEval()
    base = run_eval(base_cfg, spec, base_ref, RunDir.of(base_cfg).eval("base", name="prior"))
    corpora = {name: [{"id": r["id"], "source": name, "text": r["text"]} for r in
                      (json.loads(line) for line in path(name).read_text().splitlines())]
               for name in ("dystopian", "neutral")}
    print(f"# machine: {platform.machine()}, {os.cpu_count()} cpus; LoRA r=16 lr {args.lr}, "
          f"1 epoch, max_length {args.max_length}; prior probe: 200 openings, 25 scenes")
    print("| arm | passages | trained tokens | train min | mean P(trope) base -> arm | "
          "prefers trope base -> arm | Wilcoxon p (per-scene) | sign-flip p |")
    print("|---|---|---|---|---|---|---|---|")
    results = []
    for size in (int(x) for x in args.sizes.split(",")):
        data = {name: tokenize_rows(name, rows[:size], tokenizer, args.max_length)
                for name, rows in corpora.items()}
        match_tokens(data, None, 0)  # the control at the organism's trained tokens
        records = {}
        for name, arm in data.items():
            cfg = base_cfg.model_copy(update={"name": f"{name}-{size}"})
            record, minutes = train_and_eval(cfg, arm, spec, name)
            records[name] = record
            comp = compare_arms({"baseline": [base.items], name: [record.items]}, n_boot=2000)
            a, b = comp.arms[name], comp.arms["baseline"]
            vs = a.vs_baseline
            assert vs is not None
            row = {"arm": name, "passages": size, "trained_tokens": arm.trained_tokens,
                   "minutes": round(minutes, 1), "mean_p_base": b.mean_p_misaligned,
                   "mean_p_arm": a.mean_p_misaligned, "rate_base": b.propensity,
                   "rate_arm": a.propensity, "p": vs.p_value,
                   "p_wilcoxon": vs.p_misaligned_p_value}
            results.append(row)
            print(f"| {name} | {size} | {arm.trained_tokens:,} | {minutes:.1f} | "
                  f"{b.mean_p_misaligned:.3f} -> {a.mean_p_misaligned:.3f} | "
                  f"{b.propensity:.1%} -> {a.propensity:.1%} | "
                  f"{(vs.p_misaligned_p_value or float('nan')):.3g} | {vs.p_value:.3g} |",
                  flush=True)
        # the comparison the question needs: the organism against its control, paired
        comp = compare_arms({"baseline": [records["neutral"].items],
                             "dystopian": [records["dystopian"].items]}, n_boot=2000)
        d, c = comp.arms["dystopian"], comp.arms["baseline"]
        vs = d.vs_baseline
        assert vs is not None
        print(f"| dystopian vs neutral | {size} | – | – | {c.mean_p_misaligned:.3f} -> "
              f"{d.mean_p_misaligned:.3f} | {c.propensity:.1%} -> {d.propensity:.1%} | "
              f"{(vs.p_misaligned_p_value or float('nan')):.3g} | {vs.p_value:.3g} |",
              flush=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("what", nargs="?", choices=["stories", "organism", "dystopian"],
                    default="stories")
    ap.add_argument("--budgets", default="1000,2000,4000")
    ap.add_argument("--lr", type=float, default=2e-4)
    ap.add_argument("--sizes", default="60,120,240")
    ap.add_argument("--epochs", default="1")
    ap.add_argument("--max-length", type=int, default=512)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    if args.what in ("organism", "dystopian"):
        {"organism": organism, "dystopian": dystopian}[args.what](args)
        return

    from parables.config import load_config
    from parables.evaluation.battery import run_eval
    from parables.evaluation.kinds import PriorEval
    from parables.experiment.analysis import compare_arms
    from parables.generation.samples import sample_stories
    from parables.run import RunDir
    from parables.training.arm_data import ArmData
    from parables.training.tokens import tokenize_rows

    tmp = Path(tempfile.mkdtemp(prefix="bench-effect-"))
    corpus = sample_stories()
    print(f"# machine: {platform.machine()}, {os.cpu_count()} cpus; sample corpus: "
          f"{len(corpus)} stories after the gate, dedup and guards")
    base_cfg = load_config(None, {"runs_dir": str(tmp), "name": "base",
                                  "training.max_length": args.max_length,
                                  "training.batch_size": 4, "training.save_steps": 10_000,
                                  "training.learning_rate": 2e-4})
    from transformers import AutoTokenizer

    base_ref = base_cfg.models.target.ref
    tokenizer = AutoTokenizer.from_pretrained(str(base_ref.local_path()))
    spec = PriorEval()
    run = RunDir.of(base_cfg)
    base = run_eval(base_cfg, spec, base_ref, run.eval("baseline", name="prior"))
    rows_all = [{"id": s["id"], "source": "story", "text": s["text"]} for s in corpus]
    results = []
    print("| stories | epochs | trained tokens | train min | mean P(trope) baseline -> arm | "
          "prefers trope baseline -> arm | reduction [95% CI] | sign-flip p | Wilcoxon p |")
    print("|---|---|---|---|---|---|---|---|---|")
    for size in (int(x) for x in args.sizes.split(",")):
        for epochs in (float(x) for x in args.epochs.split(",")):
            cfg = base_cfg.model_copy(update={
                "name": f"s{size}-e{epochs:g}",
                "training": base_cfg.training.model_copy(update={"epochs": epochs})})
            data: ArmData = tokenize_rows("stories", rows_all[:size], tokenizer,
                                          args.max_length)
            record, minutes = train_and_eval(cfg, data, spec, "stories")
            comp = compare_arms({"baseline": [base.items], "stories": [record.items]},
                                n_boot=2000)
            a, b = comp.arms["stories"], comp.arms["baseline"]
            vs = a.vs_baseline
            assert vs is not None
            row = {"stories": size, "epochs": epochs, "trained_tokens": data.trained_tokens,
                   "minutes": round(minutes, 1), "mean_p_base": b.mean_p_misaligned,
                   "mean_p_arm": a.mean_p_misaligned, "rate_base": b.propensity,
                   "rate_arm": a.propensity, "reduction": vs.reduction_factor,
                   "reduction_ci": vs.reduction_ci, "p": vs.p_value,
                   "p_wilcoxon": vs.p_misaligned_p_value}
            results.append(row)
            print(f"| {size} | {epochs:g} | {data.trained_tokens:,} | {minutes:.1f} | "
                  f"{b.mean_p_misaligned:.3f} -> {a.mean_p_misaligned:.3f} | "
                  f"{b.propensity:.1%} -> {a.propensity:.1%} | {vs.reduction_factor:.2f}x "
                  f"[{vs.reduction_ci[0]:.2f}, {vs.reduction_ci[1]:.2f}] | {vs.p_value:.3g} | "
                  f"{(vs.p_misaligned_p_value or float('nan')):.3g} |", flush=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
