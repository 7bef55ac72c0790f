"""The suite's wall time as CI sees it: `make test` on a fresh clone (set-up from nothing, then
the whole suite), split into set-up and tests. Run it alone on the machine: two torch-heavy jobs
at once slow each other many-fold on 2 cores.

    python benchmarks/bench_tests.py [--keep]   # prints one Markdown row for RESULTS.md
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", action="store_true", help="keep the clone")
    args = parser.parse_args()
    where = Path(tempfile.mkdtemp(prefix="bench-tests-"))
    subprocess.run(["git", "clone", "-q", str(ROOT), str(where / "repo")], check=True)
    log = where / "make-test.log"
    started = time.time()
    with log.open("w") as out:
        done = subprocess.run(["make", "test"], cwd=where / "repo", stdout=out,
                              stderr=subprocess.STDOUT, env={**os.environ, "PYTHONPATH": ""})
    total = time.time() - started
    text = log.read_text()
    found = re.search(r"(\d+) passed.* in ([\d.]+)s", text)
    tests = float(found.group(2)) if found else float("nan")
    print(f"# machine: {platform.machine()}, {os.cpu_count()} cpus; python "
          f"{sys.version.split()[0]}; exit {done.returncode}; log {log}")
    print("| date | make test (fresh clone) | set-up | tests | passed |")
    print("|---|---|---|---|---|")
    print(f"| {time.strftime('%Y-%m-%d')} | {total / 60:.1f} min | {(total - tests) / 60:.1f} min"
          f" | {tests / 60:.1f} min | {found.group(1) if found else '?'} |")
    if not args.keep:
        shutil.rmtree(where / "repo", ignore_errors=True)


if __name__ == "__main__":
    main()
