"""Competing phases a candidate's verdict needs: queued as DFT jobs, searched for when only a composition is known,
counted against the campaign's budget."""

from __future__ import annotations

import pytest
from pymatgen.core import Composition, Lattice, Structure

from catalog.models import HullEntry, MaterialOrigin
from catalog.services.energies import ensure_scheme, record_energy
from catalog.verdicts import CONFIRMED, SEARCHED_ORIGIN, stability_verdict
from discovery.generation.prototypes import decorate, prototype_structures, species_mapping
from discovery.models import Campaign, CampaignRound, Candidate, DFTJob
from discovery.services import dft
from tests.discovery import dft_support  # noqa: F401 - registers the slow-fake backend
from tests.factories import make_material, rocksalt

pytestmark = pytest.mark.django_db

BACKEND = "slow-fake"


def fluorite(a: str, b: str, lattice: float = 5.5) -> Structure:
    return Structure(Lattice.cubic(lattice), [a] * 4 + [b] * 8,
                     [[0, 0, 0], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]]
                     + [[x, y, z] for x in (0.25, 0.75) for y in (0.25, 0.75) for z in (0.25, 0.75)])


def rutile(a: str, b: str) -> Structure:
    return Structure(Lattice.tetragonal(4.6, 2.96), [a, a, b, b, b, b],
                     [[0, 0, 0], [0.5, 0.5, 0.5], [0.3, 0.3, 0], [0.7, 0.7, 0], [0.8, 0.2, 0.5], [0.2, 0.8, 0.5]])


@pytest.fixture(autouse=True)
def _fake_backend(fake_dft_backend):
    return fake_dft_backend


def _candidate_job(structure: Structure, config: dict | None = None) -> DFTJob:
    elements = sorted(el.symbol for el in structure.composition.elements)
    campaign = Campaign.objects.create(name="competitors", elements=elements, config=config or {})
    rnd = CampaignRound.objects.create(campaign=campaign, index=1)
    candidate = Candidate.objects.create(
        round=rnd, structure=structure.as_dict(), formula_reduced=structure.composition.reduced_formula,
        chemsys="-".join(elements), pipeline="structural", fingerprint="c1", status=Candidate.Status.SELECTED)
    return dft.create_job(candidate=candidate, backend=BACKEND, preset="fast")


# --- the structure search itself (pure pymatgen) ----------------------------------------------------------------------


def test_decorating_a_prototype_puts_the_anion_on_the_anion_site_and_rescales_the_volume():
    assert species_mapping(Composition("CaF2"), Composition("MgCl2")) == {"Ca": "Mg", "F": "Cl"}
    assert species_mapping(Composition("NaCl"), Composition("MgCl2")) is None  # other stoichiometry
    child, mapping = decorate(fluorite("Ca", "F"), Composition("MgCl2"))
    assert child.composition.reduced_formula == "MgCl2" and mapping == {"Ca": "Mg", "F": "Cl"}
    assert child.volume > fluorite("Ca", "F").volume  # Cl is bigger than F


def test_prototype_structures_drop_duplicates_and_the_target_itself():
    found = prototype_structures("MgCl2", [(1, fluorite("Ca", "F")), (2, fluorite("Sr", "F", 5.8)),
                                           (3, rutile("Ti", "O")), (4, rocksalt("Na", "Cl")),
                                           (5, fluorite("Mg", "Cl"))], max_sites=20)
    assert [f.prototype_id for f in found] == [1, 3]  # SrF2 gives the same fluorite; NaCl does not fit; MgCl2 is it
    assert all(f.formula == "MgCl2" for f in found)
    assert prototype_structures("MgCl2", [(1, fluorite("Ca", "F"))], max_sites=6) == []  # 12-atom cell too big


def test_anti_structures_and_known_crystals_are_not_searched_again():
    antifluorite = fluorite("O", "Li")  # Li2O: O on the fcc sites, Li in the tetrahedral holes
    # MgCl2 on it would put Mg on oxygen's site and Cl on lithium's: the chemistry inverted, skipped
    assert prototype_structures("MgCl2", [(1, antifluorite)], max_sites=20) == []
    assert [f.prototype_id for f in prototype_structures("Na2S", [(1, antifluorite)], max_sites=20)] == [1]
    # a decoration that matches a crystal of the formula the catalog already has (or computes) is no search
    known = decorate(fluorite("Ca", "F"), Composition("MgCl2"))[0]
    found = prototype_structures("MgCl2", [(1, fluorite("Ca", "F")), (3, rutile("Ti", "O"))], max_sites=20,
                                 known=[known])
    assert [f.prototype_id for f in found] == [3]


# --- competitor jobs --------------------------------------------------------------------------------------------------


def test_a_known_competitor_is_queued_for_the_candidate_s_campaign(_fake_backend):
    seed = ensure_scheme("seed", "formation_energy", is_dft=True)
    nacl = make_material(rocksalt("Na", "Cl", 5.69), source_id="NaCl-seed")
    record_energy(seed, source_key="NaCl", material=nacl, formation_energy_per_atom=-2.0)
    cscl = Structure(Lattice.cubic(3.3), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    job = _candidate_job(cscl)
    assert dft.execute_job(job.pk).action == "succeeded"
    competitor = DFTJob.objects.get(material=nacl)
    assert competitor.pk in _fake_backend and competitor.state == DFTJob.State.QUEUED
    assert competitor.reference_for_id == job.pk
    assert competitor.competitor_for_id == job.candidate.round.campaign_id
    dft.execute_job(competitor.pk)  # now the candidate's verdict is complete
    entry = HullEntry.objects.get(energy_record=DFTJob.objects.get(pk=job.pk).energy_record)
    assert stability_verdict(entry).state == CONFIRMED


def test_a_composition_only_competitor_gets_a_structure_search_recorded_as_searched(_fake_backend, settings):
    settings.GNOMON_DFT_SEARCHED_STRUCTURES = 2
    mp = ensure_scheme("MP-bartel2020", "formation_energy", is_dft=True)
    record_energy(mp, source_key="MgCl2", composition="MgCl2", formation_energy_per_atom=-2.2,
                  data={"published_decomposition_energy": -1.9})
    make_material(fluorite("Ca", "F"), source_id="CaF2")  # known AB2 crystals: the prototypes
    make_material(rutile("Ti", "O"), source_id="TiO2")
    candidate = Structure(Lattice.cubic(5.0), ["Mg", "Cl", "Cl", "Cl"], [[0, 0, 0], [0.5, 0.5, 0], [0.5, 0, 0.5],
                                                                        [0, 0.5, 0.5]])  # MgCl3, a bad guess
    job = _candidate_job(candidate)
    dft.execute_job(job.pk)
    searched = list(DFTJob.objects.filter(searched_for="MgCl2").order_by("pk"))
    assert len(searched) == 2 and all(j.pk in _fake_backend for j in searched)
    assert {Structure.from_dict(j.input_structure).composition.reduced_formula for j in searched} == {"MgCl2"}
    # a second job of the system does not search again
    dft.execute_job(dft.create_job(structure=candidate.copy(), backend=BACKEND, preset="fast").pk)
    assert DFTJob.objects.filter(searched_for="MgCl2").count() == 2
    dft.execute_job(searched[0].pk)
    done = DFTJob.objects.get(pk=searched[0].pk)
    origin = MaterialOrigin.objects.get(material=done.material)
    assert origin.dataset == SEARCHED_ORIGIN and origin.details["searched_for"] == "MgCl2"
    entry = HullEntry.objects.get(energy_record=DFTJob.objects.get(pk=job.pk).energy_record)
    verdict = stability_verdict(entry)
    assert verdict.state == CONFIRMED and verdict.searched == ["MgCl2"]  # known by composition only: searched


def test_competitor_jobs_stop_at_the_campaign_s_budget(_fake_backend):
    seed = ensure_scheme("seed", "formation_energy", is_dft=True)
    for tag, structure, ef in (("NaCl", rocksalt("Na", "Cl", 5.69), -2.0), ("NaCl2", fluorite("Na", "Cl"), -1.34)):
        record_energy(seed, source_key=tag, material=make_material(structure, source_id=tag),
                      formation_energy_per_atom=ef)
    cscl = Structure(Lattice.cubic(3.3), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    job = _candidate_job(cscl, config={"max_competitor_jobs": 1})
    dft.execute_job(job.pk)
    queued = DFTJob.objects.filter(competitor_for=job.candidate.round.campaign_id)
    assert queued.count() == 1  # two competitors, a budget of one: the other stays missing (provisional verdict)
    assert dft.competitor_budget_left(job.candidate.round.campaign) == 0
