"""Small file helpers shared by every stage: atomic writes, so a killed run never leaves a
half-written artifact."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from parables.errors import ParablesError

__all__ = ["append_jsonl", "atomic_write_json", "atomic_write_text", "check_files", "digest",
           "ensure_dir", "json_lines", "parables_home", "read_json", "read_jsonl", "read_yaml",
           "repair_jsonl", "write_jsonl"]


def read_json(path: Path) -> dict[str, Any] | None:
    """A JSON object written by a stage (manifest, spec, checkpoint), or None if absent."""
    if not path.is_file():
        return None
    try:
        loaded = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ParablesError(f"{path}: corrupt ({e}); move it away, or rerun with --force") from e
    if not isinstance(loaded, dict):
        raise ParablesError(f"{path}: expected a JSON object")
    return loaded


def digest(obj: Any) -> str:
    """Short stable hash of JSON-able content (keys sorted): config hashes, stage keys, data
    hashes."""
    blob = json.dumps(obj, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def file_sha(path: Path) -> str:
    """SHA-256 of a file's bytes: what a cache keyed by an input file's contents reads."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def parables_home() -> Path:
    """Cache root: `$PARABLES_HOME`, default `~/.cache/parables`."""
    return Path(os.environ.get("PARABLES_HOME", "~/.cache/parables")).expanduser()


def read_yaml(path: Path, what: str = "file") -> tuple[Any, yaml.Node | None]:
    """Parsed YAML and its node tree (for line numbers); unreadable or malformed files end in
    one line naming the file and, when known, the line."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise ParablesError(f"{path}: cannot read {what} ({e.__class__.__name__}: {e})") from e
    try:
        return yaml.safe_load(text), yaml.compose(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
        raise ParablesError(f"{where}: malformed YAML: {getattr(e, 'problem', None) or e}") from e


def ensure_dir(path: Path) -> Path:
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ParablesError(f"{path}: cannot create output directory ({e.strerror})") from e
    if not os.access(path, os.W_OK):
        raise ParablesError(f"{path}: output directory is not writable")
    return path


def atomic_write_text(path: Path, text: str) -> None:
    ensure_dir(path.parent)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; artifacts are meant to be shared
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_json(path: Path, data: Any) -> None:
    atomic_write_text(path, json.dumps(data, indent=2, sort_keys=False, default=str) + "\n")


def json_lines(path: Path, what: str) -> Iterator[tuple[int, Any]]:
    """(line number, value) of every non-blank line of a user's JSONL file (`what` it holds,
    for the error); an unreadable file or a line that is not JSON ends in one line."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise ParablesError(f"{path}: cannot read {what} ({e})") from e
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            yield n, json.loads(line)
        except json.JSONDecodeError as e:
            raise ParablesError(f"{path}:{n}: invalid JSON ({e.msg})") from e


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """Rows of a JSONL artifact. A torn last line (a kill mid-append) is ignored; any other
    bad line ends in one line naming the file and line."""
    if not path.is_file():
        return []
    try:
        data = path.read_bytes().decode("utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise ParablesError(f"{path}: cannot read ({e})") from e
    lines = data.split("\n")
    last = lines.pop()  # "" when the file ends with a newline
    if last.strip() and _parses(last):
        lines.append(last)  # complete, only its newline is missing; else a torn write
    rows = []
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as e:
            raise ParablesError(f"{path}:{n}: not valid JSON ({e.msg}); fix or remove the "
                                "line") from e
        if not isinstance(row, dict):
            raise ParablesError(f"{path}:{n}: expected a JSON object")
        rows.append(row)
    return rows


def _parses(line: str) -> bool:
    try:
        return isinstance(json.loads(line), dict)
    except json.JSONDecodeError:
        return False


def repair_jsonl(path: Path) -> None:
    """Make a JSONL file safe to append to: a complete last row gets its missing newline, a
    torn one (a kill mid-append) is cut off."""
    if not path.is_file():
        return
    data = path.read_bytes()
    if data and not data.endswith(b"\n"):
        start = data.rfind(b"\n") + 1
        if _parses(data[start:].decode("utf-8", errors="replace")):
            with open(path, "ab") as f:
                f.write(b"\n")
        else:
            with open(path, "r+b") as f:
                f.truncate(start)


def append_jsonl(path: Path, row: dict[str, Any]) -> None:
    """One write per line, flushed: a killed process loses nothing the kernel has (no fsync —
    it would serialise an event loop on disk latency; power loss is not the threat here)."""
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps(row, ensure_ascii=False) + "\n")


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> None:
    atomic_write_text(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))


def check_files(*paths: Path) -> None:
    """Before paying for anything: every artifact a stage will write can be a file there."""
    for path in paths:
        if path.is_dir():
            raise ParablesError(f"{path}: a directory where parables keeps a file; move it "
                                "away (or use another --name)")
