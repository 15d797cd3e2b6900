"""``manage.py load_seed``: load the registered seed datasets (catalog.datasets) into the catalog."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from catalog.datasets import REGISTRY, DatasetError, load_dataset
from catalog.management.commands.import_structures import report_summary
from catalog.services.energies import SchemeKindError


class Command(BaseCommand):
    help = (
        "Load seed datasets (default: all, in dependency order). Files are taken from --path, GNOMON_DATA_DIR, the "
        "dataset cache, or downloaded with checksum verification. Safe to run again: nothing is added twice."
    )

    def add_arguments(self, parser):
        parser.add_argument("--dataset", action="append", choices=list(REGISTRY), dest="datasets",
                            help="dataset to load (repeatable); default all")
        parser.add_argument("--path", help="folder holding the dataset's files (or a folder containing its folder)")
        parser.add_argument("--limit", type=int, default=None, help="at most N rows per dataset (quick demos)")
        parser.add_argument("--workers", type=int, default=None, help="parser processes")
        parser.add_argument("--list", action="store_true", help="list the registry and exit")
        parser.add_argument("--no-hulls", action="store_true", help="do not recompute hulls afterwards")
        parser.add_argument("--no-progress", action="store_true")

    def handle(self, *args, **options):
        if options["list"]:
            for dataset in REGISTRY.values():
                self.stdout.write(f"{dataset.name:26} {dataset.count:>7} {dataset.kind:22} scheme {dataset.scheme.name}"
                                  f" ({dataset.scheme.kind}); {dataset.licence}")
            return
        names = options["datasets"] or list(REGISTRY)
        loaded = 0
        for name in names:
            try:
                result = load_dataset(name, path=options["path"], limit=options["limit"],
                                      progress=not options["no_progress"], workers=options["workers"],
                                      update_hulls=not options["no_hulls"])
            except (DatasetError, SchemeKindError) as exc:
                raise CommandError(str(exc)) from exc
            if result.summary is not None:
                report_summary(self, result.summary)
                loaded += result.summary.written + result.summary.existing
            loaded += result.energies + result.references + result.extra.get("already_present", 0)
            self.stdout.write(result.line())
        if loaded == 0:
            raise CommandError("nothing could be loaded")
