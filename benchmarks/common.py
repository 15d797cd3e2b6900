"""Shared helpers of the benchmarks: a description of the machine and one JSON result file per benchmark."""

from __future__ import annotations

import json
import os
import platform
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

RESULTS_DIR = Path(__file__).resolve().parent / "results"
ROOT = Path(__file__).resolve().parent.parent


def setup_django() -> None:
    """Make the repository importable and configure Django (benchmarks run as plain scripts)."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gnomon.settings")
    import django

    django.setup()


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _memory_gib() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 1024**2, 1)
    except OSError:
        pass
    return None


def machine_description() -> str:
    """One line: CPU, cores, memory, OS, Python and the library versions that matter for the numbers."""
    from importlib.metadata import PackageNotFoundError, version

    versions = []
    for name in ("numpy", "scipy", "pymatgen", "Django"):
        try:
            versions.append(f"{name} {version(name)}")
        except PackageNotFoundError:
            continue
    memory = _memory_gib()
    parts = [
        _cpu_model(),
        f"{os.cpu_count()} cores",
        f"{memory} GiB RAM" if memory else "",
        platform.platform(terse=True),
        f"Python {platform.python_version()}",
        *versions,
    ]
    return ", ".join(p for p in parts if p)


def write_result(
    name: str,
    metrics: dict[str, Any],
    baseline: dict[str, Any] | None,
    speedup: float | dict[str, float] | None,
    extra: dict[str, Any] | None = None,
) -> Path:
    """Write ``benchmarks/results/<name>.json`` shaped {"benchmark","date","machine","metrics","baseline","speedup"}."""
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    payload: dict[str, Any] = {
        "benchmark": name,
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine_description(),
        "metrics": metrics,
        "baseline": baseline,
        "speedup": speedup,
    }
    if extra:
        payload.update(extra)
    path = RESULTS_DIR / f"{name}.json"
    path.write_text(json.dumps(payload, indent=2, sort_keys=False, default=str) + "\n")
    return path


def data_dir() -> Path:
    """``GNOMON_DATA_DIR`` (the shared seed data, read in place), else ``../shared/data`` next to the repository."""
    return Path(os.environ.get("GNOMON_DATA_DIR", ROOT.parent / "shared" / "data"))


def read_perov5(
    splits: tuple[str, ...] = ("val", "test"), limit: int | None = None, seed: int | None = None
) -> list[dict[str, Any]]:
    """perov_5 rows from CDVAE's CSV files: ``{"split", "material_id", "structure", "heat_ref"}`` (heat_ref in eV/atom).

    ``limit`` keeps the first rows, or with ``seed`` a seeded random subset (in file order); only kept CIFs are parsed.
    A missing file ends the benchmark with a sentence naming it.
    """
    import csv
    import random
    import warnings

    from pymatgen.io.cif import CifParser

    csv.field_size_limit(10**8)
    raw: list[dict[str, str]] = []
    for split in splits:
        path = data_dir() / "cdvae" / "perov_5" / f"{split}.csv"
        if not path.is_file():
            raise SystemExit(f"{path} not found: set GNOMON_DATA_DIR to the shared data directory")
        with path.open(newline="") as handle:
            raw.extend({**row, "split": split} for row in csv.DictReader(handle))
    if limit is not None and limit < len(raw):
        keep = sorted(random.Random(seed).sample(range(len(raw)), limit)) if seed is not None else range(limit)
        raw = [raw[i] for i in keep]
    rows = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for row in raw:
            structure = CifParser.from_str(row["cif"]).parse_structures(primitive=False)[0]
            rows.append({"split": row["split"], "material_id": row["material_id"], "structure": structure,
                         "heat_ref": float(row["heat_ref"])})
    return rows
