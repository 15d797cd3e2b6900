"""The materials list and detail: MP-style filters, field selection, ordering, cursor pages, structure files."""

from __future__ import annotations

import pytest
from pymatgen.core import Structure

from catalog.models import Material

pytestmark = pytest.mark.django_db
URL = "/api/v1/materials/"


def ids(response) -> set[str]:
    assert response.status_code == 200, response.content
    return {row["formula_reduced"] for row in response.json()["results"]}


def test_list_returns_every_material_with_mp_style_fields(client, catalog_rows):
    rows = client.get(URL).json()["results"]
    assert len(rows) == 5
    nacl = next(r for r in rows if r["formula_reduced"] == "NaCl")
    assert nacl["energy_above_hull"] == 0.0 and nacl["is_stable"] is True
    assert nacl["elements"] == ["Cl", "Na"] and nacl["spacegroup_number"] == 225
    assert "structure" not in nacl  # lists leave the big field out unless asked


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("elements=Ti", {"SrTiO3", "BaTiO3"}),
        ("elements=O&exclude_elements=Ti", {"MgO", "LaFeO3"}),
        ("chemsys=Mg-O", {"MgO"}),
        ("chemsys=O-Mg", {"MgO"}),
        ("chemsys=Ti-*-O", {"SrTiO3", "BaTiO3"}),
        ("chemsys=*-*", {"NaCl", "MgO"}),
        ("formula=SrTiO3", {"SrTiO3"}),
        ("formula=ABO3", {"SrTiO3", "BaTiO3", "LaFeO3"}),
        ("nelements=2", {"NaCl", "MgO"}),
        ("energy_above_hull_max=0.01", {"NaCl", "SrTiO3", "LaFeO3"}),
        ("energy_above_hull_min=0.05&energy_above_hull_max=0.2", {"MgO", "BaTiO3"}),
        ("formation_energy_per_atom_max=-3.2", {"SrTiO3", "BaTiO3"}),
        ("formation_energy_per_atom_min=-3.2", {"NaCl", "MgO"}),
        ("is_stable=true", {"NaCl", "SrTiO3"}),
        ("is_stable=false", {"MgO", "BaTiO3", "LaFeO3"}),
        ("spacegroup_number=221", {"SrTiO3", "BaTiO3", "LaFeO3"}),
        ("crystal_system=cubic", {"NaCl", "MgO", "SrTiO3", "BaTiO3", "LaFeO3"}),
        ("origin=perov", {"NaCl"}),
        ("origin=campaign", {"LaFeO3"}),
        ("campaign=7", {"LaFeO3"}),
        ("campaign=8", set()),
        ("energy_above_hull_min=0.3&energy_above_hull_max=0.1", set()),
    ],
)
def test_filters(client, catalog_rows, query, expected):
    assert ids(client.get(f"{URL}?{query}")) == expected


@pytest.mark.parametrize(
    ("query", "param"),
    [
        ("elements=Xx", "elements"),
        ("elements=Fe;O", "elements"),
        ("exclude_elements=q", "exclude_elements"),
        ("chemsys=Fe--O", "chemsys"),
        ("formula=Fe2O3)", "formula"),
        ("nelements=2.5", "nelements"),
        ("nelements=0", "nelements"),
        ("spacegroup_number=231", "spacegroup_number"),
        ("energy_above_hull_max=abc", "energy_above_hull_max"),
        ("is_stable=maybe", "is_stable"),
        ("crystal_system=cubicish", "crystal_system"),
        ("ordering=density2", "ordering"),
        ("fields=public_id,colour", "fields"),
        ("limit=0", "limit"),
        ("limit=5000", "limit"),
        ("limit=", "limit"),
        ("fields=", "fields"),
        ("origin=", "origin"),
        ("nelements=", "nelements"),
        ("origin=a%20b", "origin"),
    ],
)
def test_bad_parameters_are_400_naming_the_parameter(client, catalog_rows, query, param):
    response = client.get(f"{URL}?{query}")
    assert response.status_code == 400, response.content
    body = response.json()
    assert param in body and body[param][0]


@pytest.mark.parametrize("cursor", ["!!!", "WzEsMiwzXQ", "WyJhIl0", "%12"])
def test_a_cursor_that_is_not_from_a_next_link_is_404(client, catalog_rows, cursor):
    response = client.get(f"{URL}?cursor={cursor}&ordering=-energy_above_hull")
    assert response.status_code == 404 and "next" in response.json()["detail"]


def test_fields_selects_columns(client, catalog_rows):
    rows = client.get(f"{URL}?fields=public_id,energy_above_hull,structure&formula=NaCl").json()["results"]
    assert set(rows[0]) == {"public_id", "energy_above_hull", "structure"}
    assert Structure.from_dict(rows[0]["structure"]).composition.reduced_formula == "NaCl"


def test_ordering_with_nulls_last(client, catalog_rows):
    Material.objects.filter(pk=catalog_rows["mgo"].pk).update(e_above_hull=None)
    ordered = [r["formula_reduced"] for r in client.get(f"{URL}?ordering=-energy_above_hull").json()["results"]]
    assert ordered[0] == "BaTiO3" and ordered[-1] == "MgO"
    ordered = [r["formula_reduced"] for r in client.get(f"{URL}?ordering=energy_above_hull").json()["results"]]
    assert ordered[-1] == "MgO"


@pytest.mark.parametrize("ordering", ["", "-energy_above_hull", "energy_above_hull,-nsites", "-created_at", "formula_reduced"])
def test_cursor_pages_visit_every_row_once(client, catalog_rows, ordering):
    Material.objects.filter(pk=catalog_rows["mgo"].pk).update(e_above_hull=None)
    expected = [r["public_id"] for r in client.get(f"{URL}?ordering={ordering}").json()["results"]] if ordering else None
    url, seen = f"{URL}?limit=2" + (f"&ordering={ordering}" if ordering else ""), []
    while url:
        page = client.get(url).json()
        assert len(page["results"]) <= 2
        seen += [r["public_id"] for r in page["results"]]
        url = page["next"]
    assert len(seen) == len(set(seen)) == 5
    if expected:
        assert seen == expected


def test_list_query_count_is_constant(client, catalog_rows, django_assert_max_num_queries):
    # materials (with the scheme joined) + one prefetch of origins, however many rows
    with django_assert_max_num_queries(2):
        assert client.get(URL).status_code == 200
    with django_assert_max_num_queries(1):
        assert client.get(f"{URL}?fields=public_id,hull_scheme&elements=O").status_code == 200


def test_detail_has_structure_and_files(client, catalog_rows):
    public_id = catalog_rows["srtio3"].public_id
    body = client.get(f"{URL}{public_id}/").json()
    assert Structure.from_dict(body["structure"]).composition.reduced_formula == "SrTiO3"

    cif = client.get(f"{URL}{public_id}/?format=cif")
    assert cif.status_code == 200 and cif["Content-Type"].startswith("chemical/x-cif")
    assert Structure.from_str(cif.content.decode(), fmt="cif").composition.reduced_formula == "SrTiO3"

    poscar = client.get(f"{URL}{public_id}/?format=poscar")
    assert Structure.from_str(poscar.content.decode(), fmt="poscar").composition.reduced_formula == "SrTiO3"

    xyz = client.get(f"{URL}{public_id}/?format=extxyz").content.decode()
    from io import StringIO

    from ase.io import read

    atoms = read(StringIO(xyz), format="extxyz")
    assert atoms.get_chemical_formula(mode="reduce") in ("O3SrTi", "SrTiO3") and atoms.pbc.all()

    by_accept = client.get(f"{URL}{public_id}/", HTTP_ACCEPT="chemical/x-cif")
    assert by_accept["Content-Type"].startswith("chemical/x-cif")


def test_detail_errors(client, catalog_rows):
    missing = client.get(f"{URL}gn-999999999/?format=cif")
    assert missing.status_code == 404 and missing["Content-Type"] == "application/json"
    bad = client.get(f"{URL}{catalog_rows['nacl'].public_id}/?format=pdb")
    assert bad.status_code == 400 and "format" in bad.json()


def test_anonymous_reads_are_throttled(client, catalog_rows, settings):
    settings.GNOMON_API_THROTTLE_RATES = {"anon": "2/min", "user": None, "anon_export": "1/min", "user_export": None}
    from django.core.cache import cache

    cache.clear()
    assert [client.get(URL).status_code for _ in range(3)] == [200, 200, 429]
    assert [client.get("/api/v1/export/").status_code for _ in range(2)] == [200, 429]
    cache.clear()


def test_list_rows_have_the_documented_serializer_shape(client, catalog_rows):
    """Lists are built from .values() rows for speed; they must equal what the documented serializer gives."""
    from rest_framework.renderers import JSONRenderer

    from api.serializers import ALL_MATERIAL_FIELDS, MaterialSerializer

    public_id = catalog_rows["lafeo3"].public_id
    served = client.get(f"{URL}?fields={','.join(ALL_MATERIAL_FIELDS)}&formula=LaFeO3").json()["results"][0]
    documented = MaterialSerializer(Material.objects.get(public_id=public_id)).data
    import json

    assert served == json.loads(JSONRenderer().render(documented))


def test_material_detail_carries_its_stability_verdict(client, db):
    from catalog.services.energies import ensure_scheme, record_energy, set_elemental_references
    from catalog.verdicts import PROVISIONAL
    from tests.factories import make_material, rocksalt

    scheme = ensure_scheme("GPAW-verdict", "total_energy")
    set_elemental_references(scheme, {"Na": -1.3, "Cl": -1.8})
    material = make_material(rocksalt("Na", "Cl", 5.69), source_id="nacl-verdict")
    record_energy(scheme, source_key="nacl", material=material, energy_total=4 * (-1.3 - 1.8) - 8 * 2.0)
    mp = ensure_scheme("MP-bartel2020", "formation_energy", is_dft=True)
    record_energy(mp, source_key="NaCl", composition="NaCl", formation_energy_per_atom=-2.1,
                  data={"published_decomposition_energy": -0.66})
    material.refresh_from_db()
    body = client.get(f"/api/v1/materials/{material.public_id}/").json()
    verdict = body["stability_verdict"]
    assert verdict["scheme"] == "GPAW-verdict" and verdict["on_hull"] and verdict["state"] == PROVISIONAL
    assert verdict["missing"] == [{"formula": "NaCl", "reason": "no structure known (composition only, MP-bartel2020)"}]
    assert verdict["novelty"] == "rediscovered" and verdict["reference"]["decomposition_energy"] == -0.66
