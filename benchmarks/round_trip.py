"""Round trips: a seeded catalog exported in every format Gnomon writes, each imported into an empty database.

For each format — the REST export's JSON Lines, extended XYZ and CIF ZIP (``api.export``, as ``GET /api/v1/export/``
streams them) read back by ``manage.py import_structures``, and the ``export_catalog`` archive read back by
``manage.py import_catalog`` — the source database (``BENCH_ROUNDTRIP_DATABASE``, default ``gnomon_roundtrip``, seeded
with ``--datasets``) is exported, a second database (``…_target``) is dropped, migrated and filled from the file, and
the two are compared:

- every format: the multiset of crystals (reduced formula, space group, sites) must be the same;
- the archive also: every energy per scheme (source key, energy per atom, protocol hash) and every rebuilt hull entry
  within 1e-6 eV/atom of the source's (the importer's own comparison).

``metrics.formats_equal`` lists the formats whose round trip reproduced the catalog; ``metrics.export_import_seconds``
the wall time of export + import per format (this machine, one process each).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/gnomon .venv/bin/python benchmarks/round_trip.py \\
        --datasets gpaw-pbe-bootstrap aviary_hf_n_ti_zr_zn perov_5
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.campaign_matrix import PYTHON, log, manage  # noqa: E402
from benchmarks.common import ROOT, data_dir, write_result  # noqa: E402
from benchmarks.synthetic_catalog import sibling_database_url  # noqa: E402

NAME = "round_trip"
FORMATS = {"jsonl": ".jsonl", "extxyz": ".extxyz", "cif": ".zip", "archive": ".tar.gz"}
EXPORT = """
import sys
from api.export import DEFAULT_FIELDS, stream_export
from catalog.models import Material
with open(sys.argv[1], "wb") as out:
    for chunk in stream_export(Material.objects.order_by("id"), sys.argv[2], DEFAULT_FIELDS[sys.argv[2]]):
        out.write(chunk)
"""


def recreate(url: str) -> None:
    import psycopg
    from psycopg import sql

    name = url.rsplit("/", 1)[1]
    with psycopg.connect(url.rsplit("/", 1)[0] + "/postgres", autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def crystals(url: str) -> Counter:
    import psycopg

    with psycopg.connect(url) as conn:
        return Counter(conn.execute("SELECT formula_reduced, spacegroup_number, nsites FROM catalog_material").fetchall())


def energies(url: str) -> Counter:
    import psycopg

    with psycopg.connect(url) as conn:
        return Counter(conn.execute(
            "SELECT s.name, e.source_key, round(e.energy_per_atom::numeric, 9), e.protocol_hash FROM "
            "catalog_energyrecord e JOIN catalog_scheme s ON s.id = e.scheme_id").fetchall())


def python(env: dict[str, str], code: str, *args: str) -> None:
    setup = "import django, os; os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'gnomon.settings'); django.setup()\n"
    subprocess.run([PYTHON, "-c", setup + code, *args], cwd=ROOT, env=env, check=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", nargs="+", default=["gpaw-pbe-bootstrap", "aviary_hf_n_ti_zr_zn", "perov_5"],
                        help="seed datasets of the source catalog")
    parser.add_argument("--formats", nargs="+", choices=sorted(FORMATS), default=list(FORMATS))
    options = parser.parse_args()

    source = sibling_database_url("BENCH_ROUNDTRIP_DATABASE", "gnomon_roundtrip")
    target = source + "_target"
    base = {**os.environ, "GNOMON_DATA_DIR": str(data_dir())}
    source_env, target_env = {**base, "DATABASE_URL": source}, {**base, "DATABASE_URL": target}
    log(f"source catalog: {', '.join(options.datasets)}")
    recreate(source)
    manage(source_env, "migrate", "--noinput", "-v", "0")
    for dataset in options.datasets:
        manage(source_env, "load_seed", "--dataset", dataset, "--no-hulls", "--no-progress")
    manage(source_env, "recompute_hulls")
    want_crystals, want_energies = crystals(source), energies(source)
    log(f"source: {sum(want_crystals.values())} crystals, {sum(want_energies.values())} energies")

    rows: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for fmt in options.formats:
            path = Path(tmp) / f"catalog{FORMATS[fmt]}"
            recreate(target)
            manage(target_env, "migrate", "--noinput", "-v", "0")
            t0 = time.monotonic()
            if fmt == "archive":
                manage(source_env, "export_catalog", str(path))
                run = subprocess.run([PYTHON, "manage.py", "import_catalog", str(path)], cwd=ROOT, env=target_env,
                                     capture_output=True, text=True)
            else:
                python(source_env, EXPORT, str(path), fmt)
                run = subprocess.run([PYTHON, "manage.py", "import_structures", str(path), "--source", "round-trip",
                                      "--no-progress"], cwd=ROOT, env=target_env, capture_output=True, text=True)
            seconds = round(time.monotonic() - t0, 1)
            got = crystals(target)
            row = {"export_import_seconds": seconds, "bytes": path.stat().st_size, "exit_code": run.returncode,
                   "crystals_source": sum(want_crystals.values()), "crystals_imported": sum(got.values()),
                   "crystals_missing": sum((want_crystals - got).values()), "crystals_extra": sum((got - want_crystals).values()),
                   "output_tail": (run.stdout + run.stderr)[-400:]}
            equal = run.returncode == 0 and got == want_crystals
            if fmt == "archive":
                have = energies(target)
                row["energies_missing"] = sum((want_energies - have).values())
                match = re.search(r"largest difference ([0-9.e+-]+) eV/atom, (\d+) beyond", run.stdout)
                row["hull_max_abs_diff_eV_per_atom"] = float(match.group(1)) if match else None
                row["hull_entries_beyond_1e-6"] = int(match.group(2)) if match else None
                equal = equal and have == want_energies and match is not None and match.group(2) == "0"
            row["equal"] = equal
            rows[fmt] = row
            log(f"{fmt}: {'equal' if equal else 'DIFFERENT'} in {seconds} s ({row['crystals_imported']} of "
                f"{row['crystals_source']} crystals)")
    metrics = {
        "formats_equal": sorted(f for f, r in rows.items() if r["equal"]),
        "formats_tried": sorted(rows),
        "export_import_seconds": {f: r["export_import_seconds"] for f, r in rows.items()},
        "n_crystals": sum(want_crystals.values()),
        "n_energies": sum(want_energies.values()),
        "datasets": options.datasets,
        "per_format": rows,
    }
    baseline = {"what": "main before issue #23's work",
                "measured": "not re-run: the issue reports jsonl and cif-zip exports refused ('unknown file type') and "
                            "the extxyz export crashing import_structures (int64 not JSON serializable); no archive"}
    write_result(NAME, metrics, baseline, None)


if __name__ == "__main__":
    main()
