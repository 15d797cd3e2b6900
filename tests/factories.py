"""Small factories for catalog rows, built from real pymatgen structures (no fixtures downloaded).

Rows are described by the services' own conversion (``readers.build_record`` → ``materials.material_fields``), so a
test material has exactly the columns an imported one has; unlike ``register_material`` the factory never merges a
duplicate crystal into an existing row, which tests of duplicates need."""

from __future__ import annotations

import itertools

from pymatgen.core import Lattice, Structure

from catalog.models import Material, MaterialOrigin, format_public_id
from catalog.readers import build_record
from catalog.services.materials import material_fields

_counter = itertools.count(1)


FCC = ((0, 0, 0), (0.5, 0.5, 0), (0.5, 0, 0.5), (0, 0.5, 0.5))
FCC_OCTAHEDRAL = ((0.5, 0.5, 0.5), (0, 0, 0.5), (0, 0.5, 0), (0.5, 0, 0))


def rocksalt(a: str, b: str, lattice: float = 5.0) -> Structure:
    """The conventional 8-atom cell, written out: ``Structure.from_spacegroup("Fm-3m", ...)`` gives the same cell but
    rebuilds the space group's 192 operations on every call (0.4 s here), which adds up across the suite."""
    return Structure(Lattice.cubic(lattice), [a] * 4 + [b] * 4, [*FCC, *FCC_OCTAHEDRAL])


def perovskite(a: str, b: str, x: str = "O", lattice: float = 3.9) -> Structure:
    return Structure.from_spacegroup(
        "Pm-3m", Lattice.cubic(lattice), [a, b, x], [[0, 0, 0], [0.5, 0.5, 0.5], [0.5, 0.5, 0]]
    )


def make_material(structure: Structure, *, dataset: str = "test", source_id: str | None = None, **fields) -> Material:
    n = next(_counter)
    record = build_record(structure, None, None, source_id=source_id or f"row-{n}", file="", location=None)
    material = Material.objects.create(
        public_id=fields.pop("public_id", format_public_id(900000 + n)),
        **{**material_fields(record), **fields},
    )
    kind = fields.get("kind", MaterialOrigin.Kind.DATASET)
    MaterialOrigin.objects.create(material=material, dataset=dataset, source_id=source_id or f"row-{n}", kind=kind)
    return material
