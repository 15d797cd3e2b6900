"""Stability verdicts: against which competitors, and whether that set is complete."""

from __future__ import annotations

import pytest
from pymatgen.core import Lattice, Structure

from catalog.models import HullEntry
from catalog.services.energies import ensure_scheme, record_energy, set_elemental_references
from catalog.verdicts import CONFIRMED, PROVISIONAL, competing_phases, stability_verdict
from tests.factories import make_material, rocksalt

pytestmark = pytest.mark.django_db


def _fluorite(a: str, b: str, lattice: float = 5.5) -> Structure:
    return Structure(Lattice.cubic(lattice), [a] * 4 + [b] * 8,
                     [[0, 0, 0], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]]
                     + [[x, y, z] for x in (0.25, 0.75) for y in (0.25, 0.75) for z in (0.25, 0.75)])


@pytest.fixture
def sources():
    """A DFT-level seed scheme (formation energies) with structures, and MP's composition table."""
    seed = ensure_scheme("seed", "formation_energy", is_dft=True)
    crystals = {
        "NaCl": (make_material(rocksalt("Na", "Cl", 5.69), source_id="NaCl"), -2.0),  # on the Na-Cl hull
        "KCl": (make_material(rocksalt("K", "Cl", 6.29), source_id="KCl"), -2.2),  # a subsystem of K-Na-Cl
        "NaCl2": (make_material(_fluorite("Na", "Cl"), source_id="NaCl2"), -1.31),  # 0.02 above the NaCl–Cl tie line
        "Na2Cl": (make_material(_fluorite("Cl", "Na"), source_id="Na2Cl"), -1.0),  # 0.33 above: no competitor
    }
    for formula, (material, ef) in crystals.items():
        record_energy(seed, source_key=formula, material=material, formation_energy_per_atom=ef)
    mp = ensure_scheme("MP-bartel2020", "formation_energy", is_dft=True)
    record_energy(mp, source_key="MgCl2", composition="MgCl2", formation_energy_per_atom=-2.25,
                  data={"published_decomposition_energy": -1.9})
    return {k: m for k, (m, _) in crystals.items()}


def test_competitors_are_the_phases_within_50_meV_of_a_trusted_hull_in_the_system_and_its_subsystems(sources):
    phases = {c.formula: c for c in competing_phases("Cl-K-Na")}
    assert set(phases) == {"NaCl", "KCl", "NaCl2"}  # Na2Cl is 0.33 eV/atom above: not a competitor
    assert phases["KCl"].chemsys == "Cl-K" and phases["NaCl"].material_id == sources["NaCl"].pk
    assert phases["NaCl2"].e_above_hull == pytest.approx(2.0 * 2 / 3 - 1.31, abs=1e-4)  # above the NaCl–Cl2 tie line
    assert {c.formula for c in competing_phases("Cl-Mg")} == {"MgCl2"}  # composition only
    assert competing_phases("Cl-Mg")[0].material_id is None and not competing_phases("Cl-Mg")[0].computable


REFS = {"Na": -1.3, "Cl": -1.8, "K": -1.0, "Mg": -1.5, "Br": -1.6}  # eV/atom, the test scheme's elemental references


def _computed(scheme, tag: str, structure: Structure, formation_per_atom: float, material=None) -> HullEntry:
    """A total energy for ``structure`` that puts it ``formation_per_atom`` (eV/atom) below its elements."""
    material = material or make_material(structure, source_id=tag)
    structure = material.to_structure()
    total = sum(REFS[site.specie.symbol] for site in structure) + formation_per_atom * len(structure)
    record = record_energy(scheme, source_key=tag, material=material, energy_total=total)
    return HullEntry.objects.get(energy_record=record)


def test_verdict_is_provisional_until_every_competitor_is_computed_then_confirmed(sources):
    gpaw = ensure_scheme("GPAW-test", "total_energy")
    set_elemental_references(gpaw, REFS)
    knacl2 = Structure(Lattice.cubic(5.9), ["K", "Na", "Cl", "Cl"],
                       [[0, 0, 0], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]])
    candidate = _computed(gpaw, "KNaCl2", knacl2, -2.5)
    verdict = stability_verdict(candidate)
    assert verdict.state == PROVISIONAL and verdict.on_hull  # alone on its hull: stable, but against nothing
    assert {m.formula for m in verdict.missing} == {"NaCl", "KCl", "NaCl2"}
    assert all("not computed" in m.reason for m in verdict.missing)
    for formula, ef in (("NaCl", -2.0), ("KCl", -2.2), ("NaCl2", -1.3)):
        _computed(gpaw, f"{formula}-gpaw", None, ef, material=sources[formula])
    candidate.refresh_from_db()
    verdict = stability_verdict(candidate)
    assert verdict.state == CONFIRMED and verdict.missing == []
    assert verdict.on_hull and candidate.e_above_hull == pytest.approx(0.0)  # -2.5 is below NaCl + KCl (-2.1)
    assert verdict.reference is None and verdict.novelty == "novel" and verdict.label == "confirmed stable"


def test_a_composition_only_competitor_keeps_a_lone_polymorph_provisional_and_the_reference_verdict_is_shown(sources):
    gpaw = ensure_scheme("GPAW-test", "total_energy")
    set_elemental_references(gpaw, REFS)
    fluorite = _computed(gpaw, "MgCl2-fluorite", _fluorite("Mg", "Cl"), -1.0)
    verdict = stability_verdict(fluorite)
    assert verdict.state == PROVISIONAL and verdict.on_hull
    assert [m.formula for m in verdict.missing] == ["MgCl2"] and "no structure known" in verdict.missing[0].reason
    assert verdict.reference.stable and verdict.reference.text() == "MP (Bartel 2020): stable, Ed -1.90 eV/atom"
    assert verdict.novelty == "rediscovered" and verdict.label == "provisional stable"


def test_campaign_hit_rate_counts_confirmed_verdicts_only(sources):
    from django.contrib.auth import get_user_model

    from discovery.campaign_config import validate
    from discovery.models import Campaign, CampaignRound, Candidate, DFTJob
    from discovery.services.campaign_stages import fold

    gpaw = ensure_scheme("GPAW-test", "total_energy")
    set_elemental_references(gpaw, REFS)
    staff = get_user_model().objects.create_user("staff", is_staff=True)
    campaign = Campaign.objects.create(name="verdicts", elements=["Na", "K", "Cl", "Br"], launched_by=staff)
    rnd = CampaignRound.objects.create(campaign=campaign, index=0, stage="fold")
    kbr = Structure(Lattice.cubic(6.6), ["K", "Br"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    entries = {"NaCl2": _computed(gpaw, "NaCl2-candidate", _fluorite("Na", "Cl"), -1.9),  # competitor NaCl missing
               "KBr": _computed(gpaw, "KBr-candidate", kbr, -1.8)}  # no known competitor: confirmed
    for formula, entry in entries.items():
        candidate = Candidate.objects.create(round=rnd, structure={}, formula_reduced=formula, chemsys=entry.chemsys,
                                             pipeline="structural", fingerprint=formula, predicted_mean=-1.5,
                                             status=Candidate.Status.VERIFIED)
        DFTJob.objects.create(candidate=candidate, input_structure={}, backend="gpaw", state=DFTJob.State.SUCCEEDED,
                              energy_record=entry.energy_record)
    fold(campaign, rnd, validate({"name": "verdicts", "elements": ["Na", "K", "Cl", "Br"], "max_elements": 2}))
    rnd.refresh_from_db()
    assert rnd.verdicts["confirmed"] == 1 and rnd.verdicts["provisional"] == 1
    assert rnd.verdicts["provisional_on_hull"] == 1 and rnd.verdicts["novel"] == 1
    assert rnd.n_new_on_hull == 1 and rnd.hit_rate == 1.0  # the provisional NaCl2 is not a hit
    missing = next(c for c in rnd.verdicts["candidates"] if c["formula"] == "NaCl2")["missing"]
    # NaCl, and the seed's own NaCl2 crystal: another material than the candidate, so a polymorph not yet computed
    assert [m["formula"] for m in missing] == ["NaCl", "NaCl2"]


def test_the_verdict_is_stored_on_the_material_and_read_by_the_list_filters_and_optimade(sources, client):
    from catalog.models import Material

    gpaw = ensure_scheme("GPAW-test", "total_energy", display_priority=0)
    set_elemental_references(gpaw, REFS)
    kbr = Structure(Lattice.cubic(6.6), ["K", "Br"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    confirmed = _computed(gpaw, "KBr-candidate", kbr, -1.8)  # no known competitor in K-Br
    provisional = _computed(gpaw, "MgCl2-fluorite", _fluorite("Mg", "Cl"), -1.0)  # MP's MgCl2 not computed
    kbr_material = Material.objects.get(pk=confirmed.material_id)
    mgcl2 = Material.objects.get(pk=provisional.material_id)
    assert (kbr_material.verdict, mgcl2.verdict) == ("confirmed", "provisional")
    assert [m["formula"] for m in mgcl2.verdict_detail["missing"]] == ["MgCl2"]

    rest = client.get("/api/v1/materials/", {"verdict": "confirmed", "is_stable": "true"}).json()
    ids = {row["public_id"] for row in rest["results"]}
    assert kbr_material.public_id in ids and mgcl2.public_id not in ids
    assert client.get("/api/v1/materials/", {"verdict": "maybe"}).status_code == 400

    page = client.get("/materials/", {"verdict": "confirmed"}).content.decode()
    assert kbr_material.public_id in page and mgcl2.public_id not in page

    body = client.get(f"/optimade/v1/structures/{mgcl2.public_id}").json()["data"]["attributes"]
    assert body["_gnomon_verdict"] == "provisional" and body["_gnomon_missing_competitors"] == ["MgCl2"]
    assert body["_gnomon_reference_verdict"] == "MP (Bartel 2020): stable, Ed -1.90 eV/atom"
    found = client.get("/optimade/v1/structures", {"filter": '_gnomon_verdict="confirmed"'}).json()["data"]
    assert kbr_material.public_id in {d["id"] for d in found} and mgcl2.public_id not in {d["id"] for d in found}


def test_the_phase_diagram_lists_the_competitors_its_scheme_lacks(sources, client):
    gpaw = ensure_scheme("GPAW-test", "total_energy")
    set_elemental_references(gpaw, REFS)
    _computed(gpaw, "NaCl-gpaw", None, -2.0, material=sources["NaCl"])
    page = client.get("/phase-diagrams/Cl-K-Na/", {"scheme": "GPAW-test"}).content.decode()
    listed = page[page.index("Competing phases not in this diagram"):]
    assert "not computed in GPAW-test yet" in listed and "KCl" in listed.replace("<sub>", "").replace("</sub>", "")
    assert sources["NaCl"].public_id not in listed  # computed: not missing
