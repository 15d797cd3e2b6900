"""python manage.py export_catalog catalog.tar.gz — the whole catalog as a portable archive (catalog.services.archive)."""

from __future__ import annotations

from django.core.management.base import BaseCommand

from catalog.services.archive import export_catalog


class Command(BaseCommand):
    help = ("Write the catalog (structures, every energy with its scheme and protocol, provenance, hull results, CIFs) "
            "to a versioned .tar.gz archive with a manifest and checksums; import_catalog reads it back.")

    def add_arguments(self, parser):
        parser.add_argument("path", help="archive to write, e.g. catalog.tar.gz")
        parser.add_argument("--no-cif", action="store_true", help="leave out the CIF copy of each structure")

    def handle(self, *args, path, no_cif, **options):
        manifest = export_catalog(path, cif=not no_cif, progress=lambda name: self.stderr.write(f"writing {name}"))
        counts = ", ".join(f"{name} {n}" for name, n in manifest["counts"].items())
        self.stdout.write(f"{path}: {counts}")
