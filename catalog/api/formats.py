"""Structure files served by the API and the bulk export: CIF, POSCAR, extended XYZ.

Extended XYZ is written straight from the stored ``Structure.as_dict()`` (no pymatgen objects), because the bulk export
writes it for every row; CIF and POSCAR go through pymatgen's writers, which get the symmetry and format details right.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from pymatgen.core import Structure

STRUCTURE_FORMATS = {
    "cif": "chemical/x-cif",
    "poscar": "text/plain",
    "extxyz": "chemical/x-extxyz",
}
FILE_EXTENSIONS = {"cif": "cif", "poscar": "vasp", "extxyz": "extxyz", "json": "json"}


def to_cif(structure: Mapping) -> str:
    from pymatgen.io.cif import CifWriter

    return str(CifWriter(Structure.from_dict(structure)))


def to_poscar(structure: Mapping, comment: str = "") -> str:
    from pymatgen.io.vasp import Poscar

    return Poscar(Structure.from_dict(structure), comment=comment or None).get_str()


def _species_label(site: Mapping) -> str:
    species = site["species"]
    if len(species) == 1:
        return species[0]["element"]
    return "".join(f"{sp['element']}{sp['occu']:g}" for sp in species)


def _info_value(value) -> str:
    if isinstance(value, bool):
        return "T" if value else "F"
    if isinstance(value, (int, float)):
        return repr(value)
    return json.dumps(str(value))


def to_extxyz(structure: Mapping, info: Mapping | None = None) -> str:
    """One extended-XYZ frame (ASE's dialect): lattice rows in Å, Cartesian positions in Å, ``info`` as key=value."""
    matrix = structure["lattice"]["matrix"]
    lattice = " ".join(f"{x:.10g}" for row in matrix for x in row)
    pbc = structure["lattice"].get("pbc", (True, True, True))
    header = [
        f'Lattice="{lattice}"',
        "Properties=species:S:1:pos:R:3",
        f'pbc="{" ".join("T" if p else "F" for p in pbc)}"',
    ]
    for key, value in (info or {}).items():
        if value is not None:
            header.append(f"{key}={_info_value(value)}")
    lines = [str(len(structure["sites"])), " ".join(header)]
    for site in structure["sites"]:
        x, y, z = site["xyz"]
        lines.append(f"{_species_label(site)} {x:.8f} {y:.8f} {z:.8f}")
    return "\n".join(lines) + "\n"
