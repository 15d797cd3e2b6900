"""Readers for crystal-structure files and the energies that come with them (pure: no Django).

Reading is split in two so that the expensive part runs in worker processes:

1. ``iter_units(path)`` walks a file cheaply in the parent process and yields *units*: plain dicts holding text (a CIF, a
   POSCAR, a CSV row's CIF column) or a JSON dict, plus the energy columns already read, the file name and row. A unit
   may expand to several records (a multi-block CIF, an extended-XYZ trajectory, a JSON list).
2. ``parse_unit(unit)`` (picklable, run in a ``multiprocessing`` pool) parses the structure, describes it (formula,
   symmetry, dedup keys) and returns plain dicts: a ``record`` per structure, or a ``problem`` naming the file, the row
   or id and the reason. Nothing raises out of ``parse_unit``: one bad row never stops an import.

Energy semantics are decided here, once, from the column or field name (see ``ENERGY_COLUMNS``): a value is kept with
its meaning and never converted into another kind of energy.
"""

from __future__ import annotations

import csv
import glob
import gzip
import io
import json
import math
import sys
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from catalog.energy_kinds import FORMATION_ENERGY, STABILITY_VALUE, TOTAL_ENERGY
from catalog.structures import DEFAULT_SYMPREC, MIN_INTERATOMIC_DISTANCE, check_cell, closest_pair, describe

# Column name (lower-case) -> (kind, field). First match in this order wins; every other column goes to ``data``.
# ``heat_ref`` (perov_5, Castelli et al. 2012) is a heat of formation against the original study's reference phases,
# not against the elements: it is a dataset stability value and never builds a hull.
ENERGY_COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("energy_total", TOTAL_ENERGY, "energy_total"),
    ("total_energy", TOTAL_ENERGY, "energy_total"),
    ("energy", TOTAL_ENERGY, "energy_total"),
    ("uncorrected_energy", TOTAL_ENERGY, "energy_total"),
    ("energy_per_atom", TOTAL_ENERGY, "energy_per_atom"),
    ("formation_energy_per_atom", FORMATION_ENERGY, "formation_energy_per_atom"),
    ("e_form", FORMATION_ENERGY, "formation_energy_per_atom"),
    ("e_form_per_atom", FORMATION_ENERGY, "formation_energy_per_atom"),
    ("e_f", FORMATION_ENERGY, "formation_energy_per_atom"),
    ("heat_ref", STABILITY_VALUE, "stability_value"),
)
ID_COLUMNS = ("material_id", "id", "mp_id", "entry_id", "name")
STRUCTURE_COLUMNS = ("cif", "structure", "poscar")

CIF_SUFFIXES = {".cif", ".mcif"}
POSCAR_SUFFIXES = {".vasp", ".poscar"}
POSCAR_NAMES = {"POSCAR", "CONTCAR"}
XYZ_SUFFIXES = {".xyz", ".extxyz"}
JSON_SUFFIXES = {".json"}
JSONL_SUFFIXES = {".jsonl", ".ndjson"}  # one JSON object a line: the REST API's export, OPTIMADE-style dumps
CSV_SUFFIXES = {".csv"}
ZIP_SUFFIXES = {".zip"}  # any of the formats above inside, e.g. the REST API's CIF export
FORMATS_TEXT = ".cif, .vasp/.poscar/POSCAR/CONTCAR, .xyz/.extxyz, .json, .jsonl, .csv (optionally .gz) or a .zip of them"


@dataclass(frozen=True)
class SourceFile:
    """A file to read and the name its records are known by (relative to the directory the user named)."""

    path: Path
    name: str


def _strip_gz(name: str) -> str:
    return name[:-3] if name.lower().endswith(".gz") else name


def detect_format(path: Path | str) -> str | None:
    """'cif' | 'poscar' | 'xyz' | 'json' | 'jsonl' | 'csv' | 'zip' from the file name (a trailing .gz is ignored),
    else None."""
    name = _strip_gz(Path(path).name)
    suffix = Path(name).suffix.lower()
    if suffix in CIF_SUFFIXES:
        return "cif"
    if suffix in POSCAR_SUFFIXES or name.split(".")[0] in POSCAR_NAMES:
        return "poscar"
    if suffix in XYZ_SUFFIXES:
        return "xyz"
    if suffix in JSON_SUFFIXES:
        return "json"
    if suffix in JSONL_SUFFIXES:
        return "jsonl"
    if suffix in CSV_SUFFIXES:
        return "csv"
    if suffix in ZIP_SUFFIXES and name == Path(path).name:  # a .zip.gz is not read
        return "zip"
    return None


def expand_paths(paths: Iterable[str | Path]) -> tuple[list[SourceFile], list[dict]]:
    """Files behind the user's arguments: files, directories (recursively, known formats only) and glob patterns.

    Returns the files in a stable order and a list of problems for arguments that match nothing.
    """
    files: list[SourceFile] = []
    problems: list[dict] = []
    seen: set[Path] = set()

    def add(path: Path, name: str) -> None:
        resolved = path.resolve()
        if resolved not in seen:
            seen.add(resolved)
            files.append(SourceFile(path=path, name=name))

    for arg in paths:
        arg = str(arg)
        path = Path(arg)
        if path.is_dir():
            for child in sorted(p for p in path.rglob("*") if p.is_file()):
                if detect_format(child):
                    add(child, child.relative_to(path).as_posix())
        elif path.is_file():
            add(path, path.name)
        elif glob.has_magic(arg):
            matches = sorted(Path(p) for p in glob.glob(arg, recursive=True))
            if not matches:
                problems.append(problem(arg, None, None, "pattern matches no file"))
            for match in matches:
                if match.is_file():
                    add(match, match.name)
                elif match.is_dir():
                    sub, sub_problems = expand_paths([match])
                    problems.extend(sub_problems)
                    for source in sub:
                        add(source.path, source.name)
        else:
            problems.append(problem(arg, None, None, "no such file or directory"))
    return files, problems


def open_text(path: Path) -> io.TextIOBase:
    """Open a text file, gzip-compressed or not."""
    if str(path).lower().endswith(".gz"):
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8", newline="")
    return open(path, encoding="utf-8", newline="")  # noqa: SIM115 - caller closes


def problem(file: str, location: str | None, source_id: str | None, reason: str) -> dict:
    return {"ok": False, "file": file, "location": location, "source_id": source_id, "reason": reason}


def _float_or_none(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, str):
        value = value.strip()
        if value == "" or value.lower() in {"nan", "none", "null", "na"}:
            return None
    number = float(value)
    if math.isnan(number):
        return None
    if math.isinf(number):
        raise ValueError(f"infinite value {value!r}")
    return number


def energy_from_columns(row: dict[str, Any]) -> tuple[dict | None, dict]:
    """Split a row into (energy, data). ``energy`` is ``{"kind", field: value, "column"}`` or None; ``data`` has the rest.

    Raises ValueError for a present but non-numeric energy value.
    """
    lowered = {str(k).strip().lower(): k for k in row if k is not None}
    energy = None
    used: set[str] = set()
    for column, kind, field in ENERGY_COLUMNS:
        if column in lowered:
            original = lowered[column]
            try:
                value = _float_or_none(row[original])
            except ValueError as exc:
                raise ValueError(f"column {original!r}: not a number ({row[original]!r})") from exc
            if value is None:
                continue
            energy = {"kind": kind, field: value, "column": original}
            used.add(original)
            break
    data: dict[str, Any] = {}
    for key, value in row.items():
        if key is None or key == "" or key in used or str(key).strip().lower() in STRUCTURE_COLUMNS:
            continue
        if str(key).strip().lower() in ID_COLUMNS:
            continue
        data[str(key)] = _jsonable(value)
    return energy, data


def _jsonable(value: Any) -> Any:
    if isinstance(value, str):
        stripped = value.strip()
        try:
            number = float(stripped)
        except ValueError:
            return value
        if math.isnan(number) or math.isinf(number):
            return None
        return int(number) if stripped.lstrip("-").isdigit() else number
    return value


# ----------------------------------------------------------------------------------------------------------------
# Step 1: units (parent process, cheap)
# ----------------------------------------------------------------------------------------------------------------


def iter_units(source: SourceFile, *, poscar_energy_in_comment: bool = False) -> Iterator[dict]:
    """Yield units (to parse) and problems (file-level) for one file. Never raises for bad content."""
    fmt = detect_format(source.path)
    file = str(source.path)
    try:
        if fmt == "zip":
            yield from _iter_zip_units(source, poscar_energy_in_comment=poscar_energy_in_comment)
        elif fmt is None:
            yield problem(file, None, None, f"unknown file type (expected {FORMATS_TEXT})")
        else:
            with open_text(source.path) as handle:  # streamed: a large CSV or JSON Lines file is never held whole
                yield from _units_of(fmt, handle, file, source.name, poscar_energy_in_comment)
    except (OSError, UnicodeDecodeError, EOFError, csv.Error, zipfile.BadZipFile) as exc:
        yield problem(file, None, None, f"cannot read file: {exc}")


def _units_of(fmt: str, handle: io.TextIOBase, file: str, name: str, poscar_energy_in_comment: bool) -> Iterator[dict]:
    if fmt == "csv":
        yield from _iter_csv_units(handle, file, name)
    elif fmt in {"cif", "poscar", "xyz"}:
        yield {"file": file, "name": name, "format": fmt, "location": None, "source_id": None, "text": handle.read(),
               "poscar_energy_in_comment": poscar_energy_in_comment}
    elif fmt == "json":
        yield from _iter_json_units(handle, file, name)
    elif fmt == "jsonl":
        yield from _iter_jsonl_units(handle, file, name)
    else:
        yield problem(file, None, None, f"unknown file type (expected {FORMATS_TEXT})")


def _iter_zip_units(source: SourceFile, *, poscar_energy_in_comment: bool) -> Iterator[dict]:
    """Every member of a ZIP archive in a known format, read like a file of its own (``archive.zip/member.cif``)."""
    with zipfile.ZipFile(source.path) as archive:
        for member in sorted(archive.namelist()):
            if member.endswith("/"):
                continue
            file, name = f"{source.path}/{member}", f"{source.name}/{member}"
            fmt = detect_format(member)
            if fmt is None or fmt == "zip":
                yield problem(file, None, None, f"unknown file type inside the archive (expected {FORMATS_TEXT})")
                continue
            raw = archive.read(member)
            if member.lower().endswith(".gz"):
                raw = gzip.decompress(raw)
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                yield problem(file, None, None, f"cannot read file: not UTF-8 text ({exc})")
                continue
            with io.StringIO(text, newline="") as handle:
                yield from _units_of(fmt, handle, file, name, poscar_energy_in_comment)


def _iter_csv_units(handle: io.TextIOBase, file: str, name: str) -> Iterator[dict]:
    csv.field_size_limit(min(sys.maxsize, 2**31 - 1))
    reader = csv.DictReader(handle)
    fields = [f.strip().lower() for f in (reader.fieldnames or [])]
    structure_column = next((reader.fieldnames[fields.index(c)] for c in STRUCTURE_COLUMNS if c in fields), None)
    id_column = next((reader.fieldnames[fields.index(c)] for c in ID_COLUMNS if c in fields), None)
    if structure_column is None:
        yield problem(file, None, None, f"CSV has no structure column (one of {', '.join(STRUCTURE_COLUMNS)}); "
                                        f"columns: {', '.join(reader.fieldnames or [])}")
        return
    for index, row in enumerate(reader):
        row_no = index + 2  # 1-based, after the header line
        location = f"row {row_no}"
        source_id = (row.get(id_column) or "").strip() if id_column else ""
        source_id = source_id or f"{name}:{row_no}"
        try:
            energy, data = energy_from_columns(row)
        except ValueError as exc:
            yield problem(file, location, source_id, str(exc))
            continue
        yield {"file": file, "name": name, "format": "csv-row", "location": location,
               "source_id": source_id, "text": row.get(structure_column) or "", "energy": energy, "data": data}


def _iter_json_units(handle: io.TextIOBase, file: str, name: str) -> Iterator[dict]:
    try:
        payload = json.load(handle)
    except json.JSONDecodeError as exc:
        yield problem(file, None, None, f"invalid JSON: {exc}")
        return
    if isinstance(payload, dict) and "@class" in payload:
        items = [(None, payload)]
    elif isinstance(payload, list):
        items = [(i, item) for i, item in enumerate(payload)]
    elif isinstance(payload, dict):  # keyed by id, e.g. {"mp-1": {...entry...}}
        items = [(key, item) for key, item in payload.items()]
    else:
        yield problem(file, None, None, "JSON is neither a pymatgen object, a list nor an object keyed by id")
        return
    for key, item in items:
        location = None if key is None else (f"item {key}" if isinstance(key, int) else f"key {key}")
        if not isinstance(item, dict):
            yield problem(file, location, None, "not a pymatgen object (expected a dict with '@class')")
            continue
        entry_id = item.get("entry_id") if isinstance(item.get("entry_id"), str) else None
        if entry_id:
            source_id = entry_id
        elif key is None:
            source_id = name
        elif isinstance(key, int):
            source_id = f"{name}#{key}"
        else:
            source_id = str(key)
        yield {"file": file, "name": name, "format": "pmg-json", "location": location, "source_id": source_id,
               "object": item}


def _iter_jsonl_units(handle: io.TextIOBase, file: str, name: str) -> Iterator[dict]:
    """JSON Lines: each line a pymatgen object, or a row whose ``structure`` field holds one (the REST API's export:
    its other fields are read like a CSV row's columns, energies by their names)."""
    for number, line in enumerate(handle, start=1):
        if not line.strip():
            continue
        location = f"line {number}"
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            yield problem(file, location, None, f"invalid JSON: {exc.msg} at column {exc.colno}")
            continue
        if not isinstance(row, dict):
            yield problem(file, location, None, "not a JSON object")
            continue
        if "@class" in row:
            source_id = row.get("entry_id") if isinstance(row.get("entry_id"), str) else f"{name}:{number}"
            yield {"file": file, "name": name, "format": "pmg-json", "location": location, "source_id": source_id,
                   "object": row}
            continue
        structure = row.get("structure")
        if not isinstance(structure, dict):
            yield problem(file, location, None, "no structure: expected a pymatgen object or a 'structure' field")
            continue
        columns = {k: v for k, v in row.items() if k != "structure"}
        source_id = next((str(columns[c]) for c in ("public_id", *ID_COLUMNS) if columns.get(c)), f"{name}:{number}")
        try:
            energy, data = energy_from_columns(columns)
        except ValueError as exc:
            yield problem(file, location, source_id, str(exc))
            continue
        yield {"file": file, "name": name, "format": "pmg-json", "location": location, "source_id": source_id,
               "object": {"@class": "Structure", **structure} if "@class" not in structure else structure,
               "energy": energy, "data": data}


# ----------------------------------------------------------------------------------------------------------------
# Step 2: parse and describe (worker processes)
# ----------------------------------------------------------------------------------------------------------------


def parse_unit(unit: dict, symprec: float = DEFAULT_SYMPREC) -> list[dict]:
    """Parse one unit into records (``ok: True``) or problems (``ok: False``). Picklable input and output only."""
    if unit.get("ok") is False:
        return [unit]
    try:
        parsed = _parse(unit)
    except Exception as exc:  # noqa: BLE001 - any parser failure is a reported problem, never a crash
        return [problem(unit["file"], unit.get("location"), unit.get("source_id"), _reason(exc))]
    if not parsed:
        return [problem(unit["file"], unit.get("location"), unit.get("source_id"), "no structure found")]
    out = []
    multiple = len(parsed) > 1
    for index, (structure, energy, data) in enumerate(parsed):
        source_id = unit.get("source_id") or unit["name"]
        location = unit.get("location")
        if multiple:
            source_id = f"{source_id}#{index}"
            location = f"{location}, structure {index}" if location else f"structure {index}"
        try:
            out.append(build_record(structure, energy, data, source_id=source_id, file=unit["file"],
                                    location=location, symprec=symprec))
        except Exception as exc:  # noqa: BLE001
            out.append(problem(unit["file"], location, source_id, _reason(exc)))
    return out


def _reason(exc: Exception) -> str:
    """One line naming what failed. A bare exception class (pymatgen raises some without a message) is not enough."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    if isinstance(exc, KeyError) and text:
        return f"KeyError: missing field {text}"
    return f"{type(exc).__name__}: {text}" if text else f"{type(exc).__name__}: the content could not be parsed"


def build_record(structure, energy: dict | None, data: dict | None, *, source_id: str, file: str,
                 location: str | None, symprec: float = DEFAULT_SYMPREC) -> dict:
    """The plain dict the import service stores: structure, descriptors, dedup keys and the energy with its meaning."""
    if structure is not None:
        if len(structure) == 0:
            raise ValueError("structure has no sites")
        if not structure.is_ordered:
            raise ValueError("disordered structure (partial occupancies) is not supported")
        unknown = unknown_elements(structure)
        if unknown:
            raise ValueError(f"unknown element symbol(s) {', '.join(map(repr, unknown))}: not in the periodic table")
        if structure.volume <= 0 or not math.isfinite(structure.volume):
            raise ValueError(f"impossible lattice: cell volume {structure.volume} Å³ is not positive")
        check_cell(structure)  # finite numbers first: the neighbour search below needs them
        if (pair := closest_pair(structure)) is not None:
            i, j, distance = pair
            raise ValueError(f"atoms closer than {MIN_INTERATOMIC_DISTANCE} Å: site {i + 1} ({structure[i].species_string}) "
                             f"and site {j + 1} ({structure[j].species_string}) are {distance:.3f} Å apart")
        description = describe(structure, symprec=symprec)
        desc = {
            "formula_reduced": description.formula_reduced,
            "formula_anonymous": description.formula_anonymous,
            "elements": list(description.elements),
            "nelements": len(description.elements),
            "chemsys": description.chemsys,
            "nsites": description.nsites,
            "volume": description.volume,
            "density": description.density,
            "spacegroup_number": description.spacegroup_number,
            "spacegroup_symbol": description.spacegroup_symbol,
            "crystal_system": description.crystal_system,
            "symprec": description.symprec,
            "fingerprint": description.fingerprint,
        }
        composition = structure.composition
        energy = complete_energy(energy, composition)
        return {
            "ok": True, "file": file, "location": location, "source_id": source_id,
            "structure": structure_dict(structure), "description": desc,
            "volume_per_atom": description.volume / description.nsites,
            "primitive_nsites": None,  # computed by the duplicate matcher only when a candidate is in the window
            "composition": composition.formula.replace(" ", ""),
            "natoms": float(composition.num_atoms),
            "energy": energy, "data": data or {},
        }
    raise ValueError("no structure")


def structure_dict(structure) -> dict:
    """``Structure.as_dict()`` made JSON-safe. Site properties can hold numpy arrays (a POSCAR's ``Selective
    dynamics`` flags), which JSON storage refuses; they become lists."""
    data = structure.as_dict()
    if structure.site_properties:
        from monty.json import jsanitize

        data = jsanitize(data, strict=False)
    return data


def unknown_elements(structure) -> list[str]:
    """Symbols that are not chemical elements. pymatgen reads an unknown symbol (``Xx``) as a *dummy species*
    instead of failing, and everything downstream (formulas, hulls, OPTIMADE) assumes real elements."""
    from pymatgen.core import DummySpecies

    return sorted({sp.symbol for sp in structure.composition if isinstance(sp, DummySpecies)})


def primitive_nsites(structure) -> int:
    """Sites in the primitive cell as pymatgen's StructureMatcher finds it (same call, same default tolerance).

    StructureMatcher (primitive_cell=True, attempt_supercell=False) only matches structures whose primitive cells have
    the same number of sites, so this is an exact pre-filter: it never hides a true duplicate.
    """
    try:
        return len(structure.get_primitive_structure())
    except Exception:  # noqa: BLE001 - fall back to the cell as given
        return len(structure)


def complete_energy(energy: dict | None, composition) -> dict | None:
    """Fill in the derived total-energy field (eV ↔ eV/atom) for the cell; other kinds are kept as given."""
    if not energy:
        return None
    energy = dict(energy)
    natoms = float(composition.num_atoms)
    if energy["kind"] == TOTAL_ENERGY:
        if energy.get("energy_total") is None and energy.get("energy_per_atom") is not None:
            energy["energy_total"] = energy["energy_per_atom"] * natoms
        if energy.get("energy_per_atom") is None and energy.get("energy_total") is not None:
            energy["energy_per_atom"] = energy["energy_total"] / natoms
    for key in ("energy_total", "energy_per_atom", "formation_energy_per_atom", "stability_value", "correction"):
        value = energy.get(key)
        if value is not None and not math.isfinite(value):
            raise ValueError(f"{key} is not finite")
    return energy


def _parse(unit: dict) -> list[tuple[Any, dict | None, dict]]:
    fmt = unit["format"]
    if fmt in {"cif", "csv-row"}:
        text = unit["text"]
        if not text or not text.strip():
            raise ValueError("empty CIF")
        structures = parse_cif(text)
        energy = unit.get("energy")
        data = unit.get("data") or {}
        if fmt == "csv-row" and len(structures) > 1:
            raise ValueError(f"CIF cell holds {len(structures)} structures; expected one per row")
        return [(s, energy, data) for s in structures]
    if fmt == "poscar":
        return [parse_poscar(unit["text"], energy_in_comment=unit.get("poscar_energy_in_comment", False))]
    if fmt == "xyz":
        return parse_extxyz(unit["text"])
    if fmt == "pmg-json":
        structure, energy, data = parse_pymatgen_object(unit["object"])
        return [(structure, energy or unit.get("energy"), {**(unit.get("data") or {}), **data})]
    raise ValueError(f"unknown unit format {fmt!r}")


def parse_cif(text: str) -> list:
    import warnings

    from pymatgen.io.cif import CifParser

    if (cut := truncated_loop(text)) is not None:
        raise ValueError(cut)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        parser = CifParser.from_str(text)
        structures = parser.parse_structures(primitive=False, on_error="raise")
    # A file cut at a row boundary parses, with sites missing: compare with the formula it declares. pymatgen's check
    # reads the first block's formula only, so a multi-block file is not checked this way.
    for structure in structures if len(structures) == 1 else []:
        mismatch = parser.check(structure) or ""
        if mismatch.startswith("Incorrect stoichiometry"):  # other remarks (an unknown symbol) are reported later
            found = structure.composition.reduced_formula
            raise ValueError(f"the sites read ({found}) do not match the file's _chemical_formula_sum (is the file "
                             f"complete?): {' '.join(mismatch.split())}")
    return structures


def truncated_loop(text: str) -> str | None:
    """Why a CIF ends inside its last ``loop_`` (a row with fewer values than the loop has columns), with the line, or
    None. pymatgen only says "No structure parsed" or "len(items)=47 is not a multiple of n=6"."""
    import shlex

    lines = text.splitlines()
    starts = [i for i, line in enumerate(lines) if line.strip().lower() == "loop_"]
    if not starts:
        return None
    i = starts[-1] + 1
    keys = []
    while i < len(lines) and lines[i].strip().startswith("_"):
        keys.append(lines[i].strip())
        i += 1
    rows = [(n + 1, line) for n, line in enumerate(lines[i:], start=i)
            if line.strip() and not line.lstrip().startswith(("#", "_", "data_", "loop_"))]
    if not keys or not rows:
        return None
    try:
        counts = [len(shlex.split(line)) for _, line in rows]
    except ValueError:  # an unclosed quote: the file was cut inside a value
        return f"the file ends inside a quoted value of the loop of {keys[0]} (line {rows[-1][0]})"
    if counts[-1] < len(keys) and all(c == len(keys) for c in counts[:-1]):
        return (f"the file ends inside a loop: line {rows[-1][0]} has {counts[-1]} of the {len(keys)} values "
                f"({', '.join(keys)})")
    return None


def parse_poscar(text: str, *, energy_in_comment: bool = False) -> tuple[Any, dict | None, dict]:
    """POSCAR/CONTCAR. With ``energy_in_comment`` the first token of line 1 is the cell's total energy (eV)."""
    from pymatgen.io.vasp import Poscar

    poscar = Poscar.from_str(text, read_velocities=False)
    comment = text.splitlines()[0].strip() if text.strip() else ""
    energy = None
    if energy_in_comment:
        token = comment.split()[0] if comment.split() else ""
        try:
            energy = {"kind": TOTAL_ENERGY, "energy_total": float(token), "column": "POSCAR comment, first token"}
        except ValueError as exc:
            raise ValueError(f"line 1 should start with the total energy (eV), found {token!r}") from exc
    return poscar.structure, energy, {"comment": comment[:500]} if comment else {}


def check_xyz_atom_counts(text: str) -> None:
    """Refuse a frame whose atom count is more than the lines that follow it: ASE reads that many lines before it
    checks anything, so a header of 10³⁰ atoms would keep an import busy forever."""
    lines = text.splitlines()
    i = 0
    while i < len(lines) and lines[i].strip():
        try:
            natoms = int(lines[i])
        except ValueError:
            return  # not a count: ASE says so itself
        if natoms < 0 or natoms > len(lines) - i - 2:
            raise ValueError(f"frame at line {i + 1} declares {natoms} atoms but only {max(len(lines) - i - 2, 0)} "
                             "lines follow its comment line (truncated or not an XYZ file)")
        i += 2 + natoms
        while i < len(lines) and lines[i].lstrip().startswith("VEC"):
            i += 1


def parse_extxyz(text: str) -> list[tuple[Any, dict | None, dict]]:
    """Extended XYZ (one or more frames). A frame's ``energy`` (info or calculator) is its cell's total energy (eV)."""
    import ase.io
    import numpy as np
    from pymatgen.io.ase import AseAtomsAdaptor

    check_xyz_atom_counts(text)
    frames = ase.io.read(io.StringIO(text), index=":", format="extxyz")
    out = []
    for atoms in frames:
        if not atoms.pbc.all() or atoms.cell.volume <= 0:
            raise ValueError("frame is not a periodic crystal (pbc and a 3D cell are required)")
        energy_value = atoms.info.get("energy")
        if energy_value is None and atoms.calc is not None:
            energy_value = atoms.calc.results.get("energy")
        energy = None
        if energy_value is not None:
            energy = {"kind": TOTAL_ENERGY, "energy_total": float(energy_value), "column": "energy"}
        info = {k: v.item() if isinstance(v, np.generic) else v for k, v in atoms.info.items()}  # numpy → Python
        data = {k: _jsonable(v) for k, v in info.items() if k != "energy" and isinstance(v, (str, int, float))}
        structure = AseAtomsAdaptor.get_structure(atoms)
        structure.properties = {}  # ASE's info, already in data (numpy scalars there would not store as JSON)
        out.append((structure, energy, data))
    return out


def parse_pymatgen_object(obj: dict) -> tuple[Any, dict | None, dict]:
    """A pymatgen Structure or ComputedStructureEntry dict. Entry energies are total energies (eV), corrections kept."""
    cls = obj.get("@class")
    if cls == "Structure":
        from pymatgen.core import Structure

        return Structure.from_dict(obj), None, {}
    if cls == "ComputedStructureEntry":
        from pymatgen.entries.computed_entries import ComputedStructureEntry

        entry = ComputedStructureEntry.from_dict(obj)
        energy = {
            "kind": TOTAL_ENERGY,
            "energy_total": float(entry.energy),
            "correction": float(entry.correction),
            "column": "ComputedStructureEntry.energy",
        }
        data = {"parameters": _json_safe(entry.parameters), "entry_data": _json_safe(entry.data)}
        if entry.entry_id is not None:
            data["entry_id"] = str(entry.entry_id)
        return entry.structure, energy, data
    if cls == "ComputedEntry":
        raise ValueError("ComputedEntry has no structure (composition-only entries are imported by the dataset loaders)")
    raise ValueError(f"unsupported pymatgen object {cls!r} (expected Structure or ComputedStructureEntry)")


def _json_safe(value: Any) -> Any:
    try:
        return json.loads(json.dumps(value, default=str))
    except (TypeError, ValueError):
        return str(value)
