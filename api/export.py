"""Streaming bulk export of a material search: JSON Lines, CSV, extended XYZ or a ZIP of CIFs, in constant memory.

JSON Lines and CSV are written by PostgreSQL itself: the search's SQL (compiled by the ORM, values bound as parameters)
runs inside ``COPY (...) TO STDOUT`` with ``json_build_object`` per row, and the bytes stream through in ~256 kB blocks
without ever becoming Python objects. Extended XYZ and CIF need Python per row: their rows come through a server-side
cursor (``QuerySet.iterator(chunk_size=...)`` inside a transaction) as tuples, encoded chunk by chunk. Either way memory
stays flat whatever the number of rows, and the response has no ``Content-Length`` (clients see progress as it comes).
"""

from __future__ import annotations

import csv
import io
import json
import zipfile
from collections.abc import Iterator, Mapping
from datetime import datetime

from django.core.exceptions import EmptyResultSet
from django.db import connection, transaction
from django.db.models import F, Func, QuerySet, TextField, Value
from django.db.models.functions import Cast
from pymatgen.core import Structure

from catalog.formats import structure_to_format

EXPORT_FORMATS = {
    "jsonl": ("application/jsonl", "jsonl"),
    "csv": ("text/csv", "csv"),
    "extxyz": ("chemical/x-extxyz", "extxyz"),
    "cif": ("application/zip", "zip"),
}
# API field name → column (or expression) exported for it.
EXPORT_COLUMNS = {
    "public_id": F("public_id"),
    "formula_reduced": F("formula_reduced"),
    "formula_anonymous": F("formula_anonymous"),
    "chemsys": F("chemsys"),
    "elements": F("elements"),
    "nelements": F("nelements"),
    "nsites": F("nsites"),
    "volume": F("volume"),
    "density": F("density"),
    "spacegroup_number": F("spacegroup_number"),
    "spacegroup_symbol": F("spacegroup_symbol"),
    "crystal_system": F("crystal_system"),
    "formation_energy_per_atom": F("formation_energy_per_atom"),
    "energy_above_hull": F("e_above_hull"),
    "is_stable": F("is_stable"),
    "hull_scheme": F("hull_scheme__name"),
    "created_at": F("created_at"),
    "updated_at": F("updated_at"),
}
EXPORT_FIELDS = (*EXPORT_COLUMNS, "structure")
DEFAULT_FIELDS = {
    "jsonl": EXPORT_FIELDS,
    "csv": tuple(EXPORT_COLUMNS),
    "extxyz": (
        "public_id",
        "formula_reduced",
        "spacegroup_number",
        "formation_energy_per_atom",
        "energy_above_hull",
        "is_stable",
        "hull_scheme",
    ),
    "cif": ("public_id",),
}
CHUNK_SIZE = 2000


def _rows(queryset: QuerySet, fields: tuple[str, ...], structure: str | None, chunk_size: int) -> Iterator[tuple]:
    """Tuples (fields..., [structure]) through a server-side cursor; ``structure`` is 'text', 'json' or None."""
    annotations = {f"x_{name}": EXPORT_COLUMNS[name] for name in fields if name != "structure"}
    names = list(annotations)
    if structure == "text":
        annotations["x_structure"] = Cast("structure", TextField())
        names.append("x_structure")
    elif structure == "json":
        names.append("structure")
    rows = queryset.annotate(**annotations).values_list(*names)
    with transaction.atomic():  # a named cursor lives as long as its transaction on PostgreSQL
        yield from rows.iterator(chunk_size=chunk_size)


class JSONBuildObject(Func):
    """PostgreSQL ``json_build_object(k1, v1, ...)``: keys keep their order (unlike ``JSONObject``'s jsonb)."""

    function = "json_build_object"
    output_field = TextField()

    def __init__(self, pairs: dict):
        super().__init__(*[item for key, value in pairs.items() for item in (Value(key), value)])


class ISOText(Func):
    """A timestamp as ISO 8601 text ('2026-01-31T12:00:00.123+00:00'), as in the JSON exports."""

    template = "(to_json(%(expressions)s) #>> '{}')"
    output_field = TextField()


COPY_BLOCK = 256 * 1024
# COPY's CSV mode with a quote and delimiter that JSON never contains: the JSON text comes out byte for byte.
JSON_LINES_COPY = "FORMAT csv, QUOTE E'\\x01', DELIMITER E'\\x02'"


def _copy(queryset: QuerySet, expressions: dict, options: str) -> Iterator[bytes]:
    """``COPY (<the queryset's SQL>) TO STDOUT``; the SQL is the ORM's, with every value a bound parameter."""
    names = [f"x_{i}" for i in range(len(expressions))]
    rows = queryset.annotate(**dict(zip(names, expressions.values(), strict=True))).values_list(*names)
    try:
        sql, params = rows.query.sql_with_params()
    except EmptyResultSet:  # a search that cannot match anything (e.g. min > max) compiles to no SQL at all
        return
    connection.ensure_connection()
    with connection.cursor() as cursor, cursor.cursor.copy(f"COPY ({sql}) TO STDOUT WITH ({options})", params) as copy:
        block = bytearray()
        for data in copy:
            block += data
            if len(block) >= COPY_BLOCK:
                yield bytes(block)
                block.clear()
        if block:
            yield bytes(block)


def _jsonl(queryset, fields, chunk_size) -> Iterator[bytes]:
    pairs = {name: F("structure") if name == "structure" else EXPORT_COLUMNS[name] for name in fields}
    return _copy(queryset, {"line": JSONBuildObject(pairs)}, JSON_LINES_COPY)


def _csv_column(name: str):
    if name == "structure":
        return Cast("structure", TextField())
    if name == "elements":
        return Func(F("elements"), Value(" "), function="array_to_string", output_field=TextField())
    if name == "is_stable":
        return Cast("is_stable", TextField())
    if name in ("created_at", "updated_at"):
        return ISOText(F(name))
    return EXPORT_COLUMNS[name]


def _csv(queryset, fields, chunk_size) -> Iterator[bytes]:
    header = io.StringIO()
    csv.writer(header).writerow(fields)
    yield header.getvalue().encode()
    yield from _copy(queryset, {name: _csv_column(name) for name in fields}, "FORMAT csv")


# Extended XYZ for the bulk export is written straight from the stored ``Structure.as_dict()``: the per-download path
# (``catalog.formats``, through ASE) costs ~100x more per structure, which matters only when writing every row.
def _species_label(site: Mapping) -> str:
    species = site["species"]
    if len(species) == 1:
        return species[0]["element"]
    return "".join(f"{sp['element']}{sp['occu']:g}" for sp in species)


def _header_value(value) -> str:
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
            header.append(f"{key}={_header_value(value)}")
    lines = [str(len(structure["sites"])), " ".join(header)]
    for site in structure["sites"]:
        x, y, z = site["xyz"]
        lines.append(f"{_species_label(site)} {x:.8f} {y:.8f} {z:.8f}")
    return "\n".join(lines) + "\n"


def _info_value(value):
    """extxyz info values: lists as space-separated text, timestamps in ISO 8601."""
    if isinstance(value, list):
        return " ".join(map(str, value))
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def _extxyz(queryset, fields, chunk_size) -> Iterator[bytes]:
    info_fields = [name for name in fields if name != "structure"]
    frames: list[str] = []
    for row in _rows(queryset, tuple(info_fields), "json", chunk_size):
        info = dict(zip(info_fields, row, strict=False))
        frames.append(to_extxyz(row[-1], {k: _info_value(v) for k, v in info.items()}))
        if len(frames) >= chunk_size:
            yield "".join(frames).encode()
            frames.clear()
    if frames:
        yield "".join(frames).encode()


class _Sink(io.RawIOBase):
    """A write-only, unseekable file: zipfile streams into it (data descriptors), we drain it after every member."""

    def __init__(self) -> None:
        self.parts: list[bytes] = []

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        self.parts.append(bytes(data))
        return len(data)

    def drain(self) -> bytes:
        data = b"".join(self.parts)
        self.parts.clear()
        return data


def _cif_zip(queryset, fields, chunk_size) -> Iterator[bytes]:
    sink = _Sink()
    with zipfile.ZipFile(sink, mode="w", compression=zipfile.ZIP_DEFLATED) as archive:
        for public_id, structure in _rows(queryset, ("public_id",), "json", chunk_size):
            archive.writestr(f"{public_id}.cif", structure_to_format(Structure.from_dict(structure), "cif")[0])
            if sum(map(len, sink.parts)) >= 1 << 20:
                yield sink.drain()
    yield sink.drain()


WRITERS = {"jsonl": _jsonl, "csv": _csv, "extxyz": _extxyz, "cif": _cif_zip}


def stream_export(
    queryset: QuerySet, fmt: str, fields: tuple[str, ...] | None = None, chunk_size: int = CHUNK_SIZE
) -> Iterator[bytes]:
    """Encoded chunks of the export of ``queryset`` (already filtered and ordered) in ``fmt``."""
    return WRITERS[fmt](queryset, tuple(fields or DEFAULT_FIELDS[fmt]), chunk_size)


def parse_export_fields(raw: str | None, fmt: str) -> tuple[str, ...]:
    from rest_framework.exceptions import ValidationError

    if raw is None:
        return DEFAULT_FIELDS[fmt]
    wanted = tuple(dict.fromkeys(part.strip() for part in raw.split(",") if part.strip()))
    unknown = [name for name in wanted if name not in EXPORT_FIELDS]
    if unknown or not wanted:
        raise ValidationError(
            {
                "fields": [
                    f"unknown field(s) {', '.join(unknown) or '(none given)'}; choose from {', '.join(EXPORT_FIELDS)}"
                ]
            }
        )
    return wanted
