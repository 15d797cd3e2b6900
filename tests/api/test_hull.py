"""The hull endpoint: one chemical system, one scheme, every entry's e_above_hull and decomposition."""

from __future__ import annotations

import pytest

from catalog.models import ChemsysHull, EnergyRecord, HullEntry, Scheme

pytestmark = pytest.mark.django_db


@pytest.fixture
def hull(catalog_rows):
    mp = Scheme.objects.create(name="MP2020", kind=Scheme.Kind.FORMATION_ENERGY, display_priority=1)
    fast = Scheme.objects.create(name="GPAW-fast", kind=Scheme.Kind.FORMATION_ENERGY, display_priority=5)
    for scheme, e_mgo in ((mp, -3.0), (fast, -2.9)):
        ChemsysHull.objects.create(scheme=scheme, chemsys="Mg-O", elements=["Mg", "O"], revision=3, n_entries=2,
                                   n_stable=1)
        mgo = EnergyRecord.objects.create(scheme=scheme, material=catalog_rows["mgo"], source_key="mgo",
                                          composition="MgO", elements=["Mg", "O"], chemsys="Mg-O", natoms=2,
                                          formation_energy_per_atom=e_mgo)
        mgo2 = EnergyRecord.objects.create(scheme=scheme, source_key="mgo2", composition="MgO2",
                                           elements=["Mg", "O"], chemsys="Mg-O", natoms=3,
                                           formation_energy_per_atom=-1.5)
        HullEntry.objects.create(energy_record=mgo, scheme=scheme, material=catalog_rows["mgo"], chemsys="Mg-O",
                                 formation_energy_per_atom=e_mgo, e_above_hull=0.0, is_stable=True,
                                 decomposition=[{"formula": "MgO", "fraction": 1.0}])
        HullEntry.objects.create(energy_record=mgo2, scheme=scheme, chemsys="Mg-O", formation_energy_per_atom=-1.5,
                                 e_above_hull=0.3, is_stable=False,
                                 decomposition=[{"formula": "MgO", "fraction": 0.67}, {"formula": "O2", "fraction": 0.33}])
    return mp


def test_hull_of_preferred_scheme(client, hull, catalog_rows, django_assert_max_num_queries):
    with django_assert_max_num_queries(3):
        body = client.get("/api/v1/chemsys/O-Mg/hull/").json()
    assert body["scheme"] == "MP2020" and body["chemsys"] == "Mg-O" and body["revision"] == 3
    stable, unstable = body["entries"]
    assert stable["is_stable"] and stable["energy_above_hull"] == 0.0 and stable["material"] == catalog_rows["mgo"].public_id
    assert unstable["material"] is None and unstable["energy_above_hull"] == 0.3
    assert abs(sum(p["fraction"] for p in unstable["decomposition"]) - 1.0) < 1e-9


def test_hull_of_named_scheme_and_404s(client, hull):
    assert client.get("/api/v1/chemsys/Mg-O/hull/?scheme=GPAW-fast").json()["entries"][0]["formation_energy_per_atom"] == -2.9
    assert client.get("/api/v1/chemsys/Mg-O/hull/?scheme=nope").status_code == 404
    assert client.get("/api/v1/chemsys/Li-O/hull/").status_code == 404
    assert client.get("/api/v1/chemsys/Mg-Qq/hull/").status_code == 404
