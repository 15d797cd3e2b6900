"""One DFT job from the command line: ``manage.py run_dft --material gn-000123 --backend gpaw --preset fast``."""

from __future__ import annotations

import json

from django.core.management.base import BaseCommand, CommandError
from pymatgen.core import Structure

from catalog.models import Material
from discovery.dft import PRESETS, available_backends
from discovery.models import Candidate, DFTJob
from discovery.services import dft


class Command(BaseCommand):
    help = "Run one DFT verification job (inline by default, or --enqueue to hand it to a worker on the dft queue)."

    def add_arguments(self, parser):
        target = parser.add_mutually_exclusive_group(required=True)
        target.add_argument("--material", help="public id of a catalog material, e.g. gn-000123")
        target.add_argument("--candidate", type=int, help="id of a discovery candidate")
        target.add_argument("--structure", help="a structure file pymatgen can read (CIF, POSCAR, JSON)")
        parser.add_argument("--backend", default=None, help=f"one of {', '.join(available_backends())}")
        parser.add_argument("--preset", default=None, choices=sorted(PRESETS))
        parser.add_argument("--enqueue", action="store_true", help="queue it for a Celery worker instead")
        parser.add_argument("--json", action="store_true", help="print the job's result as JSON")

    def handle(self, *args, **opts):
        kwargs = {"backend": opts["backend"], "preset": opts["preset"]}
        if opts["material"]:
            try:
                kwargs["material"] = Material.objects.get(public_id=opts["material"])
            except Material.DoesNotExist:
                raise CommandError(f"no material {opts['material']!r} in the catalog") from None
        elif opts["candidate"] is not None:
            try:
                kwargs["candidate"] = Candidate.objects.get(pk=opts["candidate"])
            except Candidate.DoesNotExist:
                raise CommandError(f"no candidate {opts['candidate']}") from None
        else:
            try:
                kwargs["structure"] = Structure.from_file(opts["structure"])
            except (OSError, ValueError) as exc:
                raise CommandError(f"cannot read {opts['structure']}: {exc}") from exc
        if kwargs["backend"] and kwargs["backend"] not in available_backends():
            raise CommandError(f"unknown backend {kwargs['backend']!r}; known: {', '.join(available_backends())}")
        job = dft.create_job(**kwargs)
        if job.state == DFTJob.State.SUCCEEDED:
            self.stdout.write(f"DFT job {job.pk} for this target already succeeded")
        elif opts["enqueue"]:
            dft.enqueue_job(job)
            self.stdout.write(f"queued DFT job {job.pk} ({job.backend}/{job.preset})")
            return
        else:
            self.stdout.write(f"running DFT job {job.pk} ({job.backend}/{job.preset}) inline ...")
            dft.execute_job(job.pk)
        job.refresh_from_db()
        if opts["json"]:
            self.stdout.write(json.dumps({"job": job.pk, "state": job.state, "result": job.result}, default=str))
            return
        if job.state != DFTJob.State.SUCCEEDED:
            raise CommandError(f"DFT job {job.pk} {job.state}: {job.error_class}: {job.error_message}")
        r = job.result
        hull = getattr(job.energy_record, "hull_entry", None) if job.energy_record else None
        self.stdout.write(self.style.SUCCESS(
            f"job {job.pk} succeeded in {job.wall_time_s:.1f} s: {r['composition']} E = {r['energy_total']:.4f} eV "
            f"({r['energy_per_atom']:.4f} eV/atom) in scheme {r['scheme']}"
            + (f"; e_above_hull = {hull.e_above_hull:.3f} eV/atom" if hull and hull.e_above_hull is not None else "")
            + (f"; material {job.material.public_id}" if job.material else "")
        ))
