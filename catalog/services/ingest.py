"""Bulk import of structure files into the catalog: parse in parallel, write in batches, merge duplicates, report.

The pipeline: ``readers.iter_units`` (parent, cheap) → ``readers.parse_unit`` in a process pool (CIF/POSCAR parsing and
spglib symmetry, the expensive part; workers send plain dicts back) → batches of ``GNOMON_IMPORT_BATCH_SIZE`` records,
each written in one transaction by ``register_materials`` and ``record_energies``. A batch that fails is rolled back
whole and its records are reported; the other batches stay. Units whose origin is already in the catalog are skipped
before parsing, so re-importing a file costs little and adds nothing.
"""

from __future__ import annotations

import logging
import multiprocessing
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from functools import partial
from itertools import islice

from django.conf import settings
from django.db import DatabaseError, transaction
from tqdm import tqdm

from catalog import readers
from catalog.models import MaterialOrigin, Scheme
from catalog.parallel import pool_size
from catalog.services.energies import EnergyInput, ensure_scheme, record_energies, update_hulls_if_available
from catalog.services.materials import MatchIndex, OriginSpec, existing_source_ids, register_materials
from gnomon.processes import setup_django

logger = logging.getLogger(__name__)

MIN_UNITS_FOR_POOL = 64  # below this, starting parser processes costs more than it saves

KIND_LABEL = {
    Scheme.Kind.TOTAL_ENERGY: "total energies (eV, eV/atom)",
    Scheme.Kind.FORMATION_ENERGY: "formation energies (eV/atom, elements at 0)",
    Scheme.Kind.STABILITY_VALUE: "a dataset's own stability measure (eV/atom)",
}


@dataclass
class ImportSummary:
    read: int = 0  # records seen: rows and structures, including rejected and already imported ones
    imported: int = 0  # new materials
    merged: int = 0  # duplicates attached to a material as another origin
    existing: int = 0  # origins already in the catalog (re-import): nothing written
    rejected: int = 0
    energies: int = 0
    problems: list[dict] = field(default_factory=list)
    chemsystems: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))  # scheme name -> chemsys
    hulls_updated: dict[str, bool] = field(default_factory=dict)

    def reject(self, item: dict) -> None:
        self.rejected += 1
        self.problems.append(item)

    @property
    def written(self) -> int:
        return self.imported + self.merged

    def line(self) -> str:
        return (f"read {self.read}, imported {self.imported}, merged {self.merged}, already present {self.existing}, "
                f"rejected {self.rejected}, energies {self.energies}")


def describe_problem(item: dict) -> str:
    where = item["file"]
    if item.get("location"):
        where += f", {item['location']}"
    if item.get("source_id"):
        where += f" (id {item['source_id']})"
    return f"{where}: {item['reason']}"


@dataclass
class ImportOptions:
    source: str
    licence: str = ""
    scheme: str | None = None  # name; the kind comes from the data
    scheme_defaults: dict = field(default_factory=dict)
    origin_kind: str = MaterialOrigin.Kind.DATASET
    origin_details: dict = field(default_factory=dict)
    workers: int | None = None
    batch_size: int | None = None
    symprec: float | None = None
    progress: bool = False
    update_hulls: bool = True
    limit: int | None = None
    poscar_energy_in_comment: bool = False


def import_paths(paths: Iterable[str], options: ImportOptions) -> ImportSummary:
    """Import files, directories and glob patterns (see readers.detect_format for the formats)."""
    files, problems = readers.expand_paths(paths)
    summary = ImportSummary()
    for item in problems:
        summary.reject(item)
    total = sum(_count_units(source) for source in files)
    if options.limit is not None:
        total = min(total, options.limit)
    units = (unit for source in files
             for unit in readers.iter_units(source, poscar_energy_in_comment=options.poscar_energy_in_comment))
    return import_units(units, options, total=total, summary=summary)


def _count_units(source: readers.SourceFile) -> int:
    """Rows of a CSV (for the progress bar's ETA); 1 for other files."""
    if readers.detect_format(source.path) != "csv":
        return 1
    import csv

    try:
        with readers.open_text(source.path) as handle:
            return sum(1 for _ in csv.DictReader(handle))
    except (OSError, UnicodeDecodeError, EOFError, csv.Error):
        return 1


def import_units(units: Iterable[dict], options: ImportOptions, *, total: int | None = None,
                 summary: ImportSummary | None = None) -> ImportSummary:
    summary = summary or ImportSummary()
    workers = pool_size(options.workers or settings.GNOMON_IMPORT_WORKERS)
    batch_size = options.batch_size or settings.GNOMON_IMPORT_BATCH_SIZE
    symprec = options.symprec if options.symprec is not None else settings.GNOMON_SYMPREC
    writer = _BatchWriter(options, summary)
    units = iter(units)
    if options.limit is not None:
        units = islice(units, options.limit)
    bar = tqdm(total=total, unit="structure", desc=f"import {options.source}", disable=not options.progress,
               smoothing=0.05, dynamic_ncols=True)
    fresh = _skip_already_imported(units, options.source, summary, on_skip=lambda: bar.update(1))
    parse = partial(readers.parse_unit, symprec=symprec)
    batch: list[dict] = []
    pool = None
    try:
        if workers > 1 and (total is None or total >= MIN_UNITS_FOR_POOL):
            pool = _parser_pool(workers)
            results: Iterator[list[dict]] = pool.imap(parse, fresh, chunksize=16)
        else:
            results = map(parse, fresh)
        for result in results:
            bar.update(1)
            for item in result:
                summary.read += 1
                if item["ok"]:
                    batch.append(item)
                else:
                    summary.reject(item)
            if len(batch) >= batch_size:
                writer.write(batch)
                batch = []
        if batch:
            writer.write(batch)
    finally:
        bar.close()
        if pool is not None:
            pool.close()
            pool.join()
    if options.update_hulls:
        for scheme_name, chemsystems in summary.chemsystems.items():
            scheme = Scheme.objects.get(name=scheme_name)
            if scheme.builds_hull:
                summary.hulls_updated[scheme_name] = update_hulls_if_available(scheme, chemsystems)
    return summary


def _parser_pool(workers: int):
    """Parser processes started from a clean fork server, not forked from this process.

    A plain fork would copy this process's open PostgreSQL connection into every worker; a worker that ends can then
    close the server session under the parent's feet. The fork server imports only the pure readers module.
    """
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["catalog.readers"])
    # Some dataset readers live next to Django code; unpickling them needs the app registry ready.
    return context.Pool(workers, initializer=setup_django)


def _skip_already_imported(units: Iterator[dict], dataset: str, summary: ImportSummary,
                           on_skip: Callable[[], object], chunk: int = 2000) -> Iterator[dict]:
    """Drop units whose origin is already in the catalog before they are parsed (re-imports cost a query per chunk)."""
    while True:
        block = list(islice(units, chunk))
        if not block:
            return
        ids = [u["source_id"] for u in block if u.get("ok", True) and u.get("source_id")]
        present = existing_source_ids(dataset, ids) if ids else set()
        for unit in block:
            if unit.get("ok", True) and unit.get("source_id") in present:
                summary.read += 1
                summary.existing += 1
                on_skip()
                continue
            yield unit


class _BatchWriter:
    """Writes one batch per transaction; keeps the duplicate index across batches of one run."""

    def __init__(self, options: ImportOptions, summary: ImportSummary):
        self.options = options
        self.summary = summary
        self.index = MatchIndex()
        self.schemes: dict[str, Scheme] = {}

    def scheme_for(self, kind: str) -> Scheme:
        if kind not in self.schemes:
            defaults = {"description": f"imported from {self.options.source}: {KIND_LABEL[kind]}",
                        **self.options.scheme_defaults}
            if self.options.scheme:
                self.schemes[kind] = ensure_scheme(self.options.scheme, kind, **defaults)
            else:
                name = f"dataset:{self.options.source}"
                existing = Scheme.objects.filter(name=name).first()
                if existing is not None and existing.kind != kind:
                    name = f"{name}:{kind}"
                self.schemes[kind] = ensure_scheme(name, kind, **defaults)
        return self.schemes[kind]

    def write(self, records: list[dict]) -> None:
        """Write a batch in one transaction. When the database refuses it, the batch is rolled back and written again
        in halves, down to single rows: only the rows that fail are rejected, each with its own error, and none of
        their neighbours (a material is never written without its energy)."""
        # Resolve schemes outside the transaction: a kind conflict aborts the import with a clear message.
        for kind in {r["energy"]["kind"] for r in records if r.get("energy")}:
            self.scheme_for(kind)
        try:
            self._write(records)
        except (DatabaseError, ValueError) as exc:
            self.index = MatchIndex()  # forget the rolled-back rows
            if len(records) == 1:
                record = records[0]
                logger.info("record %s not written: %s", record["source_id"], exc)
                self.summary.reject({"ok": False, "file": record["file"], "location": record.get("location"),
                                     "source_id": record["source_id"], "reason": f"not written: {exc}"})
                return
            logger.warning("batch of %d records rolled back (%s); writing it again in halves", len(records), exc)
            middle = len(records) // 2
            self.write(records[:middle])
            self.write(records[middle:])

    def _write(self, records: list[dict]) -> None:
        options = self.options
        origins = [
            OriginSpec(dataset=options.source, source_id=r["source_id"], kind=options.origin_kind,
                       licence=options.licence,
                       details={**options.origin_details, "file": r["file"],
                                **({"location": r["location"]} if r.get("location") else {})})
            for r in records
        ]
        with transaction.atomic():
            outcome = register_materials(records, origins, index=self.index)
            by_scheme: dict[str, list[EnergyInput]] = defaultdict(list)
            for record, material_id, status in zip(records, outcome.material_ids, outcome.status, strict=True):
                energy = record.get("energy")
                if not energy or status == "existing":
                    continue
                scheme = self.scheme_for(energy["kind"])
                by_scheme[scheme.name].append(_energy_input(record, energy, material_id, options.source))
            written = {}
            for scheme_name, items in by_scheme.items():
                written[scheme_name] = record_energies(self.schemes_by_name()[scheme_name], items)
        self.summary.imported += outcome.created
        self.summary.merged += outcome.merged
        self.summary.existing += outcome.status.count("existing")
        for scheme_name, energy_outcome in written.items():
            self.summary.energies += energy_outcome.created
            self.summary.chemsystems[scheme_name].update(energy_outcome.chemsystems)

    def schemes_by_name(self) -> dict[str, Scheme]:
        return {s.name: s for s in self.schemes.values()}


def _energy_input(record: dict, energy: dict, material_id: int, source: str) -> EnergyInput:
    data = dict(record.get("data") or {})
    data["value_from"] = energy.get("column", "")
    return EnergyInput(
        source_key=f"{source}:{record['source_id']}",
        composition=record["composition"],
        material_id=material_id,
        energy_total=energy.get("energy_total"),
        energy_per_atom=energy.get("energy_per_atom"),
        formation_energy_per_atom=energy.get("formation_energy_per_atom"),
        stability_value=energy.get("stability_value"),
        correction=energy.get("correction") or 0.0,
        produced_by=f"{source}:{record['source_id']}",
        data=data,
    )


# ---------------------------------------------------------------------------------------------------------------
# Materials Project
# ---------------------------------------------------------------------------------------------------------------

MP_SOURCE = "MP"
MP_LICENCE = "CC BY 4.0 (Materials Project)"


class MaterialsProjectError(RuntimeError):
    """The Materials Project could not be queried (no key, offline, refused); the message says what to do."""


def mp_client(api_key: str):
    """A Materials Project client (mp-api's MPRester). Tests replace this function with one returning a fake."""
    from mp_api.client import MPRester

    return MPRester(api_key=api_key, mute_progress_bars=True)


def fetch_mp_entries(chemsystems: Iterable[str], api_key: str) -> list:
    """ComputedStructureEntries of every material in each chemical system (and its subsystems), MP2020-corrected."""
    if not api_key:
        raise MaterialsProjectError(
            "no Materials Project API key: set MP_API_KEY (get one at https://next-gen.materialsproject.org/api) "
            "or pass --api-key"
        )
    entries = []
    try:
        with mp_client(api_key) as client:
            for chemsys in chemsystems:
                entries.extend(client.get_entries_in_chemsys(chemsys, compatible_only=True))
    except MaterialsProjectError:
        raise
    except Exception as exc:  # noqa: BLE001 - network, HTTP and key errors all become one clear message
        raise MaterialsProjectError(
            f"Materials Project query failed ({type(exc).__name__}: {str(exc).strip()[:300]}); check the network "
            f"connection and MP_API_KEY"
        ) from exc
    return entries


def import_mp_entries(entries: Iterable, options: ImportOptions) -> ImportSummary:
    """Store MP entries: structures as materials (origin MP, id = material id), corrected total energies in MP2020."""
    units = []
    for entry in entries:
        entry_id = str(entry.entry_id or "")
        material_id = str((entry.data or {}).get("material_id") or entry_id.split("-GGA")[0].split("-r2SCAN")[0])
        units.append({"file": "Materials Project API", "name": "mp-api", "format": "pmg-json",
                      "location": entry_id or None, "source_id": material_id or entry_id, "object": entry.as_dict()})
    return import_units(units, options, total=len(units))
