"""``python manage.py recompute_hulls [--scheme S] [--chemsys A-B-C]``: rebuild convex hulls from scratch."""

from __future__ import annotations

import time

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from catalog.models import Scheme
from catalog.services.hulls import recompute_hulls
from catalog.structures import parse_chemsys


class Command(BaseCommand):
    help = "Rebuild convex hulls (HullEntry, ChemsysHull, materials' stability) from the stored energies."

    def add_arguments(self, parser):
        parser.add_argument("--scheme", help="scheme name (default: every scheme that builds hulls)")
        parser.add_argument(
            "--chemsys", help="only this chemical system, its stored sub-systems and the stored systems containing it"
        )
        parser.add_argument("--no-progress", action="store_true", help="no progress bar")

    def handle(self, *args, scheme=None, chemsys=None, no_progress=False, **options):
        if scheme is not None and not Scheme.objects.filter(name=scheme).exists():
            names = ", ".join(Scheme.objects.values_list("name", flat=True)) or "none"
            raise CommandError(f"unknown scheme {scheme!r} (known: {names})")
        if chemsys is not None:
            if not parse_chemsys(chemsys):
                raise CommandError(f"invalid chemical system {chemsys!r}; expected e.g. Fe-Li-O")
            chemsys = "-".join(parse_chemsys(chemsys))
        bar: tqdm | None = None

        def on_plan(n_diagrams: int, n_entries: int) -> None:
            nonlocal bar
            if bar is not None:
                bar.close()
            bar = tqdm(total=n_entries, unit="entry", disable=no_progress, file=self.stderr._out)

        def progress(n: int) -> None:
            if bar is not None:
                bar.update(n)

        started = time.perf_counter()
        reports = recompute_hulls(scheme, chemsys, progress=progress, on_plan=on_plan)
        if bar is not None:
            bar.close()
        elapsed = time.perf_counter() - started
        for r in reports:
            if r.skipped_reason:
                self.stdout.write(f"{r.scheme}: skipped ({r.skipped_reason})")
                continue
            self.stdout.write(
                f"{r.scheme}: {len(r.touched_systems)} chemical systems ({len(r.maximal_systems)} maximal, "
                f"{r.n_diagrams} diagrams), {r.n_entries} hull entries, {r.n_stable} stable, "
                f"{r.n_missing_references} missing elemental references, {r.n_skipped} without an energy, "
                f"{r.n_materials} materials refreshed"
            )
        self.stdout.write(self.style.SUCCESS(f"recomputed hulls of {len(reports)} scheme(s) in {elapsed:.1f} s"))
