"""OPTIMADE endpoints: status codes, response shapes, pagination; the official validator against a live server."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from optimade.models import EntryInfoResponse, InfoResponse, StructureResponseMany, StructureResponseOne

pytestmark = pytest.mark.django_db
BASE = "/optimade/v1"


def test_versions_only_at_the_unversioned_base(client):
    response = client.get("/optimade/versions")
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; header=present"
    assert response.content.decode().split() == ["version", "1"]
    assert client.get(f"{BASE}/versions").status_code == 404


@pytest.mark.parametrize("path", ["/optimade/v2/info", "/optimade/v123123/info", "/optimade/v0.9/structures"])
def test_unsupported_versions_are_553(client, path):
    response = client.get(path)
    assert response.status_code == 553 and response.json()["errors"][0]["status"] == "553"


@pytest.mark.parametrize("prefix", ["/optimade/v1", "/optimade/v1.2", "/optimade/v1.2.0"])
def test_info_validates_against_the_models(client, prefix):
    info = client.get(f"{prefix}/info")
    assert info["Content-Type"] == "application/vnd.api+json"
    InfoResponse(**info.json())
    entry_info = client.get(f"{prefix}/info/structures").json()
    EntryInfoResponse(**entry_info)
    assert {"_gnomon_e_above_hull", "_gnomon_formation_energy_per_atom", "_gnomon_scheme", "_gnomon_origin",
            "_gnomon_campaign"} <= set(entry_info["data"]["properties"])
    assert client.get(f"{prefix}/info/calculations").status_code == 404


def test_structures_list_and_single(client, catalog_rows):
    body = client.get(f"{BASE}/structures?page_limit=2&sort=-nsites").json()
    StructureResponseMany(**body)
    assert body["meta"]["data_returned"] == 5 and body["meta"]["more_data_available"] is True
    assert [d["attributes"]["nsites"] for d in body["data"]] == [8, 8]
    assert "page_offset=2" in body["links"]["next"]
    last = client.get(body["links"]["next"].replace("http://testserver", "") + "&page_offset=4").json()
    assert len(last["data"]) == 1 and last["meta"]["more_data_available"] is False

    srtio3 = catalog_rows["srtio3"]
    one = client.get(f"{BASE}/structures/{srtio3.public_id}").json()
    StructureResponseOne(**one)
    attributes = one["data"]["attributes"]
    assert attributes["chemical_formula_reduced"] == "O3SrTi"
    assert attributes["chemical_formula_anonymous"] == "A3BC"
    assert attributes["elements_ratios"] == pytest.approx([0.6, 0.2, 0.2])
    assert attributes["_gnomon_e_above_hull"] == 0.0 and attributes["_gnomon_origin"] == ["test"]
    assert attributes["nperiodic_dimensions"] == 3 and attributes["dimension_types"] == [1, 1, 1]
    assert len(attributes["cartesian_site_positions"]) == attributes["nsites"] == 5


def test_response_fields(client, catalog_rows):
    body = client.get(f"{BASE}/structures?response_fields=nsites,_gnomon_campaign&filter=_gnomon_campaign=7").json()
    assert body["data"][0]["attributes"] == {"nsites": 5, "_gnomon_campaign": 7}


@pytest.mark.parametrize(
    ("query", "status"),
    [
        ("filter=nsites <", 400),
        ("filter=crazyfield = 2", 400),
        ('filter=species_at_sites HAS "Na"', 501),
        ("page_limit=0", 400),
        ("page_limit=abc", 400),
        ("page_limit=100000", 403),
        ("sort=species", 400),
        ("response_format=xml", 400),
        ("page_cursor=abc", 501),
    ],
)
def test_error_status_codes(client, catalog_rows, query, status):
    response = client.get(f"{BASE}/structures?{query}")
    assert response.status_code == status
    error = response.json()["errors"][0]
    assert error["status"] == str(status) and error["detail"]


def test_missing_entry_and_endpoint(client):
    assert client.get(f"{BASE}/structures/gn-424242").status_code == 404
    assert client.get(f"{BASE}/references/x").status_code == 404
    assert client.get(f"{BASE}/calculations").status_code == 404
    assert client.post(f"{BASE}/structures").status_code == 405


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_official_validator_reports_zero_failures(live_server, catalog_rows):
    validator = Path(sys.executable).with_name("optimade-validator")
    result = subprocess.run(
        [str(validator), f"{live_server.url}/optimade/v1"], capture_output=True, text=True, timeout=600, check=False
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "FAILURES" not in output.replace("OPTIONAL TEST FAILURES", ""), output


def test_structures_query_count_is_constant(client, catalog_rows, django_assert_max_num_queries):
    # filtered count, total count, the page, the page's origins
    with django_assert_max_num_queries(4):
        body = client.get(f'{BASE}/structures?filter=elements HAS "O"&page_limit=3').json()
    assert len(body["data"]) == 3 and body["meta"]["data_returned"] == 4 and body["meta"]["data_available"] == 5


def test_every_served_entry_is_valid_for_formulas_pymatgen_leaves_unreduced(client):
    """Peroxides (pymatgen: Li2O2, Na2O2, H2O2), a superoxide, mercurous chloride and a plain oxide, each checked
    with optimade-python-tools' own model; the reduced formula divides by the GCD, and a filter on it finds them."""
    from optimade.models import StructureResource
    from pymatgen.core import Lattice, Structure

    from tests.factories import make_material

    cell = Lattice.cubic(6.0)
    for species in (["Li", "Li", "O", "O"], ["Na", "Na", "O", "O"], ["H", "H", "O", "O"], ["K", "O", "O"],
                    ["Hg", "Hg", "Cl", "Cl"], ["Li", "Li", "O"]):
        coords = [[i / len(species), 0.3 * (i % 2), 0.5 * (i % 3) / 2] for i in range(len(species))]
        make_material(Structure(cell, species, coords))
    data = client.get(f"{BASE}/structures", {"page_limit": 100}).json()["data"]
    for entry in data:
        StructureResource(**entry)  # raises on an invalid entry
    reduced = sorted(e["attributes"]["chemical_formula_reduced"] for e in data)
    assert reduced == ["ClHg", "HO", "KO2", "Li2O", "LiO", "NaO"]
    found = client.get(f"{BASE}/structures", {"filter": 'chemical_formula_reduced="LiO"'}).json()["data"]
    assert [e["attributes"]["chemical_formula_reduced"] for e in found] == ["LiO"]
