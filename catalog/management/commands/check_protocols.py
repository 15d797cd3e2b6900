"""``python manage.py check_protocols [--scheme NAME] [--mark-unconverged]``: find schemes that mix protocols."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from catalog.models import Scheme
from catalog.services.protocols import audit_schemes, mark_unconverged


class Command(BaseCommand):
    help = ("Report every scheme whose energies were computed with different settings (cutoff, k-points, setups, "
            "code) or come from relaxations that never converged; --mark-unconverged keeps the latter out of hulls. "
            "Exits 1 when a scheme mixes protocols.")

    def add_arguments(self, parser):
        parser.add_argument("--scheme", action="append", help="audit only this scheme (repeatable)")
        parser.add_argument("--mark-unconverged", action="store_true",
                            help="exclude energies of unconverged relaxations from hulls and recompute those hulls")

    def handle(self, *args, **options):
        schemes = None
        if options["scheme"]:
            schemes = list(Scheme.objects.filter(name__in=options["scheme"]))
            missing = set(options["scheme"]) - {s.name for s in schemes}
            if missing:
                raise CommandError(f"unknown scheme(s): {', '.join(sorted(missing))}")
        audits = audit_schemes(schemes)
        if options["mark_unconverged"]:
            marked = mark_unconverged(audits)
            self.stdout.write(f"kept {marked} unconverged energies out of hulls")
        for audit in audits:
            self.stdout.write("\n".join(audit.lines()))
        mixed = [a.scheme for a in audits if a.mixed]
        if mixed:
            self.stderr.write(f"{len(mixed)} scheme(s) mix protocols: {', '.join(mixed)}. Their hulls compare energies "
                              "computed with different settings; recompute those energies in a scheme of one protocol.")
            raise SystemExit(1)
        self.stdout.write(f"{len(audits)} scheme(s) checked: none mixes protocols")
