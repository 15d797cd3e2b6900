"""``manage.py import_structures PATH...``: bulk import of crystal files with their energies (see services.ingest)."""

from __future__ import annotations

import csv
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from catalog.services.energies import SchemeKindError
from catalog.services.ingest import ImportOptions, describe_problem, import_paths

MAX_PROBLEMS_SHOWN = 50


class Command(BaseCommand):
    help = (
        "Import crystal structures (CIF, POSCAR/CONTCAR *.vasp *.poscar, extended XYZ, pymatgen JSON, CSV with a cif "
        "column; gzip too) from files, directories and glob patterns. Energy columns keep their meaning: "
        "energy/energy_per_atom → total_energy, formation_energy_per_atom/e_form/E_f → formation_energy, "
        "heat_ref → stability_value. Re-importing adds nothing; duplicates are merged keeping every origin."
    )

    def add_arguments(self, parser):
        parser.add_argument("paths", nargs="+", help="files, directories or glob patterns")
        parser.add_argument("--source", default="import",
                            help="dataset name recorded on every origin; (source, id) makes re-imports idempotent")
        parser.add_argument("--scheme", help="scheme name for the energies (default dataset:<source>)")
        parser.add_argument("--licence", default="", help="licence of the data, stored on every origin")
        parser.add_argument("--workers", type=int, default=None,
                            help=f"parser processes (default GNOMON_IMPORT_WORKERS={settings.GNOMON_IMPORT_WORKERS})")
        parser.add_argument("--batch-size", type=int, default=None,
                            help=f"rows per transaction (default {settings.GNOMON_IMPORT_BATCH_SIZE})")
        parser.add_argument("--limit", type=int, default=None, help="read at most N structures/rows")
        parser.add_argument("--poscar-energy-in-comment", action="store_true",
                            help="POSCAR line 1 starts with the cell's total energy in eV (e.g. aviary raw files)")
        parser.add_argument("--no-hulls", action="store_true", help="do not recompute hulls afterwards")
        parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
        parser.add_argument("--report", metavar="FILE",
                            help=f"write every rejected file/row with its reason to FILE (CSV); the terminal shows only "
                                 f"the first {MAX_PROBLEMS_SHOWN}")

    def handle(self, *args, **options):
        import_options = ImportOptions(
            source=options["source"],
            licence=options["licence"],
            scheme=options["scheme"],
            workers=options["workers"],
            batch_size=options["batch_size"],
            limit=options["limit"],
            progress=not options["no_progress"],
            update_hulls=not options["no_hulls"],
            poscar_energy_in_comment=options["poscar_energy_in_comment"],
        )
        try:
            summary = import_paths(options["paths"], import_options)
        except SchemeKindError as exc:
            raise CommandError(str(exc)) from exc
        if options["report"]:
            write_problem_report(Path(options["report"]), summary.problems)
        report_summary(self, summary, report=options["report"])
        if summary.written == 0 and summary.existing == 0:
            raise CommandError("nothing could be imported")


def write_problem_report(path: Path, problems: list[dict]) -> None:
    """Every rejected file or row, one per line (file, location, id, reason): a large import can reject thousands."""
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["file", "location", "source_id", "reason"])
        for item in problems:
            writer.writerow([item["file"], item.get("location") or "", item.get("source_id") or "", item["reason"]])


def report_summary(command: BaseCommand, summary, report: str | None = None) -> None:
    for item in summary.problems[:MAX_PROBLEMS_SHOWN]:
        command.stderr.write(f"rejected: {describe_problem(item)}")
    if len(summary.problems) > MAX_PROBLEMS_SHOWN:
        where = f"; all {len(summary.problems)} are listed in {report}" if report else ""
        command.stderr.write(f"... and {len(summary.problems) - MAX_PROBLEMS_SHOWN} more rejected{where}")
    for scheme, updated in summary.hulls_updated.items():
        if not updated:
            command.stdout.write(f"hulls of scheme {scheme} were not updated")
    command.stdout.write(summary.line())
