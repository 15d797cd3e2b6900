"""Candidate generation, Django side: catalog parents → Candidate rows, deduplicated, idempotent (real PostgreSQL)."""

from __future__ import annotations

import numpy as np
import pytest
from pymatgen.analysis.structure_matcher import StructureMatcher
from pymatgen.core import Composition, Lattice, Structure

from catalog.models import Material
from discovery.generation import RandomStructureConfig, SubstitutionConfig
from discovery.models import Campaign, CampaignRound, Candidate
from discovery.services.generation import choose_parents, generate_candidates
from tests.factories import make_material

pytestmark = pytest.mark.django_db

ELEMENTS = ["Sr", "Ba", "Ca", "Ti", "Zr", "Sn", "O"]


def _perovskite(a: str, b: str, x: str = "O", lattice: float = 3.9) -> Structure:
    return Structure.from_spacegroup(
        "Pm-3m", Lattice.cubic(lattice), [a, b, x], [[0, 0, 0], [0.5, 0.5, 0.5], [0.5, 0.5, 0]]
    )


def _add_material(structure: Structure, tag: str, e_above_hull: float | None = None) -> Material:
    return make_material(structure, public_id=f"gn-t{tag}", source_id=f"gen-{tag}", e_above_hull=e_above_hull)


@pytest.fixture
def catalog():
    srtio3 = _add_material(_perovskite("Sr", "Ti", lattice=3.905), "1", 0.0)
    batio3 = _add_material(_perovskite("Ba", "Ti", lattice=4.0), "2", 0.0)
    # outside the element space except for O: never a parent
    _add_material(
        Structure.from_spacegroup("Fm-3m", Lattice.cubic(5.69), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]]), "3"
    )
    return {"SrTiO3": srtio3, "BaTiO3": batio3}


def _config(**kw) -> SubstitutionConfig:
    return SubstitutionConfig(max_children_per_parent=None, **kw)


def test_choose_parents_respects_element_space(catalog):
    parents = choose_parents(ELEMENTS, 3)
    assert {p[0] for p in parents} == {catalog["SrTiO3"].pk, catalog["BaTiO3"].pk}


def test_structural_generation_writes_candidates(catalog):
    report = generate_candidates(
        None, elements=ELEMENTS, max_elements=3, pipelines=["structural"], limit=500, substitution=_config(),
        workers=1,
    )
    assert report.n_parents == 2
    assert report.n_created > 10
    rows = list(Candidate.objects.all())
    assert len(rows) == report.n_created == report.n_deduplicated
    sm = StructureMatcher()
    catalog_structures = [m.to_structure() for m in catalog.values()]
    for row in rows:
        s = Structure.from_dict(row.structure)
        assert set(row.chemsys.split("-")) <= set(ELEMENTS)
        assert row.formula_reduced == s.composition.reduced_formula
        assert row.pipeline == "structural" and row.status == "generated"
        assert row.parent_id in {m.pk for m in catalog.values()}
        assert row.recipe["parent"] == row.parent_id and row.recipe["substitutions"]
        assert row.recipe["parent_public_id"].startswith("gn-t")
        assert len(row.fingerprint) == 32
        # deduplicated against the catalog: no candidate is a catalog material again
        assert not any(sm.fit(s, c) for c in catalog_structures)
    # SrTiO3's Sr→Ba child is BaTiO3 (in the catalog), and BaTiO3's Ba→Sr child is SrTiO3: both dropped
    assert report.n_duplicates_known >= 2
    # the two parents give the same children (e.g. CaTiO3 from each): kept once
    assert report.n_duplicates_in_batch > 0
    formulas = [r.formula_reduced for r in rows]
    assert formulas.count("CaTiO3") == 1


def test_generation_is_idempotent_without_round(catalog):
    kwargs = dict(elements=ELEMENTS, max_elements=3, pipelines=["structural"], limit=200, substitution=_config(),
                  workers=1)
    first = generate_candidates(None, **kwargs)
    n = Candidate.objects.count()
    assert n == first.n_created > 0
    second = generate_candidates(None, **kwargs)
    assert second.n_created == 0
    assert Candidate.objects.count() == n
    assert second.n_duplicates_known >= first.n_deduplicated  # the first run's rows are now known


def test_generation_in_a_round_is_idempotent_and_counted(catalog):
    campaign = Campaign.objects.create(name="perovskites", elements=ELEMENTS, max_elements=3, pipelines=["structural"])
    rnd = CampaignRound.objects.create(campaign=campaign, index=0)
    kwargs = dict(elements=ELEMENTS, max_elements=3, pipelines=["structural"], limit=10, substitution=_config(),
                  workers=1)
    report = generate_candidates(rnd, **kwargs)
    rnd.refresh_from_db()
    assert rnd.n_generated == report.n_generated and rnd.n_deduplicated == report.n_deduplicated == 10
    assert rnd.candidates.count() == 10
    assert rnd.generation["timings"]["total"] > 0 and rnd.generation["n_parents"] == report.n_parents
    generate_candidates(rnd, **kwargs)
    assert rnd.candidates.count() >= 10
    fps = list(rnd.candidates.values_list("fingerprint", flat=True))
    assert len(fps) == len(set(fps))
    # a later round of the same campaign does not propose the same crystals again
    rnd2 = CampaignRound.objects.create(campaign=campaign, index=1)
    report2 = generate_candidates(rnd2, **kwargs)
    first_round = [Structure.from_dict(s) for s in rnd.candidates.values_list("structure", flat=True)]
    sm = StructureMatcher()
    for s in rnd2.candidates.values_list("structure", flat=True):
        s = Structure.from_dict(s)
        assert not any(sm.fit(s, t) for t in first_round if t.composition.reduced_formula == s.composition.reduced_formula)
    assert report2.n_duplicates_known > 0


class _OxygenRich:
    def predict(self, formulas):
        return np.array([-Composition(f).get_atomic_fraction("O") for f in formulas])


def test_compositional_generation_records_recipe(catalog):
    report = generate_candidates(
        None,
        elements=["Li", "Mn", "O"],
        max_elements=2,
        pipelines=["compositional"],
        limit=10,
        composition_model=_OxygenRich(),
        compositional_top_n=2,
        structure_config=RandomStructureConfig(n_structures=1, z_values=(1, 2), max_atoms=12),
        rng_seed=3,
        workers=1,
    )
    assert report.n_compositions > 2
    rows = list(Candidate.objects.filter(pipeline="compositional"))
    assert 1 <= len(rows) == report.n_created <= 2
    for row in rows:
        assert row.parent is None
        r = row.recipe
        assert {"composition", "spacegroup", "z", "seed", "rank", "predicted_ef"} <= set(r)
        s = Structure.from_dict(row.structure)
        assert s.composition.reduced_formula == r["composition"] == row.formula_reduced
        assert set(s.composition.as_dict()) <= {"Li", "Mn", "O"}


def test_unknown_pipeline_is_rejected():
    with pytest.raises(ValueError, match="unknown pipelines"):
        generate_candidates(None, elements=["O"], pipelines=["alchemy"])
