"""Pages render the right content with a bounded number of queries; HTMX requests get partials."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.test.utils import CaptureQueriesContext
from pymatgen.core import Lattice, Structure

from discovery.models import Campaign
from tests.factories import make_material, perovskite

pytestmark = pytest.mark.django_db
HX = {"HTTP_HX_REQUEST": "true"}


def ids_in(html: str) -> list[str]:
    return re.findall(r'<td class="id"><a href="/materials/(gn-\d+)/"', html)


def test_home_counts_chart_and_latest(client, campaign, django_assert_max_num_queries):
    with django_assert_max_num_queries(6):
        response = client.get("/")
    html = response.content.decode()
    assert response.status_code == 200
    assert re.search(r"Materials</dt><dd><a[^>]*>8<", html)
    assert re.search(r"Stable</dt><dd><a[^>]*>7<", html)
    assert re.search(r"Discovered by campaigns</dt><dd><a[^>]*>1<", html)
    assert 'id="stable-chart-data"' in html
    assert "gn-000008" in html  # the campaign's discovery
    assert "Sr-Ti-O demo" in html


def test_home_on_an_empty_catalog(client, db):
    response = client.get("/")
    assert response.status_code == 200
    assert b"No stable materials yet" in response.content


def test_material_list_full_page_and_partial(client, catalog, django_assert_max_num_queries):
    with django_assert_max_num_queries(4):
        full = client.get("/materials/", {"elements": "Ti"})
    html = full.content.decode()
    assert 'class="ptable js-ptable"' in html and "<html" in html
    assert 'data-el="Ti"' in html and "is-included" in html
    assert sorted(ids_in(html)) == ["gn-000002", "gn-000004", "gn-000005", "gn-000008"]
    with django_assert_max_num_queries(2):
        partial = client.get("/materials/", {"elements": "Ti", "exclude_elements": "Sr"}, **HX)
    html = partial.content.decode()
    assert "<html" not in html and "ptable" not in html
    assert sorted(ids_in(html)) == ["gn-000002", "gn-000004"]
    assert 'data-ordering="-e_above_hull"' in html  # sort headers drive the filter form (all state in one request)


def test_history_restore_gets_the_full_page(client, catalog):
    response = client.get("/materials/", {"elements": "Ti"}, HTTP_HX_REQUEST="true", HTTP_HX_HISTORY_RESTORE_REQUEST="true")
    assert b"<html" in response.content


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"q": "O-Sr-Ti"}, {"gn-000005", "gn-000008"}),
        ({"q": "Ti-*"}, {"gn-000004"}),
        ({"q": "SrTiO3"}, {"gn-000005", "gn-000008"}),
        ({"q": "ABO3"}, {"gn-000005", "gn-000008"}),
        ({"q": "AB"}, {"gn-000003", "gn-000006", "gn-000007"}),
        ({"only_elements": "Sr,O"}, {"gn-000001", "gn-000003"}),
        ({"nelements": "1"}, {"gn-000001", "gn-000002"}),
        ({"e_above_hull_min": "0.05"}, {"gn-000008"}),
        ({"is_stable": "1", "q": "SrTiO3"}, {"gn-000005"}),
        ({"spacegroup": "Fm-3m"}, {"gn-000001", "gn-000003", "gn-000006", "gn-000007"}),
        ({"spacegroup": "136"}, {"gn-000004"}),
        ({"crystal_system": "tetragonal"}, {"gn-000004"}),
        ({"origin": "mp"}, {"gn-000006", "gn-000007"}),
    ],
)
def test_filters(client, catalog, params, expected):
    response = client.get("/materials/", params, **HX)
    assert set(ids_in(response.content.decode())) == expected


def test_origin_campaign_filter(client, campaign):
    response = client.get("/materials/", {"origin": "campaign"}, **HX)
    assert ids_in(response.content.decode()) == ["gn-000008"]
    response = client.get("/materials/", {"campaign": campaign["campaign"].pk}, **HX)
    assert ids_in(response.content.decode()) == ["gn-000008"]


@pytest.mark.parametrize(
    ("params", "param"),
    [
        ({"elements": "Xx"}, "elements"),
        ({"q": "Li-Li"}, "chemsys"),
        ({"q": "not a formula"}, "formula"),
        ({"e_above_hull_min": "abc"}, "e_above_hull_min"),
        ({"e_above_hull_min": "0.5", "e_above_hull_max": "0.1"}, "e_above_hull_min"),
        ({"spacegroup": "Zz99"}, "spacegroup"),
        ({"ordering": "password"}, "ordering"),
        ({"crystal_system": "cubical"}, "crystal_system"),
    ],
)
def test_invalid_filters_are_reported_not_500(client, catalog, params, param):
    for extra in ({}, HX):
        response = client.get("/materials/", params, **extra)
        assert response.status_code == 200
        assert f"<strong>{param}</strong>" in response.content.decode()


def test_sorting_and_pagination_without_count(client, catalog):
    base = perovskite("Ba", "Ti")
    for i in range(30):
        cell = Structure(Lattice.cubic(3.9 + i * 0.01), base.species, base.frac_coords)
        make_material(cell, e_above_hull=0.2 + i / 100, is_stable=False)
    with CaptureQueriesContext(connection) as ctx:
        page1 = client.get("/materials/", {"ordering": "-e_above_hull", "page_size": "25"}, **HX).content.decode()
    assert not any("COUNT(" in q["sql"].upper() for q in ctx.captured_queries)
    assert any("LIMIT 26" in q["sql"] for q in ctx.captured_queries)  # page_size + 1 tells whether a next page exists
    assert len(ids_in(page1)) == 25 and 'rel="next"' in page1 and 'rel="prev"' not in page1
    assert 'aria-sort="descending"' in page1
    page2 = client.get("/materials/", {"ordering": "-e_above_hull", "page": "2"}, **HX).content.decode()
    assert len(ids_in(page2)) == 38 - 25 and 'rel="next"' not in page2 and 'rel="prev"' in page2
    assert not set(ids_in(page1)) & set(ids_in(page2))
    # links keep the filters and the sort
    assert "ordering=-e_above_hull" in re.search(r'rel="prev" href="([^"]+)"', page2).group(1)
    by_formula = ids_in(client.get("/materials/", {"ordering": "formula_reduced", "q": "AB"}, **HX).content.decode())
    assert by_formula == ["gn-000007", "gn-000006", "gn-000003"]  # MgO, NaCl, SrO


def test_material_page(client, campaign, django_assert_max_num_queries):
    with django_assert_max_num_queries(13):  # 3 for the verdict: competitors, the scheme's energies, MP's row
        response = client.get("/materials/gn-000008/")
    html = response.content.decode()
    assert response.status_code == 200
    assert "SrTiO<sub>3</sub>" in html
    assert 'id="viewer-cif"' in html and "_cell_length_a" in html
    assert "vendor/3Dmol-min.js" in html and "vendor/plotly.min.js" in html
    assert "/phase-diagrams/O-Sr-Ti/?scheme=TEST-PBE" in html  # the phase diagram loads with HTMX
    assert 'href="/materials/gn-000005/"' in html  # decomposition product and parent link
    assert "Sr-Ti-O demo" in html and "SCFNotConverged" not in html  # only this material's job in its trail
    assert "gpaw/fast" in html and "&#x27;ecut&#x27;: 400" in html
    assert 'data-testid="verdict"' in html and 'data-testid="reference-verdict"' in html
    for fmt in ("cif", "poscar", "json", "xyz"):
        assert f"/materials/gn-000008/download/{fmt}/" in html


def test_material_page_shows_dataset_stability_value_separately(client, catalog):
    html = client.get("/materials/gn-000005/").content.decode()
    assert "dataset stability value: <strong>0.123</strong>" in html
    assert "not an energy above a hull" in html


def test_material_page_404(client, db):
    assert client.get("/materials/gn-999999/").status_code == 404


@pytest.mark.parametrize(("fmt", "content_type", "marker"), [
    ("cif", "chemical/x-cif", b"_cell_length_a"),
    ("poscar", "text/plain", b"direct"),
    ("json", "application/json", b'"@class": "Structure"'),
    ("xyz", "chemical/x-xyz", b'Lattice="'),
])
def test_downloads(client, catalog, fmt, content_type, marker, django_assert_max_num_queries):
    with django_assert_max_num_queries(1):
        response = client.get(f"/materials/gn-000005/download/{fmt}/")
    assert response.status_code == 200
    assert response["Content-Type"] == content_type
    assert "attachment" in response["Content-Disposition"] and "gn-000005_SrTiO3" in response["Content-Disposition"]
    assert marker in response.content


def test_download_unknown_format(client, catalog):
    assert client.get("/materials/gn-000005/download/pdb/").status_code == 404


@pytest.mark.parametrize("chemsys", ["O-Sr", "O-Sr-Ti"])
def test_phase_diagram_page(client, catalog, chemsys, django_assert_max_num_queries):
    with django_assert_max_num_queries(4):
        response = client.get(f"/phase-diagrams/{chemsys}/")
    html = response.content.decode()
    assert response.status_code == 200
    assert 'id="pd-plot-data"' in html
    assert "SrO" in html


def test_phase_diagram_quaternary_and_partial(client, catalog):
    response = client.get("/phase-diagrams/Li-O-Sr-Ti/", {"highlight": "gn-000005"}, **HX)
    html = response.content.decode()
    assert "<html" not in html and 'id="pd-plot-data"' in html
    assert 'class="highlight"' in html
    assert '"type":"scatter3d"' in html.replace(" ", "") or '"scatter3d"' in html


def test_phase_diagram_canonical_url_and_bad_chemsys(client, catalog):
    response = client.get("/phase-diagrams/Ti-O-Sr/")
    assert response.status_code == 302 and response["Location"] == "/phase-diagrams/O-Sr-Ti/"
    assert client.get("/phase-diagrams/Xx-O/").status_code == 404


def test_phase_diagram_without_hulls(client, catalog):
    html = client.get("/phase-diagrams/Ar-Kr/").content.decode()
    assert "No hull has been computed" in html


def test_campaign_list_and_dashboard(client, campaign, django_assert_max_num_queries):
    with django_assert_max_num_queries(2):
        html = client.get("/campaigns/").content.decode()
    assert "Sr-Ti-O demo" in html and "running" in html
    pk = campaign["campaign"].pk
    with django_assert_max_num_queries(5):
        html = client.get(f"/campaigns/{pk}/").content.decode()
    assert 'hx-trigger="every 3s"' in html
    assert 'id="chart-hit-rate-data"' in html and 'id="chart-mae-data"' in html and 'id="chart-new-stable-data"' in html
    assert "SCFNotConverged" in html and "SCF did not converge" in html
    assert "Launch" not in html  # staff only
    with django_assert_max_num_queries(4):
        partial = client.get(f"/campaigns/{pk}/progress/").content.decode()
    assert "<html" not in partial and 'data-testid="n-dft-done">12<' in partial


def test_finished_campaign_stops_polling(client, campaign):
    Campaign.objects.filter(pk=campaign["campaign"].pk).update(status=Campaign.Status.COMPLETED)
    html = client.get(f"/campaigns/{campaign['campaign'].pk}/").content.decode()
    assert "every 3s" not in html


@pytest.fixture
def staff_client(client, db):
    user = get_user_model().objects.create_user("staff", password="pw-123456", is_staff=True)
    client.force_login(user)
    return client


def test_campaign_actions_are_staff_only(client, campaign):
    pk = campaign["campaign"].pk
    assert client.post(f"/campaigns/{pk}/cancel/").status_code == 403
    user = get_user_model().objects.create_user("plain", password="pw-123456")
    client.force_login(user)
    assert client.post(f"/campaigns/{pk}/cancel/").status_code == 403
    assert client.get(f"/campaigns/{pk}/cancel/").status_code == 405
    assert Campaign.objects.get(pk=pk).status == Campaign.Status.RUNNING


def test_staff_cancels_and_relaunches(staff_client, campaign):
    pk = campaign["campaign"].pk
    html = staff_client.get(f"/campaigns/{pk}/").content.decode()
    assert "Cancel" in html and "confirm(" in html and "csrfmiddlewaretoken" in html
    assert 'data-testid="campaign-launch"' not in html  # a running campaign offers no launch
    response = staff_client.post(f"/campaigns/{pk}/cancel/", follow=True)
    assert Campaign.objects.get(pk=pk).status == Campaign.Status.CANCELLED
    assert b"cancel requested" in response.content
    response = staff_client.post(f"/campaigns/{pk}/cancel/", follow=True)
    assert b"is cancelled; this needs one of" in response.content


def test_failed_campaign_shows_where_it_failed_and_offers_a_retry(staff_client, campaign, django_capture_on_commit_callbacks):
    pk = campaign["campaign"].pk
    Campaign.objects.filter(pk=pk).update(status=Campaign.Status.FAILED,
                                          error="round 0, stage generating: GenerationFailed: chunk 2 failed 3 times")
    html = staff_client.get(f"/campaigns/{pk}/").content.decode()
    assert "Failed at round 0, stage generating: GenerationFailed" in html
    assert "Retry the failed stage" in html and "resume_campaign" in html
    with django_capture_on_commit_callbacks(execute=False):
        staff_client.post(f"/campaigns/{pk}/launch/", follow=True)
    retried = Campaign.objects.get(pk=pk)
    assert retried.status == Campaign.Status.QUEUED and retried.error == ""


def test_csrf_is_enforced(campaign, db):
    from django.test import Client

    user = get_user_model().objects.create_user("staff2", password="pw-123456", is_staff=True)
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    assert client.post(f"/campaigns/{campaign['campaign'].pk}/cancel/").status_code == 403
    assert Campaign.objects.get(pk=campaign["campaign"].pk).status == Campaign.Status.RUNNING


def test_dashboard_lists_the_competing_phases_its_jobs_queued(client, campaign, catalog):
    from discovery.models import DFTJob

    tio2, nacl = catalog["materials"]["TiO2"], catalog["materials"]["NaCl"]
    DFTJob.objects.create(material=tio2, input_structure=tio2.structure, state=DFTJob.State.QUEUED,
                          settings={"label": "gn-000007 competing phase TiO2"}, reference_for=campaign["job"])
    DFTJob.objects.create(material=nacl, input_structure=nacl.structure, state=DFTJob.State.QUEUED,
                          settings={"label": "another campaign's phase"})  # queued for nobody's job
    html = client.get(f"/campaigns/{campaign['campaign'].pk}/progress/").content.decode()
    assert "gn-000007 competing phase TiO2" in html and "another campaign" not in html
