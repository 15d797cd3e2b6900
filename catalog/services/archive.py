"""A portable archive of the whole catalog, and reading one back into another installation.

``export_catalog(path)`` writes a ``.tar.gz`` that does not depend on PostgreSQL or on Gnomon's table layout:

- ``manifest.json``: format name and version, creation time, counts, and the SHA-256 of every other member;
- ``schemes.jsonl``: every scheme (level of theory, kind, protocol and its hash);
- ``elemental_references.jsonl``: the references of the total-energy schemes (eV/atom);
- ``materials.jsonl``: each crystal (pymatgen ``Structure`` dict) with its public id and every origin;
- ``energies.jsonl``: every energy with its scheme, the crystal it belongs to (public id) or its composition alone,
  its values (eV, eV/atom), correction, provenance, protocol hash and exclusion reason;
- ``hulls.jsonl``: every hull entry as computed here (e_above_hull, formation energy, stability), so the importer can
  show that the hulls it rebuilds are the same;
- ``cif/<public id>.cif``: each crystal as CIF, for any other program.

``import_catalog(path)`` checks the checksums, then writes through the catalog's services (schemes with their
protocols, references, materials with their origins — duplicates merge as in any import —, energies), rebuilds every
hull and compares each entry's e_above_hull with the archive's.
"""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from django.db import transaction
from pymatgen.core import Structure

from catalog.formats import structure_to_format
from catalog.models import ElementalReference, EnergyRecord, HullEntry, Material, MaterialOrigin, Scheme
from catalog.readers import build_record
from catalog.services.energies import EnergyInput, ensure_scheme, record_energies, set_elemental_references
from catalog.services.hulls import recompute_hulls
from catalog.services.materials import OriginSpec, register_materials

FORMAT = "gnomon-catalog"
VERSION = 1
MEMBERS = ("schemes.jsonl", "elemental_references.jsonl", "materials.jsonl", "energies.jsonl", "hulls.jsonl")
HULL_TOLERANCE_EV = 1e-6  # eV/atom: a rebuilt hull entry further from the archive's than this is reported


class ArchiveError(ValueError):
    """The file is not a catalog archive this version reads, or it is damaged; the message says which."""


@dataclass
class ImportReport:
    schemes: int = 0
    references: int = 0
    materials_created: int = 0
    materials_merged: int = 0
    energies: int = 0
    hull_entries_compared: int = 0
    hull_max_abs_diff_ev: float = 0.0
    hull_mismatches: list[tuple[str, str, float, float]] = field(default_factory=list)  # scheme, key, archive, now

    def line(self) -> str:
        return (f"schemes {self.schemes}, references {self.references}, materials {self.materials_created} new + "
                f"{self.materials_merged} merged, energies {self.energies}; hulls rebuilt: "
                f"{self.hull_entries_compared} entries compared, largest difference {self.hull_max_abs_diff_ev:.2e} "
                f"eV/atom, {len(self.hull_mismatches)} beyond {HULL_TOLERANCE_EV:g}")


def _lines(rows: Iterator[dict]) -> bytes:
    return b"".join(json.dumps(row, sort_keys=True, default=str).encode() + b"\n" for row in rows)


def _schemes() -> Iterator[dict]:
    for s in Scheme.objects.order_by("name"):
        yield {"name": s.name, "kind": s.kind, "level_of_theory": s.level_of_theory, "is_dft": s.is_dft,
               "correction_policy": s.correction_policy, "description": s.description,
               "display_priority": s.display_priority, "protocol": s.protocol, "protocol_hash": s.protocol_hash}


def _references() -> Iterator[dict]:
    for r in ElementalReference.objects.select_related("scheme").order_by("scheme__name", "element"):
        yield {"scheme": r.scheme.name, "element": r.element, "energy_per_atom": r.energy_per_atom, "source": r.source}


def _materials() -> Iterator[dict]:
    origins: dict[int, list[dict]] = {}
    for o in MaterialOrigin.objects.order_by("id").values("material_id", "kind", "dataset", "source_id", "licence",
                                                          "details"):
        origins.setdefault(o.pop("material_id"), []).append(o)
    for m in Material.objects.order_by("id").values("id", "public_id", "structure").iterator(chunk_size=2000):
        yield {"public_id": m["public_id"], "structure": m["structure"], "origins": origins.get(m["id"], [])}


def _energies() -> Iterator[dict]:
    rows = EnergyRecord.objects.order_by("id").values(
        "scheme__name", "material__public_id", "source_key", "composition", "energy_total", "energy_per_atom",
        "formation_energy_per_atom", "stability_value", "correction", "produced_by", "data", "protocol_hash",
        "excluded_reason")
    for r in rows.iterator(chunk_size=5000):
        yield {**{k: v for k, v in r.items() if k not in ("scheme__name", "material__public_id")},
               "scheme": r["scheme__name"], "material": r["material__public_id"]}


def _hulls() -> Iterator[dict]:
    rows = HullEntry.objects.order_by("id").values("scheme__name", "energy_record__source_key", "e_above_hull",
                                                   "formation_energy_per_atom", "is_stable", "status")
    for r in rows.iterator(chunk_size=5000):
        yield {"scheme": r["scheme__name"], "source_key": r["energy_record__source_key"],
               "e_above_hull": r["e_above_hull"], "formation_energy_per_atom": r["formation_energy_per_atom"],
               "is_stable": r["is_stable"], "status": r["status"]}


def _add(archive: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mtime = int(datetime.now(UTC).timestamp())
    archive.addfile(info, io.BytesIO(data))


def export_catalog(path: Path | str, *, cif: bool = True, progress: Callable[[str], None] | None = None) -> dict:
    """Write the archive described above to ``path`` (``.tar.gz``); returns its manifest."""
    members = {"schemes.jsonl": _schemes, "elemental_references.jsonl": _references, "materials.jsonl": _materials,
               "energies.jsonl": _energies, "hulls.jsonl": _hulls}
    checksums: dict[str, str] = {}
    counts: dict[str, int] = {}
    with tarfile.open(path, "w:gz") as archive:
        for name, rows in members.items():
            if progress:
                progress(name)
            data = _lines(rows())
            checksums[name] = hashlib.sha256(data).hexdigest()
            counts[name.removesuffix(".jsonl")] = data.count(b"\n")
            _add(archive, name, data)
        if cif:
            if progress:
                progress("cif/")
            for public_id, structure in Material.objects.order_by("id").values_list("public_id", "structure"):
                data = structure_to_format(Structure.from_dict(structure), "cif")[0]
                checksums[f"cif/{public_id}.cif"] = hashlib.sha256(data).hexdigest()
                _add(archive, f"cif/{public_id}.cif", data)
        manifest = {"format": FORMAT, "version": VERSION, "created": datetime.now(UTC).isoformat(), "counts": counts,
                    "sha256": checksums}
        _add(archive, "manifest.json", json.dumps(manifest, indent=1, sort_keys=True).encode())
    return manifest


def _read(path: Path | str) -> dict[str, bytes]:
    """Every member of the archive, checked against the manifest's checksums."""
    try:
        with tarfile.open(path, "r:*") as archive:
            files = {m.name: archive.extractfile(m).read() for m in archive.getmembers() if m.isfile()}
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise ArchiveError(f"{path}: not a readable catalog archive ({exc})") from exc
    if "manifest.json" not in files:
        raise ArchiveError(f"{path}: no manifest.json; not a catalog archive written by export_catalog")
    manifest = json.loads(files["manifest.json"])
    if manifest.get("format") != FORMAT or manifest.get("version") != VERSION:
        raise ArchiveError(f"{path}: format {manifest.get('format')!r} version {manifest.get('version')!r}; this "
                           f"Gnomon reads {FORMAT!r} version {VERSION}")
    for name, digest in manifest["sha256"].items():
        if name not in files:
            raise ArchiveError(f"{path}: {name} is listed in the manifest but missing")
        if hashlib.sha256(files[name]).hexdigest() != digest:
            raise ArchiveError(f"{path}: {name} does not match its SHA-256 in the manifest (damaged archive)")
    return files


def _rows(files: dict[str, bytes], name: str) -> list[dict]:
    return [json.loads(line) for line in files[name].splitlines() if line.strip()]


def import_catalog(path: Path | str, *, progress: Callable[[str], None] | None = None) -> ImportReport:
    """Read an archive back (see the module docstring); hulls are rebuilt and compared with the archive's."""
    files = _read(path)
    report = ImportReport()
    say = progress or (lambda _name: None)
    say("schemes")
    schemes: dict[str, Scheme] = {}
    for row in _rows(files, "schemes.jsonl"):
        schemes[row["name"]] = ensure_scheme(
            row["name"], row["kind"], protocol=row["protocol"] or None, level_of_theory=row["level_of_theory"],
            is_dft=row["is_dft"], correction_policy=row["correction_policy"], description=row["description"],
            display_priority=row["display_priority"])
        report.schemes += 1
    by_scheme: dict[str, dict[str, float]] = {}
    sources: dict[str, str] = {}
    for row in _rows(files, "elemental_references.jsonl"):
        by_scheme.setdefault(row["scheme"], {})[row["element"]] = row["energy_per_atom"]
        sources[row["scheme"]] = row["source"]
    for name, references in by_scheme.items():
        report.references += set_elemental_references(schemes[name], references, source=sources[name])
    say("materials")
    material_of: dict[str, int] = {}  # archive public id → this catalog's material id
    for start, chunk in _chunks(_rows(files, "materials.jsonl"), 500):
        records, origins, owners = [], [], []
        for offset, row in enumerate(chunk):
            structure = Structure.from_dict(row["structure"])
            record = build_record(structure, None, None, source_id=row["public_id"], file=str(path),
                                  location=f"materials.jsonl line {start + offset + 1}")
            for origin in row["origins"] or [{"kind": MaterialOrigin.Kind.DATASET, "dataset": f"archive:{path}",
                                              "source_id": row["public_id"], "licence": "", "details": {}}]:
                records.append(record)
                origins.append(OriginSpec(dataset=origin["dataset"], source_id=origin["source_id"],
                                          kind=origin["kind"], licence=origin["licence"], details=origin["details"]))
                owners.append(row["public_id"])
        with transaction.atomic():
            outcome = register_materials(records, origins)
        for public_id, material_id, status in zip(owners, outcome.material_ids, outcome.status, strict=True):
            material_of.setdefault(public_id, material_id)
            report.materials_created += status == "created"
            report.materials_merged += status == "merged"
    say("energies")
    by_scheme_items: dict[str, list[EnergyInput]] = {}
    energy_rows = _rows(files, "energies.jsonl")
    for row in energy_rows:
        by_scheme_items.setdefault(row["scheme"], []).append(EnergyInput(
            source_key=row["source_key"], composition=row["composition"],
            material_id=material_of.get(row["material"]) if row["material"] else None,
            energy_total=row["energy_total"], energy_per_atom=row["energy_per_atom"],
            formation_energy_per_atom=row["formation_energy_per_atom"], stability_value=row["stability_value"],
            correction=row["correction"], produced_by=row["produced_by"], data=row["data"],
            protocol_hash=row["protocol_hash"] or None))
    excluded = {(r["scheme"], r["source_key"]): r["excluded_reason"] for r in energy_rows if r["excluded_reason"]}
    for name, items in by_scheme_items.items():
        for start in range(0, len(items), 5000):
            with transaction.atomic():
                report.energies += record_energies(schemes[name], items[start:start + 5000]).created
    for (name, key), reason in excluded.items():
        EnergyRecord.objects.filter(scheme=schemes[name], source_key=key).update(excluded_reason=reason)
    say("hulls")
    recompute_hulls()
    now = {(s, k): e for s, k, e in HullEntry.objects.values_list("scheme__name", "energy_record__source_key",
                                                                  "e_above_hull")}
    for row in _rows(files, "hulls.jsonl"):
        here = now.get((row["scheme"], row["source_key"]))
        if row["e_above_hull"] is None or here is None:
            continue
        report.hull_entries_compared += 1
        diff = abs(here - row["e_above_hull"])
        report.hull_max_abs_diff_ev = max(report.hull_max_abs_diff_ev, diff)
        if diff > HULL_TOLERANCE_EV:
            report.hull_mismatches.append((row["scheme"], row["source_key"], row["e_above_hull"], here))
    return report


def _chunks(rows: list[dict], size: int) -> Iterator[tuple[int, list[dict]]]:
    for start in range(0, len(rows), size):
        yield start, rows[start:start + size]
