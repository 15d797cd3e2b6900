"""Structure downloads: one function turning a pymatgen Structure into each file format the UI and API offer."""

from __future__ import annotations

import io
import json

from pymatgen.core import Structure

# fmt -> (content type, file extension)
FORMATS: dict[str, tuple[str, str]] = {
    "cif": ("chemical/x-cif", "cif"),
    "poscar": ("text/plain", "vasp"),
    "json": ("application/json", "json"),
    "xyz": ("chemical/x-xyz", "xyz"),  # extended XYZ: lattice and pbc in the comment line
}


class UnknownFormat(ValueError):
    pass


def structure_to_format(structure: Structure, fmt: str) -> tuple[bytes, str, str]:
    """Serialise ``structure`` as ``fmt`` (cif, poscar, json, xyz). Returns (content, content type, file extension)."""
    fmt = fmt.lower()
    if fmt not in FORMATS:
        raise UnknownFormat(f"unknown format '{fmt}'; choose from {', '.join(FORMATS)}")
    content_type, extension = FORMATS[fmt]
    if fmt == "cif":
        from pymatgen.io.cif import CifWriter

        text = str(CifWriter(structure))
    elif fmt == "poscar":
        from pymatgen.io.vasp import Poscar

        text = Poscar(structure).get_str()
    elif fmt == "json":
        text = json.dumps(structure.as_dict(), indent=1)
    else:
        from ase.io import write
        from pymatgen.io.ase import AseAtomsAdaptor

        buffer = io.StringIO()
        write(buffer, AseAtomsAdaptor.get_atoms(structure), format="extxyz")
        text = buffer.getvalue()
    return text.encode(), content_type, extension
