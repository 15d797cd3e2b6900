"""Loaders that put a dataset's verified files into the catalog, one per kind of file, named in ``LOADERS``."""

from __future__ import annotations

import csv
import gzip
import json
from collections.abc import Callable
from pathlib import Path

from django.db import transaction
from django.db.models import Min

from catalog.datasets.files import resolve_files
from catalog.datasets.registry import Dataset, DatasetResult, get_dataset
from catalog.models import EnergyRecord, Scheme
from catalog.services.energies import (
    EnergyInput,
    record_energies,
    set_elemental_references,
    update_hulls_if_available,
)
from catalog.services.ingest import ImportOptions, ImportSummary, import_paths, import_units


def load_dataset(name: str, *, path: Path | str | None = None, limit: int | None = None, progress: bool = False,
                 workers: int | None = None, update_hulls: bool = True) -> DatasetResult:
    dataset = get_dataset(name)
    files = resolve_files(dataset, path)
    return LOADERS[dataset.loader](dataset, files, limit=limit, progress=progress, workers=workers, update_hulls=update_hulls)


def _options(dataset: Dataset, **kwargs) -> ImportOptions:
    return ImportOptions(source=dataset.name, licence=dataset.licence, scheme=dataset.scheme.name,
                         scheme_defaults=dataset.scheme.defaults(),
                         origin_details={"citation": dataset.citation}, **kwargs)


def load_structure_files(dataset, files, *, limit, progress, workers, update_hulls) -> DatasetResult:
    dataset.scheme.ensure()
    summary = import_paths([str(p) for p in files.values()],
                           _options(dataset, limit=limit, progress=progress, workers=workers,
                                    update_hulls=False))
    result = DatasetResult(dataset.name, summary=summary)
    if dataset.scheme.kind == Scheme.Kind.TOTAL_ENERGY:
        result.references = _references_from_set(dataset)
    if update_hulls:
        _update_hulls(dataset, summary)
    return result


def load_aviary(dataset, files, *, limit, progress, workers, update_hulls) -> DatasetResult:
    """Structures and E_f from examples.json (pandas 'columns' layout: {column: {row: value}})."""
    dataset.scheme.ensure()
    path = files["examples.json"]
    with open(path, encoding="utf-8") as handle:
        table = json.load(handle)
    rows = sorted(table["material_id"], key=int)
    units = []
    for row in rows:
        units.append({
            "file": str(path), "name": "examples.json", "format": "pmg-json", "location": f"row {row}",
            "source_id": table["material_id"][row], "object": table["structure"][row],
            "energy": {"kind": Scheme.Kind.FORMATION_ENERGY, "formation_energy_per_atom": float(table["E_f"][row]),
                       "column": "E_f"},
            "data": {"protostructure": table["protostructure"][row], "composition": table["composition"][row]},
        })
    summary = import_units(units, _options(dataset, limit=limit, progress=progress, workers=workers,
                                           update_hulls=False), total=min(len(units), limit or len(units)))
    if update_hulls:
        _update_hulls(dataset, summary)
    return DatasetResult(dataset.name, summary=summary)


def load_elemental_references(dataset, files, *, limit, progress, workers, update_hulls) -> DatasetResult:
    """ElementalReference rows (eV/atom = entry energy / atoms) from a JSON object keyed by element."""
    scheme = dataset.scheme.ensure()
    (path,) = files.values()
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as handle:
        entries = json.load(handle)
    references = {}
    for element, entry in sorted(entries.items()):  # 89 rows: --limit does not apply, a demo hull needs them all
        natoms = sum(entry["composition"].values())
        references[element] = (entry["energy"]) / natoms
    set_elemental_references(scheme, references, source=f"{dataset.name} ({path.name})")
    return DatasetResult(dataset.name, references=len(references))


def load_bartel(dataset, files, *, limit, progress, workers, update_hulls) -> DatasetResult:
    """Composition-only formation energies (Ef), joined on formula with the published decomposition energy (Ed)."""
    scheme = dataset.scheme.ensure()
    items: list[EnergyInput] = []
    for split in ("train", "val", "test"):
        ef = _read_target(files[f"Ef/{split}.csv"])
        ed = _read_target(files[f"Ed/{split}.csv"])
        for formula, formation in ef.items():
            items.append(EnergyInput(
                source_key=formula, composition=formula, formation_energy_per_atom=formation,
                produced_by=f"{dataset.name}:{split}",
                data={"published_decomposition_energy": ed.get(formula), "split": split},
            ))
            if limit is not None and len(items) >= limit:
                break
        if limit is not None and len(items) >= limit:
            break
    created = existing = 0
    chemsystems: set[str] = set()
    for start in range(0, len(items), 5000):
        with transaction.atomic():
            outcome = record_energies(scheme, items[start:start + 5000])
        created += outcome.created
        existing += outcome.existing
        chemsystems |= outcome.chemsystems
    if update_hulls:
        update_hulls_if_available(scheme, chemsystems)
    return DatasetResult(dataset.name, energies=created, extra={"read": len(items), "already_present": existing})


def _read_target(path: Path) -> dict[str, float]:
    with open(path, encoding="utf-8", newline="") as handle:
        return {row["formula"]: float(row["target"]) for row in csv.DictReader(handle)}


def _references_from_set(dataset: Dataset) -> int:
    """Elemental references of a self-contained total-energy set: each element's lowest energy per atom in it."""
    scheme = Scheme.objects.get(name=dataset.scheme.name)
    lowest = (
        EnergyRecord.objects.filter(scheme=scheme, material__isnull=False, elements__len=1)
        .values_list("chemsys")
        .annotate(e=Min("energy_per_atom"))
    )
    references = {chemsys: e for chemsys, e in lowest if e is not None}
    if references:
        set_elemental_references(scheme, references, source=f"lowest energy per atom in {dataset.name}")
    return len(references)


def _update_hulls(dataset: Dataset, summary: ImportSummary) -> None:
    scheme = Scheme.objects.get(name=dataset.scheme.name)
    if not scheme.builds_hull:
        return
    chemsystems = summary.chemsystems.get(scheme.name, set())
    summary.hulls_updated[scheme.name] = update_hulls_if_available(scheme, chemsystems)


# Dataset.loader → loader(dataset, files, *, limit, progress, workers, update_hulls) -> DatasetResult
LOADERS: dict[str, Callable[..., DatasetResult]] = {
    "structure_files": load_structure_files,  # CSV or JSON structure files read by catalog.readers
    "aviary": load_aviary,
    "elemental_references": load_elemental_references,
    "bartel": load_bartel,
}
