#!/usr/bin/env python
"""Fill a PostgreSQL database with N synthetic materials quickly (COPY), for load tests and 1M-row benchmarks.

    python benchmarks/synthetic_catalog.py --database gnomon_load --count 100000

Each material is one of six common prototypes (rocksalt, zincblende, fluorite, rutile, cubic perovskite, full
Heusler) filled with elements drawn from realistic pools (alkali / alkaline-earth / transition /
rare-earth cations, chalcogen / halogen / pnictogen anions), its lattice scaled by ±6 %, so compositions, chemical
systems, space groups and crystal systems vary like a real catalog's (spglib runs once per prototype). It gets a
formation energy (eV/atom), an energy above the hull (most near 0, a long tail), ``is_stable``, a formation-energy record in one synthetic scheme, and an
origin (two datasets, 5 % from a campaign). Rows stream through ``COPY ... FROM STDIN`` with the secondary indexes
dropped and rebuilt afterwards, so a million rows take minutes, not hours.

The database (``--database`` on the server of ``DATABASE_URL``, or ``--database-url``) is created and migrated when
missing. Rows are added to what is there (``--count`` is the number to add); ``--drop`` empties the catalog first.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import random
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))

SCHEME_NAME = "synthetic:formation"
DATASETS = ("synthetic:oqmd-like", "synthetic:mp-like")
CAMPAIGN_DATASET = "campaign:synthetic"

ALKALI = ["Li", "Na", "K", "Rb", "Cs"]
ALKALINE_EARTH = ["Mg", "Ca", "Sr", "Ba"]
TRANSITION = ["Ti", "V", "Cr", "Mn", "Fe", "Co", "Ni", "Cu", "Zn", "Zr", "Nb", "Mo", "Ta", "W", "Y", "Sc", "Hf"]
RARE_EARTH = ["La", "Ce", "Nd", "Sm", "Gd"]
P_BLOCK = ["Al", "Ga", "In", "Sn", "Pb", "Bi", "Sb"]
CHALCOGEN = ["O", "S", "Se", "Te"]
HALOGEN = ["F", "Cl", "Br", "I"]
PNICTOGEN = ["N", "P", "As"]
CATIONS = ALKALI + ALKALINE_EARTH + TRANSITION + RARE_EARTH + P_BLOCK
ANIONS = CHALCOGEN + HALOGEN + PNICTOGEN

FCC = [[0, 0, 0], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]]
# prototype → (space group symbol, lattice (a, c/a), [(species slot, one site per Wyckoff orbit)], slot pools)
PROTOTYPES = {
    "rocksalt": ("Fm-3m", (5.0, 1.0), [("A", [[0, 0, 0]]), ("X", [[0.5, 0.5, 0.5]])], {"A": CATIONS, "X": ANIONS}),
    "zincblende": ("F-43m", (5.6, 1.0), [("A", [[0, 0, 0]]), ("X", [[0.25, 0.25, 0.25]])],
                   {"A": TRANSITION + P_BLOCK + ALKALINE_EARTH, "X": CHALCOGEN + PNICTOGEN}),
    "fluorite": ("Fm-3m", (5.4, 1.0), [("A", [[0, 0, 0]]), ("X", [[0.25, 0.25, 0.25]])],
                 {"A": ALKALINE_EARTH + RARE_EARTH + TRANSITION, "X": HALOGEN + CHALCOGEN}),
    "rutile": ("P4_2/mnm", (4.6, 0.65), [("A", [[0, 0, 0]]), ("X", [[0.3, 0.3, 0]])],
               {"A": TRANSITION + P_BLOCK, "X": CHALCOGEN + HALOGEN}),
    "perovskite": ("Pm-3m", (3.9, 1.0),
                   [("A", [[0, 0, 0]]), ("B", [[0.5, 0.5, 0.5]]), ("X", [[0.5, 0.5, 0]])],
                   {"A": ALKALI + ALKALINE_EARTH + RARE_EARTH, "B": TRANSITION + P_BLOCK, "X": ["O", "F", "Cl", "S"]}),
    "heusler": ("Fm-3m", (5.8, 1.0),
                [("A", [[0.25, 0.25, 0.25]]), ("B", [[0, 0, 0]]), ("X", [[0.5, 0.5, 0.5]])],
                {"A": TRANSITION, "B": TRANSITION + RARE_EARTH, "X": P_BLOCK}),
}
PROTOTYPE_WEIGHTS = {"rocksalt": 3, "zincblende": 1, "fluorite": 2, "rutile": 2, "perovskite": 4, "heusler": 1}

MATERIAL_COLUMNS = (
    "id", "public_id", "structure", "formula_reduced", "formula_anonymous", "elements", "nelements", "chemsys", "nsites",
    "volume", "density", "spacegroup_number", "spacegroup_symbol", "crystal_system", "symprec", "fingerprint",
    "formation_energy_per_atom", "e_above_hull", "is_stable", "hull_scheme_id", "created_at", "updated_at",
)
ORIGIN_COLUMNS = ("material_id", "kind", "dataset", "source_id", "licence", "details", "created_at")
ENERGY_COLUMNS = ("scheme_id", "material_id", "source_key", "composition", "elements", "chemsys", "natoms",
                  "formation_energy_per_atom", "correction", "produced_by", "data", "created_at")


def database_url(options: argparse.Namespace) -> str:
    if options.database_url:
        return options.database_url
    base = os.environ.get("DATABASE_URL")
    if not base:
        raise SystemExit("set DATABASE_URL (the server) or pass --database-url")
    if not options.database:
        return base
    return urlunsplit(urlsplit(base)._replace(path=f"/{options.database}"))


def ensure_database(url: str) -> None:
    """Create the database when missing and apply migrations (idempotent)."""
    import psycopg

    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    admin = urlunsplit(parts._replace(path="/postgres", scheme="postgresql"))
    with psycopg.connect(admin, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')  # noqa: S608 - a name from our own command line
    subprocess.run([sys.executable, str(ROOT / "manage.py"), "migrate", "-v0"], check=True,
                   env={**os.environ, "DATABASE_URL": url}, cwd=ROOT)


def sibling_database_url(env_var: str, default_name: str) -> str:
    """A database of its own on the ``DATABASE_URL`` server, named by ``env_var`` (default ``default_name``), so a
    benchmark's big tables never meet the tests' or the demo's."""
    base = os.environ.get("DATABASE_URL")
    if not base:
        raise SystemExit("set DATABASE_URL to the PostgreSQL server; the benchmark uses its own database on it")
    return urlunsplit(urlsplit(base)._replace(path=f"/{os.environ.get(env_var, default_name)}"))


def top_up(url: str, materials: int) -> int:
    """Fill the database at ``url`` up to ``materials`` synthetic rows (this script, by COPY); returns the row count."""
    import psycopg

    ensure_database(url)
    with psycopg.connect(url) as conn:
        have = conn.execute("SELECT count(*) FROM catalog_material").fetchone()[0]
    if have < materials:
        subprocess.run([sys.executable, str(Path(__file__).resolve()), "--database-url", url,
                        "--count", str(materials - have), "--seed", str(have)], check=True,
                       cwd=Path(__file__).resolve().parent.parent)
    with psycopg.connect(url) as conn:
        return conn.execute("SELECT count(*) FROM catalog_material").fetchone()[0]


def setup_django(url: str) -> None:
    os.environ["DATABASE_URL"] = url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gnomon.settings")
    os.environ.setdefault("GNOMON_LOG_LEVEL", "WARNING")
    import django

    django.setup()


PLACEHOLDERS = {"A": "H", "B": "He", "X": "Li"}  # distinct stand-ins, one per slot, replaced per material


@cache
def prototype_cell(prototype: str):
    """(structure with placeholder species, its description): ``from_spacegroup`` and spglib run once per prototype."""
    from pymatgen.core import Lattice, Structure

    from catalog.structures import describe

    symbol, (a, c_over_a), slots, _ = PROTOTYPES[prototype]
    lattice = Lattice.tetragonal(a, a * c_over_a) if c_over_a != 1.0 else Lattice.cubic(a)
    structure = Structure.from_spacegroup(symbol, lattice, [PLACEHOLDERS[slot] for slot, sites in slots for _ in sites],
                                          [site for _, sites in slots for site in sites])
    return structure, describe(structure)


@cache
def template(prototype: str, species: tuple[str, ...]) -> dict:
    """Structure dict and descriptors of one prototype filled with ``species`` (one per slot), at its base lattice.

    The space group does not depend on which (distinct) elements fill the slots, so it is the prototype's.
    """
    from catalog.structures import chemsys_of

    base, symmetry = prototype_cell(prototype)
    _, _, slots, _ = PROTOTYPES[prototype]
    structure = base.copy()
    structure.replace_species({PLACEHOLDERS[slot]: element for (slot, _), element in zip(slots, species, strict=True)})
    comp = structure.composition
    elements = sorted(el.symbol for el in comp.elements)
    return {
        "structure": structure.as_dict(), "formula_reduced": comp.reduced_formula,
        "formula_anonymous": comp.anonymized_formula, "elements": elements, "chemsys": chemsys_of(comp),
        "nsites": len(structure), "volume": float(structure.volume), "density": float(structure.density),
        "spacegroup_number": symmetry.spacegroup_number, "spacegroup_symbol": symmetry.spacegroup_symbol,
        "crystal_system": symmetry.crystal_system, "symprec": symmetry.symprec,
        "composition": comp.formula.replace(" ", ""), "natoms": float(comp.num_atoms),
        "pg_elements": "{" + ",".join(elements) + "}",
    }


@cache
def fingerprint(formula: str, volume_bucket: int) -> str:
    """``catalog.structures.fingerprint_of`` without building a Structure: same key, same hash (2 Å³/atom bins)."""
    import hashlib

    return hashlib.sha1(f"{formula}|{volume_bucket}".encode(), usedforsecurity=False).hexdigest()[:16]


def scaled_structure(structure: dict, factor: float) -> str:
    """JSON of a structure dict with every length scaled by ``factor`` (fractional coordinates unchanged)."""
    lattice = structure["lattice"]
    new_lattice = {**lattice, "matrix": [[x * factor for x in row] for row in lattice["matrix"]],
                   "a": lattice["a"] * factor, "b": lattice["b"] * factor, "c": lattice["c"] * factor,
                   "volume": lattice["volume"] * factor**3}
    sites = [{**site, "xyz": [x * factor for x in site["xyz"]]} for site in structure["sites"]]
    return json.dumps({**structure, "lattice": new_lattice, "sites": sites}, separators=(",", ":"))


def draw_species(rng: random.Random, prototype: str) -> tuple[str, ...]:
    _, _, slots, pools = PROTOTYPES[prototype]
    while True:
        species = tuple(rng.choice(pools[slot]) for slot, _ in slots)
        if len(set(species)) == len(species):
            return species


def rows(count: int, first_id: int, seed: int, scheme_id: int):
    """(material, origin, energy) tuples in COPY column order."""
    from catalog.models import MaterialOrigin, format_public_id

    rng = random.Random(seed)
    names = list(PROTOTYPE_WEIGHTS)
    weights = list(PROTOTYPE_WEIGHTS.values())
    now = datetime.now(UTC)
    for offset in range(count):
        pk = first_id + offset
        prototype = rng.choices(names, weights)[0]
        t = template(prototype, draw_species(rng, prototype))
        factor = rng.uniform(0.94, 1.06)
        volume = t["volume"] * factor**3
        e_above_hull = 0.0 if rng.random() < 0.12 else round(rng.expovariate(1 / 0.12), 4)
        formation = round(rng.gauss(-1.6, 1.0), 4)
        created = now - timedelta(seconds=count - offset)
        material = (
            pk, format_public_id(pk), scaled_structure(t["structure"], factor), t["formula_reduced"],
            t["formula_anonymous"], t["pg_elements"], len(t["elements"]), t["chemsys"], t["nsites"], volume,
            t["density"] / factor**3, t["spacegroup_number"], t["spacegroup_symbol"], t["crystal_system"], t["symprec"],
            fingerprint(t["formula_reduced"], int(volume / t["nsites"] // 2)), formation, e_above_hull,
            e_above_hull == 0.0, scheme_id, created, created,
        )
        if rng.random() < 0.05:
            origin = (pk, MaterialOrigin.Kind.CAMPAIGN, CAMPAIGN_DATASET, f"c-{pk}", "",
                      json.dumps({"campaign": 1 + pk % 3}), created)
        else:
            dataset = DATASETS[pk % len(DATASETS)]
            origin = (pk, MaterialOrigin.Kind.DATASET, dataset, f"s-{pk}", "CC BY 4.0", "{}", created)
        energy = (scheme_id, pk, f"synthetic:{pk}", t["composition"], t["pg_elements"], t["chemsys"], t["natoms"],
                  formation, 0.0, "synthetic_catalog.py", "{}", created)
        yield material, origin, energy


def secondary_indexes(cursor, table: str) -> list[tuple[str, str]]:
    """(name, CREATE INDEX statement) of indexes that back no constraint: safe to drop during a bulk load."""
    cursor.execute(
        """SELECT i.indexname, i.indexdef FROM pg_indexes i
           WHERE i.tablename = %s AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conname = i.indexname)""",
        (table,),
    )
    return list(cursor.fetchall())


def fill(count: int, seed: int, drop: bool, batch: int = 50_000) -> dict:
    """Add ``count`` materials (plus their origins and energy records) with COPY; returns timings."""
    from django.db import connection

    from catalog.models import EnergyRecord, Material, MaterialOrigin, Scheme

    if drop:
        with connection.cursor() as cursor:
            cursor.execute("TRUNCATE catalog_material, catalog_materialorigin, catalog_energyrecord, "
                           "catalog_hullentry CASCADE")
    scheme, _ = Scheme.objects.get_or_create(
        name=SCHEME_NAME, defaults={"kind": Scheme.Kind.FORMATION_ENERGY, "is_dft": True,
                                    "description": "synthetic formation energies (benchmarks/synthetic_catalog.py)"})
    first_id = (Material.objects.order_by("-id").values_list("id", flat=True).first() or 0) + 1
    started = time.monotonic()
    tables = [("catalog_material", Material), ("catalog_materialorigin", MaterialOrigin),
              ("catalog_energyrecord", EnergyRecord)]
    connection.ensure_connection()
    raw = connection.connection
    dropped: list[tuple[str, str]] = []
    with raw.cursor() as cursor:
        if count >= 50_000:
            for table, _ in tables:
                for name, definition in secondary_indexes(cursor, table):
                    cursor.execute(f'DROP INDEX "{name}"')
                    dropped.append((name, definition))
        raw.commit()
        done = 0
        generator = rows(count, first_id, seed, scheme.pk)
        while done < count:
            chunk = list(itertools.islice(generator, batch))
            with cursor.copy(f"COPY catalog_material ({', '.join(MATERIAL_COLUMNS)}) FROM STDIN") as copy:
                for material, _, _ in chunk:
                    copy.write_row(material)
            with cursor.copy(f"COPY catalog_materialorigin ({', '.join(ORIGIN_COLUMNS)}) FROM STDIN") as copy:
                for _, origin, _ in chunk:
                    copy.write_row(origin)
            with cursor.copy(f"COPY catalog_energyrecord ({', '.join(ENERGY_COLUMNS)}) FROM STDIN") as copy:
                for _, _, energy in chunk:
                    copy.write_row(energy)
            raw.commit()
            done += len(chunk)
            rate = done / (time.monotonic() - started)
            print(f"    {done:,} / {count:,} materials ({rate:,.0f}/s)", flush=True)
        copied = time.monotonic() - started
        for _name, definition in dropped:
            cursor.execute(definition)
        for table, _ in tables:
            cursor.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))")  # noqa: S608 - fixed names
            cursor.execute(f"ANALYZE {table}")
        raw.commit()
    return {"materials": count, "copy_seconds": round(copied, 1), "indexes_rebuilt": len(dropped),
            "total_seconds": round(time.monotonic() - started, 1),
            "materials_in_catalog": Material.objects.count()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=100_000, help="materials to add (default 100,000)")
    parser.add_argument("--database", help="database name on the DATABASE_URL server (e.g. gnomon_load)")
    parser.add_argument("--database-url", help="full URL instead of --database")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--drop", action="store_true", help="empty the catalog tables first")
    options = parser.parse_args()
    url = database_url(options)
    ensure_database(url)
    setup_django(url)
    result = fill(options.count, options.seed, options.drop)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
