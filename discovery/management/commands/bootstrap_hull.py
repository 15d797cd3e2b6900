"""A consistent hull from nothing: ``manage.py bootstrap_hull --elements Li,Na,Mg,O,Cl --backend gpaw --preset fast``.

Computes the elemental references (ground-state lattices; H2/N2/O2/F2/Cl2/... as molecules in a box) and binary
prototypes (rocksalt, CsCl, zincblende, wurtzite for AB; fluorite AB2; antifluorite A2B) for every cation–anion pair of
the element space, all in one scheme, then prints the formation energies and hull distances. Re-running skips what
already succeeded.
"""

from __future__ import annotations

import time

from django.core.management.base import BaseCommand, CommandError
from pymatgen.core import Element

from catalog.models import HullEntry, MaterialOrigin
from discovery.dft import PRESETS, available_backends
from discovery.dft.references import UnsupportedElement, bootstrap_set
from discovery.models import DFTJob
from discovery.services import dft


class Command(BaseCommand):
    help = "Compute elemental references and binary prototypes for an element space in one DFT scheme."

    def add_arguments(self, parser):
        parser.add_argument("--elements", required=True, help="comma-separated, e.g. Li,Na,Mg,O,Cl")
        parser.add_argument("--backend", default="gpaw", help=f"one of {', '.join(available_backends())}")
        parser.add_argument("--preset", default="fast", choices=sorted(PRESETS))
        parser.add_argument("--all-prototypes", action="store_true",
                            help="every prototype for every pair, not only the charge-balanced ones")
        parser.add_argument("--enqueue", action="store_true", help="queue the compounds for workers (dft queue)")
        parser.add_argument("--dry-run", action="store_true", help="list the structures and stop")

    def handle(self, *args, **opts):
        elements = [e.strip() for e in opts["elements"].split(",") if e.strip()]
        for el in elements:
            try:
                Element(el)
            except ValueError:
                raise CommandError(f"{el!r} is not an element symbol") from None
        backend, preset = opts["backend"], opts["preset"]
        if backend not in available_backends():
            raise CommandError(f"unknown backend {backend!r}; known: {', '.join(available_backends())}")
        try:
            structures = bootstrap_set(elements, all_prototypes=opts["all_prototypes"],
                                       box=PRESETS[preset].molecule_box)
        except UnsupportedElement as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(f"{len(structures)} structures for {'-'.join(elements)} ({backend}/{preset}):")
        for ref in structures:
            self.stdout.write(f"  {ref.label:28s} {len(ref.structure)} atoms")
        if opts["dry_run"]:
            return
        scheme = dft.scheme_for(backend, preset)
        t0 = time.perf_counter()
        for ref in structures:
            done = DFTJob.objects.filter(backend=backend, preset=preset, state=DFTJob.State.SUCCEEDED,
                                         settings__label=ref.label).first()
            if done is not None:
                self.stdout.write(f"  {ref.label:28s} already done (job {done.pk})")
                continue
            is_element = len(ref.structure.composition.elements) == 1
            if is_element:
                job = dft.run_reference_job(ref, backend=backend, preset=preset, origin_note="bootstrap_hull")
            else:
                origin = {"dataset": f"bootstrap:{scheme.name}", "source_id": ref.label,
                          "kind": MaterialOrigin.Kind.USER, "details": {"prototype": ref.label.split("-", 1)[1]}}
                job = dft.create_job(structure=ref.structure, backend=backend, preset=preset, label=ref.label,
                                     origin=origin, is_reference=True)
                if opts["enqueue"]:
                    dft.enqueue_job(job)
                    self.stdout.write(f"  {ref.label:28s} queued (job {job.pk})")
                    continue
                dft.execute_job(job.pk)
                job.refresh_from_db()
            if job.state == DFTJob.State.SUCCEEDED:
                self.stdout.write(f"  {ref.label:28s} {job.result['energy_per_atom']:10.4f} eV/atom "
                                  f"{job.wall_time_s:7.1f} s")
            else:
                self.stdout.write(self.style.WARNING(f"  {ref.label:28s} {job.state}: {job.error_message[:200]}"))
        self.stdout.write(f"done in {time.perf_counter() - t0:.0f} s; hull of scheme {scheme.name}:")
        entries = HullEntry.objects.filter(scheme=scheme).select_related("energy_record").order_by("chemsys",
                                                                                                 "e_above_hull")
        for entry in entries:
            if entry.formation_energy_per_atom is None:
                continue
            label = entry.energy_record.data.get("label", entry.energy_record.composition)
            self.stdout.write(f"  {label:28s} E_f = {entry.formation_energy_per_atom:7.3f} eV/atom  "
                              f"E_hull = {entry.e_above_hull:6.3f}{'  (stable)' if entry.is_stable else ''}")
