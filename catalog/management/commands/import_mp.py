"""``manage.py import_mp --chemsys Li-Fe-O ...``: import Materials Project entries (structures + MP2020 energies)."""

from __future__ import annotations

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from pymatgen.core import Element

from catalog.datasets import MP_ELEMENTAL_REFS
from catalog.management.commands.import_structures import report_summary
from catalog.services.energies import SchemeKindError
from catalog.services.ingest import (
    MP_LICENCE,
    MP_SOURCE,
    ImportOptions,
    MaterialsProjectError,
    fetch_mp_entries,
    import_mp_entries,
)
from catalog.structures import parse_chemsys


class Command(BaseCommand):
    help = (
        "Import every Materials Project entry of the given chemical systems (and their subsystems) through mp-api: "
        "structures into the catalog (origin 'MP'), MP2020-corrected total energies into the MP2020 scheme. "
        "Needs MP_API_KEY and internet access."
    )

    def add_arguments(self, parser):
        parser.add_argument("--chemsys", action="append", required=True,
                            help="chemical system such as Li-Fe-O (repeatable)")
        parser.add_argument("--api-key", default=None, help="default: MP_API_KEY")
        parser.add_argument("--workers", type=int, default=None)
        parser.add_argument("--no-hulls", action="store_true")
        parser.add_argument("--no-progress", action="store_true")

    def handle(self, *args, **options):
        chemsystems = []
        for value in options["chemsys"]:
            elements = parse_chemsys(value)
            if not elements or not all(Element.is_valid_symbol(e) for e in elements):
                raise CommandError(f"--chemsys {value!r}: expected element symbols joined by '-', e.g. Li-Fe-O")
            chemsystems.append("-".join(elements))
        api_key = options["api_key"] or settings.MP_API_KEY
        scheme = MP_ELEMENTAL_REFS.scheme
        try:
            scheme.ensure()
            entries = fetch_mp_entries(chemsystems, api_key)
            summary = import_mp_entries(entries, ImportOptions(
                source=MP_SOURCE, licence=MP_LICENCE, scheme=scheme.name, scheme_defaults=scheme.defaults(),
                workers=options["workers"], progress=not options["no_progress"],
                update_hulls=not options["no_hulls"],
            ))
        except (MaterialsProjectError, SchemeKindError) as exc:
            raise CommandError(str(exc)) from exc
        report_summary(self, summary)
        if summary.written == 0 and summary.existing == 0:
            raise CommandError(f"no Materials Project entries imported for {', '.join(chemsystems)}")
