"""python manage.py import_optimade URL --filter 'elements HAS ALL "Li","O" AND nelements=2'

Pulls structures from any OPTIMADE provider into the catalog. Each goes through the catalog's one ingestion path
(``catalog.services.materials.register_material``): duplicates merge, re-running is safe (origins are idempotent).
"""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from catalog.optimade_client import OptimadeClientError, iter_structures, provider_prefix
from catalog.services.materials import register_material


class Command(BaseCommand):
    help = "Import structures matching an OPTIMADE filter from a provider's base URL into the catalog."

    def add_arguments(self, parser):
        parser.add_argument("url", help="provider base URL, e.g. https://optimade.materialsproject.org (or …/v1)")
        parser.add_argument("--filter", default="", help="OPTIMADE filter, e.g. 'elements HAS ALL \"Li\",\"O\"'")
        parser.add_argument("--limit", type=int, default=None, help="stop after this many structures")
        parser.add_argument("--page-limit", type=int, default=100, help="structures per request")
        parser.add_argument("--dataset", default="", help="origin dataset name (default: optimade:<provider prefix>)")
        parser.add_argument("--licence", default="", help="licence of the provider's data, recorded on each origin")
        parser.add_argument("--timeout", type=float, default=60.0, help="seconds per HTTP request")

    def handle(self, *args, url, filter, limit, page_limit, dataset, licence, timeout, **options):
        if limit is not None and limit < 1:
            raise CommandError("--limit must be at least 1")
        if not 1 <= page_limit <= 1000:
            raise CommandError("--page-limit must be between 1 and 1000")
        dataset = dataset or f"optimade:{provider_prefix(url, timeout)}"
        created = merged = failed = 0
        try:
            for remote in iter_structures(url, filter, page_limit=page_limit, limit=limit, timeout=timeout):
                try:
                    _, is_new = register_material(
                        remote.structure, dataset=dataset, source_id=remote.id, licence=licence,
                        details={"url": remote.url, "last_modified": remote.attributes.get("last_modified")},
                    )
                except Exception as exc:  # noqa: BLE001 - one bad structure must not stop an import of thousands
                    failed += 1
                    self.stderr.write(f"skipped {remote.id}: {exc}")
                    continue
                created += is_new
                merged += not is_new
        except OptimadeClientError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(f"{dataset}: {created} new, {merged} already in the catalog (merged), {failed} skipped")
