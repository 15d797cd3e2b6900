"""Test support for the DFT jobs: a deliberately slow fake backend, and thin stand-ins for catalog services.

The catalog services (``catalog.services.energies.record_energy``, ``catalog.services.materials.register_material``,
``catalog.services.hulls.update_hulls``) are built on other branches. Until they are merged, ``install_catalog_fallbacks``
puts minimal stand-ins in ``sys.modules`` — for the tests only (and for the real Celery worker the kill test starts, which
imports this module through ``GNOMON_DFT_BACKEND_PLUGINS``). When the real modules exist they are used instead.
"""

from __future__ import annotations

import importlib
import os
import sys
import time
import types
import uuid
from pathlib import Path

from pymatgen.core import Structure

from discovery.dft.base import DFTResult, PhysicsError, SchemeSpec, TransientDFTError, register_backend
from discovery.dft.presets import Preset

TOY_ELEMENT_ENERGY = {"Na": -1.3, "Cl": -1.8, "Li": -1.9, "O": -4.9, "Mg": -1.6, "F": -1.7}


class SlowFakeBackend:
    """Sleeps ``GNOMON_TEST_DFT_SLEEP`` seconds, then returns a toy energy: a stand-in for a long DFT run.

    Structures whose first site has the property ``fail`` ("physics" or "transient") raise the matching error.
    """

    name = "slow-fake"
    is_dft = False

    def __init__(self, **_options: object) -> None:
        pass

    def scheme_for(self, preset: Preset) -> SchemeSpec:
        return SchemeSpec(name=f"TEST-fake-{preset.name}", level_of_theory="toy energies for tests", is_dft=False,
                          correction_policy="none")

    def run(self, structure: Structure, preset: Preset, *, workdir: Path, is_molecule: bool = False) -> DFTResult:
        workdir.mkdir(parents=True, exist_ok=True)
        (workdir / "started").write_text(str(os.getpid()))
        failure = structure.properties.get("fail") if hasattr(structure, "properties") else None
        if failure == "physics":
            raise PhysicsError("SCF did not converge after 2 fallbacks (fake)")
        if failure == "transient":
            raise TransientDFTError("node lost (fake)")
        time.sleep(float(os.environ.get("GNOMON_TEST_DFT_SLEEP", "0")))
        comp = structure.composition
        energy = sum(TOY_ELEMENT_ENERGY.get(el.symbol, -1.0) * amt for el, amt in comp.items())
        if len(comp.elements) > 1:
            energy -= 1.0 * comp.num_atoms
        return DFTResult(energy_total=float(energy), structure=structure, initial_structure=structure,
                         scheme=self.scheme_for(preset), settings={"fake": True, "preset": preset.name},
                         scf={"converged": True}, timings={"total_s": 0.0}, log_excerpt="fake run")


register_backend("slow-fake", SlowFakeBackend)


# ----------------------------------------------------------------------------------------------------------------------
# Stand-ins for catalog services that live on other branches (used only when the real ones are missing).


def _energies_module() -> types.ModuleType:
    from django.db import transaction

    from catalog.models import ElementalReference, EnergyRecord, Scheme
    from catalog.structures import chemsys_of

    mod = types.ModuleType("catalog.services.energies")

    def ensure_scheme(name: str, kind: str, **defaults) -> Scheme:
        return Scheme.objects.get_or_create(name=name, defaults={"kind": kind, **defaults})[0]

    def record_energy(scheme, *, source_key, material=None, composition=None, energy_total=None, energy_per_atom=None,
                      formation_energy_per_atom=None, stability_value=None, correction=0.0, produced_by="",
                      data=None, update_hull=True):
        from pymatgen.core import Composition

        comp = Composition(composition)
        with transaction.atomic():
            record, _ = EnergyRecord.objects.get_or_create(
                scheme=scheme, source_key=source_key,
                defaults={"material": material, "composition": comp.formula.replace(" ", ""),
                          "elements": sorted(el.symbol for el in comp.elements), "chemsys": chemsys_of(comp),
                          "natoms": comp.num_atoms, "energy_total": energy_total,
                          "energy_per_atom": energy_per_atom if energy_per_atom is not None
                          else energy_total / comp.num_atoms,
                          "correction": correction, "produced_by": produced_by, "data": data or {}},
            )
        return record

    def set_elemental_references(scheme, energies_per_atom, *, source=""):
        for element, energy in energies_per_atom.items():
            ElementalReference.objects.update_or_create(scheme=scheme, element=element,
                                                        defaults={"energy_per_atom": energy, "source": source})
        return len(energies_per_atom)

    mod.ensure_scheme = ensure_scheme
    mod.record_energy = record_energy
    mod.set_elemental_references = set_elemental_references
    mod.FALLBACK = True
    return mod


def _materials_module() -> types.ModuleType:
    from catalog.models import Material, MaterialOrigin, format_public_id
    from catalog.structures import describe

    mod = types.ModuleType("catalog.services.materials")

    def register_material(structure, *, dataset, source_id, kind="dataset", licence="", details=None, symprec=None):
        origin = MaterialOrigin.objects.filter(dataset=dataset, source_id=source_id).first()
        if origin is not None:
            return origin.material, False
        d = describe(structure)
        material = Material.objects.create(
            public_id=f"tmp{uuid.uuid4().hex[:12]}", structure=structure.as_dict(),
            formula_reduced=d.formula_reduced, formula_anonymous=d.formula_anonymous, elements=list(d.elements),
            nelements=len(d.elements), chemsys=d.chemsys, nsites=d.nsites, volume=d.volume, density=d.density,
            spacegroup_number=d.spacegroup_number, spacegroup_symbol=d.spacegroup_symbol,
            crystal_system=d.crystal_system, symprec=d.symprec, fingerprint=d.fingerprint,
        )
        material.public_id = format_public_id(material.pk)
        material.save(update_fields=["public_id"])
        MaterialOrigin.objects.create(material=material, kind=kind, dataset=dataset, source_id=source_id,
                                      licence=licence, details=details or {})
        return material, True

    mod.register_material = register_material
    mod.FALLBACK = True
    return mod


def _hulls_module() -> types.ModuleType:
    from pymatgen.analysis.phase_diagram import PDEntry, PhaseDiagram
    from pymatgen.core import Composition

    from catalog.models import ChemsysHull, EnergyRecord, HullEntry

    mod = types.ModuleType("catalog.services.hulls")

    def update_hulls(scheme, chemsystems):
        for chemsys in chemsystems:
            elements = chemsys.split("-")
            records = list(EnergyRecord.objects.filter(scheme=scheme, elements__contained_by=elements))
            entries = [PDEntry(Composition(r.composition), r.energy_total, name=str(r.pk)) for r in records]
            hull, _ = ChemsysHull.objects.get_or_create(scheme=scheme, chemsys=chemsys,
                                                        defaults={"elements": elements})
            hull.revision += 1
            try:
                pd = PhaseDiagram(entries)
            except ValueError:  # missing elemental references
                for r in records:
                    HullEntry.objects.update_or_create(energy_record=r, defaults={
                        "scheme": scheme, "material": r.material, "chemsys": r.chemsys,
                        "status": HullEntry.Status.MISSING_REFERENCES, "hull_revision": hull.revision})
                hull.save()
                continue
            for r, e in zip(records, entries, strict=True):
                e_hull = float(pd.get_e_above_hull(e))
                HullEntry.objects.update_or_create(energy_record=r, defaults={
                    "scheme": scheme, "material": r.material, "chemsys": r.chemsys, "status": HullEntry.Status.OK,
                    "formation_energy_per_atom": float(pd.get_form_energy_per_atom(e)), "e_above_hull": e_hull,
                    "is_stable": e_hull < 1e-8, "hull_revision": hull.revision})
            hull.n_entries = len(records)
            hull.save()

    mod.update_hulls = update_hulls
    mod.FALLBACK = True
    return mod


FALLBACKS = {"energies": _energies_module, "materials": _materials_module, "hulls": _hulls_module}


def install_catalog_fallbacks() -> list[str]:
    """Stand-ins for missing catalog service modules; returns the names installed."""
    installed = []
    try:
        package = importlib.import_module("catalog.services")
    except ModuleNotFoundError:
        package = types.ModuleType("catalog.services")
        package.__path__ = []  # a namespace for the stand-ins
        sys.modules["catalog.services"] = package
        importlib.import_module("catalog").services = package
    for name, factory in FALLBACKS.items():
        full = f"catalog.services.{name}"
        try:
            importlib.import_module(full)
        except ModuleNotFoundError:
            module = factory()
            sys.modules[full] = module
            setattr(package, name, module)
            installed.append(name)
    return installed


if os.environ.get("DJANGO_SETTINGS_MODULE"):
    try:
        import django.apps

        if django.apps.apps.ready:
            install_catalog_fallbacks()
    except Exception:  # noqa: BLE001, S110 - importing before Django is set up; conftest calls it later
        pass
