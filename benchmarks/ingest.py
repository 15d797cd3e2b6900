"""Import throughput of the largest seed file (perov_5 val+test, 7,572 CIFs) against the naive floor.

The floor is what any importer must at least do, measured in the same run on the same machine: pymatgen's CifParser
plus spglib's SpacegroupAnalyzer, one process, nothing stored. The import does that and more (primitive-cell dedup keys,
duplicate matching, batched PostgreSQL writes, energies) with GNOMON_IMPORT_WORKERS parser processes. Goal: the import's
materials/s is at least 50 % of the floor's structures/s. Runs in a scratch test database, dropped afterwards.

    python benchmarks/ingest.py [--limit N]
"""

from __future__ import annotations

import argparse
import csv
import sys
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import setup_django, write_result  # noqa: E402

GOAL_FRACTION = 0.5


def perov_files() -> list[Path]:
    from catalog.datasets import PEROV_5, resolve_files

    files = resolve_files(PEROV_5)
    return [files["val.csv"], files["test.csv"]]


def floor_rate(files: list[Path], limit: int | None) -> tuple[float, int]:
    from pymatgen.io.cif import CifParser
    from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

    csv.field_size_limit(2**31 - 1)
    cifs = []
    for path in files:
        with open(path, newline="") as handle:
            cifs += [row["cif"] for row in csv.DictReader(handle)]
    cifs = cifs[:limit] if limit else cifs
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for cif in cifs:
            structure = CifParser.from_str(cif).parse_structures(primitive=False)[0]
            SpacegroupAnalyzer(structure, symprec=0.1).get_space_group_number()
    return len(cifs) / (time.perf_counter() - start), len(cifs)


def import_rate(files: list[Path], limit: int | None, workers: int | None) -> dict:
    from django.conf import settings

    from catalog.models import EnergyRecord, Material
    from catalog.services.ingest import ImportOptions, import_paths

    options = ImportOptions(source="perov_5", scheme="dataset:perov5-castelli", workers=workers, limit=limit,
                            update_hulls=False)
    start = time.perf_counter()
    summary = import_paths([str(p) for p in files], options)
    elapsed = time.perf_counter() - start
    assert summary.rejected == 0, summary.problems[:3]
    again_start = time.perf_counter()
    again = import_paths([str(p) for p in files], options)
    again_elapsed = time.perf_counter() - again_start
    assert again.imported == again.merged == 0
    return {
        "materials": Material.objects.count(),
        "energy_records": EnergyRecord.objects.count(),
        "merged": summary.merged,
        "seconds": round(elapsed, 2),
        "materials_per_s": round((summary.imported + summary.merged) / elapsed, 1),
        "reimport_seconds": round(again_elapsed, 2),
        "workers": workers or settings.GNOMON_IMPORT_WORKERS,
        "batch_size": settings.GNOMON_IMPORT_BATCH_SIZE,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--workers", type=int, default=None)
    args = parser.parse_args()
    setup_django()
    from django.test.utils import setup_databases, teardown_databases

    files = perov_files()
    floor, n = floor_rate(files, args.limit)
    print(f"floor (CifParser + SpacegroupAnalyzer, 1 process): {floor:.1f} structures/s over {n}")
    databases = setup_databases(verbosity=0, interactive=False)
    try:
        result = import_rate(files, args.limit, args.workers)
    finally:
        from django.db import connections

        connections.close_all()
        try:
            teardown_databases(databases, verbosity=0)
        except Exception as exc:  # noqa: BLE001 - a lingering pool session must not lose the measurement
            print(f"warning: scratch database not dropped ({exc}); drop it by hand")
    fraction = result["materials_per_s"] / floor
    print(f"import: {result['materials_per_s']:.1f} materials/s ({result['seconds']} s, {result['workers']} workers), "
          f"{fraction:.0%} of the floor (goal {GOAL_FRACTION:.0%}); re-import {result['reimport_seconds']} s")
    write_result(
        "ingest",
        metrics={**result, "fraction_of_floor": round(fraction, 3), "goal_fraction": GOAL_FRACTION,
                 "meets_goal": fraction >= GOAL_FRACTION},
        baseline={"name": "CifParser + SpacegroupAnalyzer, single process, nothing stored",
                  "structures_per_s": round(floor, 1), "structures": n},
        speedup=round(fraction, 3),
        extra={"dataset": "perov_5 val.csv + test.csv", "rows": n},
    )


if __name__ == "__main__":
    main()
