"""python manage.py import_catalog catalog.tar.gz — read an export_catalog archive into this installation."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from catalog.services.archive import ArchiveError, import_catalog


class Command(BaseCommand):
    help = ("Read an export_catalog archive (checksums verified): schemes with their protocols, references, materials "
            "with their origins, energies; rebuild the hulls and compare them with the archive's.")

    def add_arguments(self, parser):
        parser.add_argument("path", help="archive written by export_catalog")

    def handle(self, *args, path, **options):
        try:
            report = import_catalog(path, progress=lambda name: self.stderr.write(f"reading {name}"))
        except ArchiveError as exc:
            raise CommandError(str(exc)) from exc
        for scheme, key, archived, now in report.hull_mismatches[:20]:
            self.stderr.write(f"hull differs: {scheme} {key}: e_above_hull {archived} in the archive, {now} now")
        self.stdout.write(report.line())
