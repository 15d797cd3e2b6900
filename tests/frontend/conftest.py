"""A small catalog built with the ORM: real pymatgen structures, energies in one scheme, hulls computed by pymatgen."""

from __future__ import annotations

from functools import cache as memoize

import pytest
from django.core.cache import cache
from pymatgen.analysis.phase_diagram import PDEntry, PhaseDiagram
from pymatgen.core import Composition, Lattice, Structure

from catalog.models import ChemsysHull, EnergyRecord, HullEntry, MaterialOrigin, Scheme
from discovery.models import Campaign, CampaignRound, Candidate, DFTJob
from tests.factories import make_material, perovskite, rocksalt


@memoize
def structures() -> dict[str, Structure]:
    """Built once per process: ``Structure.from_spacegroup`` spends seconds on each new space group."""
    return {
        "Sr": Structure.from_spacegroup("Fm-3m", Lattice.cubic(6.08), ["Sr"], [[0, 0, 0]]),
        "Ti": Structure.from_spacegroup("Im-3m", Lattice.cubic(3.28), ["Ti"], [[0, 0, 0]]),
        "SrO": rocksalt("Sr", "O", 5.16),
        "TiO2": Structure.from_spacegroup(
            "P4_2/mnm", Lattice.tetragonal(4.59, 2.96), ["Ti", "O"], [[0, 0, 0], [0.305, 0.305, 0]]
        ),
        "SrTiO3": perovskite("Sr", "Ti", lattice=3.905),
        "NaCl": rocksalt("Na", "Cl", 5.69),
        "MgO": rocksalt("Mg", "O", 4.21),
        "SrTiO3-b": perovskite("Sr", "Ti", lattice=4.05),
    }


def _add_energy(scheme, material, e_form):
    comp = material.to_structure().composition
    return EnergyRecord.objects.create(
        scheme=scheme,
        material=material,
        source_key=f"test:{material.public_id}",
        composition=comp.formula.replace(" ", ""),
        elements=list(material.elements),
        chemsys=material.chemsys,
        natoms=comp.num_atoms,
        formation_energy_per_atom=e_form,
        produced_by="test fixture",
    )


def compute_hulls(scheme, records):
    """What the hull service does, for the test catalog: one PhaseDiagram per chemical system of the records."""
    by_system = {}
    for record in records:
        by_system.setdefault(record.chemsys, []).append(record)
    for chemsys in sorted(by_system, key=lambda c: c.count("-")):
        elements = chemsys.split("-")
        pool = [r for r in records if set(r.elements) <= set(elements)]
        entries = [
            PDEntry(Composition(r.composition), r.formation_energy_per_atom * Composition(r.composition).num_atoms)
            for r in pool
        ]
        for el in elements:
            entries.append(PDEntry(Composition(el), 0.0))
        pd = PhaseDiagram(entries)
        for record, entry in zip(pool, entries, strict=False):
            if record.chemsys != chemsys:
                continue
            decomp, e_hull = pd.get_decomp_and_e_above_hull(entry, allow_negative=True)
            stable = entry in pd.stable_entries
            products = []
            for product, fraction in decomp.items():
                match = next((r for r in pool if Composition(r.composition).reduced_formula == product.composition.reduced_formula and r.formation_energy_per_atom * Composition(r.composition).num_atoms == product.energy), None)
                products.append(
                    {
                        "energy_record": match.pk if match else None,
                        "material": match.material_id if match else None,
                        "formula": product.composition.reduced_formula,
                        "fraction": round(fraction, 4),
                    }
                )
            HullEntry.objects.update_or_create(
                energy_record=record,
                defaults={
                    "scheme": scheme,
                    "material": record.material,
                    "chemsys": chemsys,
                    "formation_energy_per_atom": record.formation_energy_per_atom,
                    "e_above_hull": max(0.0, e_hull),
                    "is_stable": stable,
                    "decomposition": [] if stable else products,
                },
            )
            record.material.e_above_hull = max(0.0, e_hull)
            record.material.is_stable = stable
            record.material.formation_energy_per_atom = record.formation_energy_per_atom
            record.material.hull_scheme = scheme
            record.material.save()
        ChemsysHull.objects.update_or_create(
            scheme=scheme, chemsys=chemsys, defaults={"elements": elements, "n_entries": len(pool), "revision": 1}
        )


def build_catalog() -> dict:
    scheme = Scheme.objects.create(
        name="TEST-PBE", kind=Scheme.Kind.FORMATION_ENERGY, level_of_theory="PBE (test)", display_priority=10
    )
    dataset_scheme = Scheme.objects.create(name="dataset:perov-test", kind=Scheme.Kind.STABILITY_VALUE, is_dft=True)
    rows = {
        key: make_material(structure, dataset="mp" if key in ("NaCl", "MgO") else "perov", public_id=f"gn-{i:06d}")
        for i, (key, structure) in enumerate(structures().items(), start=1)
    }
    energies = {"Sr": 0.0, "Ti": 0.0, "SrO": -3.05, "TiO2": -3.4, "SrTiO3": -3.55, "NaCl": -2.1, "MgO": -3.0, "SrTiO3-b": -3.45}
    records = [_add_energy(scheme, rows[k], e) for k, e in energies.items()]
    compute_hulls(scheme, records)
    EnergyRecord.objects.create(
        scheme=dataset_scheme,
        material=rows["SrTiO3"],
        source_key="perov:5",
        composition="SrTiO3",
        elements=["O", "Sr", "Ti"],
        chemsys="O-Sr-Ti",
        natoms=5,
        stability_value=0.123,
    )
    for m in rows.values():
        m.refresh_from_db()
    return {"scheme": scheme, "materials": rows}


def build_campaign(catalog: dict) -> dict:
    parent = catalog["materials"]["SrTiO3"]
    campaign = Campaign.objects.create(
        name="Sr-Ti-O demo", elements=["Sr", "Ti", "O"], max_elements=3, pipelines=["structural"],
        status=Campaign.Status.RUNNING, config={"rounds": 3},
    )
    round1 = CampaignRound.objects.create(
        campaign=campaign, index=1, stage="done", n_generated=120, n_deduplicated=100, n_screened=100, n_selected=10,
        n_dft_done=9, n_dft_failed=1, n_new_stable=2, n_new_on_hull=2, hit_rate=0.22, model_mae=0.081,
    )
    round2 = CampaignRound.objects.create(
        campaign=campaign, index=2, stage="verify", n_generated=150, n_screened=140, n_selected=10, n_dft_done=3,
    )
    discovered = catalog["materials"]["SrTiO3-b"]
    candidate = Candidate.objects.create(
        round=round1, structure=discovered.structure, formula_reduced="SrTiO3", chemsys="O-Sr-Ti", pipeline="structural",
        recipe={"parent": parent.public_id, "substitution": {"Ba": "Sr"}}, parent=parent, fingerprint="fp-1",
        status=Candidate.Status.VERIFIED, material=discovered,
    )
    job = DFTJob.objects.create(
        candidate=candidate, material=discovered, input_structure=discovered.structure, backend="gpaw", preset="fast",
        scheme=catalog["scheme"], state=DFTJob.State.SUCCEEDED, attempts=1, wall_time_s=42.0,
        settings={"ecut": 400, "kpts": [4, 4, 4]},
    )
    failed_candidate = Candidate.objects.create(
        round=round1, structure=parent.structure, formula_reduced="SrTiO3", chemsys="O-Sr-Ti", pipeline="structural",
        fingerprint="fp-2", status=Candidate.Status.FAILED,
    )
    DFTJob.objects.create(
        candidate=failed_candidate, input_structure=parent.structure, state=DFTJob.State.FAILED, attempts=2,
        error_class="SCFNotConverged", error_message="SCF did not converge in 60 iterations",
    )
    MaterialOrigin.objects.create(
        material=discovered, kind=MaterialOrigin.Kind.CAMPAIGN, dataset=f"campaign:{campaign.pk}",
        source_id=f"candidate:{candidate.pk}",
        details={"round": round1.index}, campaign=campaign, candidate=candidate, dft_job=job,
    )
    return {"campaign": campaign, "rounds": [round1, round2], "candidate": candidate, "job": job, "discovered": discovered}


def pytest_collection_modifyitems(session, config, items):
    """Browser tests last: once Playwright's event loop runs in the main thread it stays until the session ends."""
    items.sort(key=lambda item: item.get_closest_marker("browser") is not None)


@pytest.fixture(autouse=True)
def _clear_cache():
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def catalog(db):
    return build_catalog()


@pytest.fixture
def campaign(catalog):
    return build_campaign(catalog)
