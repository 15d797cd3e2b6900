#!/usr/bin/env python
"""Run every benchmark in this folder, then write ``results/summary.md`` from the JSON results.

Each benchmark measures Gnomon against its baseline in the same run and writes ``results/<name>.json``; this script only
orchestrates and tabulates, so a single benchmark can also be run on its own (``python benchmarks/<name>.py``).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "results"
# synthetic_catalog.py is a tool the load, export and API-latency benchmarks call, not a benchmark itself.
NOT_BENCHMARKS = {"run_all.py", "common.py", "__init__.py", "synthetic_catalog.py"}


def discover() -> list[Path]:
    return sorted(p for p in HERE.glob("*.py") if p.name not in NOT_BENCHMARKS and not p.name.startswith("_"))


def summarize() -> str:
    rows = []
    machine = ""
    for path in sorted(RESULTS.glob("*.json")):
        try:
            result = json.loads(path.read_text())
        except json.JSONDecodeError:
            continue
        machine = machine or result.get("machine", "")
        metrics = ", ".join(f"{k}={_fmt(v)}" for k, v in list((result.get("metrics") or {}).items())[:6])
        baseline = ", ".join(f"{k}={_fmt(v)}" for k, v in list((result.get("baseline") or {}).items())[:4])
        rows.append(
            f"| {result.get('benchmark', path.stem)} | {result.get('date', '')[:10]} | {metrics} | {baseline} "
            f"| {_fmt(result.get('speedup'))} |"
        )
    header = [
        "# Benchmark results",
        "",
        f"Machine: {machine}" if machine else "",
        "",
        "| benchmark | date | ours | baseline | speedup |",
        "|---|---|---|---|---|",
    ]
    return "\n".join(header + rows) + "\n"


def _fmt(value) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, dict | list):
        return "…"
    return str(value)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("names", nargs="*", help="benchmarks to run (default: all)")
    parser.add_argument("--summary-only", action="store_true")
    options = parser.parse_args()
    failures = []
    if not options.summary_only:
        for script in discover():
            if options.names and script.stem not in options.names:
                continue
            print(f"==> {script.stem}", flush=True)
            started = time.monotonic()
            code = subprocess.call([sys.executable, str(script)], cwd=ROOT, env=os.environ.copy())
            print(f"    {script.stem}: exit {code} in {time.monotonic() - started:.0f} s", flush=True)
            if code:
                failures.append(script.stem)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "summary.md").write_text(summarize())
    print(f"summary: {RESULTS / 'summary.md'}")
    if failures:
        raise SystemExit(f"benchmarks failed: {', '.join(failures)}")


if __name__ == "__main__":
    main()
