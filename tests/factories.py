"""Small factories for catalog rows, built from real pymatgen structures (no fixtures downloaded)."""

from __future__ import annotations

import itertools

from pymatgen.core import Lattice, Structure

from catalog.models import Material, MaterialOrigin, format_public_id
from catalog.structures import describe

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
    d = describe(structure)
    n = next(_counter)
    material = Material.objects.create(
        public_id=fields.pop("public_id", format_public_id(900000 + n)),
        structure=structure.as_dict(),
        formula_reduced=d.formula_reduced,
        formula_anonymous=d.formula_anonymous,
        elements=list(d.elements),
        nelements=len(d.elements),
        chemsys=d.chemsys,
        nsites=d.nsites,
        volume=d.volume,
        density=d.density,
        spacegroup_number=d.spacegroup_number,
        spacegroup_symbol=d.spacegroup_symbol,
        crystal_system=d.crystal_system,
        symprec=d.symprec,
        fingerprint=d.fingerprint,
        **fields,
    )
    kind = fields.get("kind", MaterialOrigin.Kind.DATASET)
    MaterialOrigin.objects.create(material=material, dataset=dataset, source_id=source_id or f"row-{n}", kind=kind)
    return material
