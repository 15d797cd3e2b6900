"""Streaming bulk export of a material search: JSON Lines, CSV, extended XYZ or a ZIP of CIFs, in constant memory.

Rows come through a PostgreSQL server-side cursor (``QuerySet.iterator(chunk_size=...)`` inside a transaction), as
tuples rather than model instances; each chunk is encoded and yielded as one bytes block, so memory stays flat whatever
the number of rows, and the response has no ``Content-Length`` (clients see progress as the stream arrives).
The structure goes out of JSON exports as PostgreSQL's own JSON text, spliced in, never decoded and re-encoded.
"""

from __future__ import annotations

import csv
import io
import json
import zipfile
from collections.abc import Iterator
from datetime import datetime

from django.db import transaction
from django.db.models import F, QuerySet, TextField
from django.db.models.functions import Cast

from catalog.api.formats import to_cif, to_extxyz

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


def _json_default(value):
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"cannot export {type(value).__name__}")


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


def _jsonl(queryset, fields, chunk_size) -> Iterator[bytes]:
    plain = [name for name in fields if name != "structure"]
    with_structure = "structure" in fields
    dumps = json.JSONEncoder(default=_json_default, ensure_ascii=False, separators=(",", ":")).encode
    lines: list[str] = []
    for row in _rows(queryset, tuple(plain), "text" if with_structure else None, chunk_size):
        line = dumps(dict(zip(plain, row, strict=False)))
        if with_structure:
            line = f'{line[:-1]},"structure":{row[-1]}}}' if plain else f'{{"structure":{row[-1]}}}'
        lines.append(line)
        if len(lines) >= chunk_size:
            yield ("\n".join(lines) + "\n").encode()
            lines.clear()
    if lines:
        yield ("\n".join(lines) + "\n").encode()


def _csv_cell(value):
    if isinstance(value, list):
        return " ".join(map(str, value))
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def _csv(queryset, fields, chunk_size) -> Iterator[bytes]:
    plain = [name for name in fields if name != "structure"]
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(fields)
    count = 0
    for row in _rows(queryset, tuple(plain), "text" if "structure" in fields else None, chunk_size):
        writer.writerow([_csv_cell(v) for v in row])
        count += 1
        if count % chunk_size == 0:
            yield buffer.getvalue().encode()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue().encode()


def _extxyz(queryset, fields, chunk_size) -> Iterator[bytes]:
    info_fields = [name for name in fields if name != "structure"]
    frames: list[str] = []
    for row in _rows(queryset, tuple(info_fields), "json", chunk_size):
        info = dict(zip(info_fields, row, strict=False))
        frames.append(to_extxyz(row[-1], {k: _csv_cell(v) for k, v in info.items()}))
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
            archive.writestr(f"{public_id}.cif", to_cif(structure))
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
