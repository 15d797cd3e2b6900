"""python manage.py import_optimade URL --filter 'elements HAS ALL "Li","O" AND nelements=2'

Pulls structures from any OPTIMADE provider into the catalog. Each goes through the catalog's one ingestion path
(``catalog.services.materials.register_material``): duplicates merge, re-running is safe (origins are idempotent).
An entry that cannot be read or registered is skipped with the provider's id and the reason (all of them in
``--report FILE``); the rest are imported.
"""

from __future__ import annotations

import csv
from pathlib import Path

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
        parser.add_argument("--report", metavar="FILE", help="write every skipped entry (id, url, reason) to FILE (CSV)")

    def handle(self, *args, url, filter, limit, page_limit, dataset, licence, timeout, report, **options):
        if limit is not None and limit < 1:
            raise CommandError("--limit must be at least 1")
        if not 1 <= page_limit <= 1000:
            raise CommandError("--page-limit must be between 1 and 1000")
        dataset = dataset or f"optimade:{provider_prefix(url, timeout)}"
        created = merged = 0
        skipped: list[tuple[str, str, str]] = []  # (provider id, url, reason)
        stopped = ""
        try:
            for remote in iter_structures(url, filter, page_limit=page_limit, limit=limit, timeout=timeout):
                if remote.structure is None:
                    skipped.append((remote.id, remote.url, remote.error))
                    continue
                try:
                    _, is_new = register_material(
                        remote.structure, dataset=dataset, source_id=remote.id, licence=licence,
                        details={"url": remote.url, "last_modified": remote.attributes.get("last_modified")},
                    )
                except Exception as exc:  # noqa: BLE001 - one bad structure must not stop an import of thousands
                    skipped.append((remote.id, remote.url, f"{type(exc).__name__}: {exc}"))
                    continue
                created += is_new
                merged += not is_new
        except OptimadeClientError as exc:
            stopped = str(exc)  # what came before is kept; re-running continues idempotently
        for entry_id, _, reason in skipped[:20]:
            self.stderr.write(f"skipped {entry_id}: {reason}")
        if len(skipped) > 20:
            self.stderr.write(f"... and {len(skipped) - 20} more skipped" + (f"; all are in {report}" if report else ""))
        if report:
            with Path(report).open("w", newline="", encoding="utf-8") as handle:
                writer = csv.writer(handle)
                writer.writerow(["id", "url", "reason"])
                writer.writerows(skipped)
        self.stdout.write(f"{dataset}: {created} new, {merged} already in the catalog (merged), {len(skipped)} skipped")
        if stopped:
            raise CommandError(f"stopped: {stopped} ({created + merged} imported before that; run again to go on)")
