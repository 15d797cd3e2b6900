"""The UI in a real browser: Debian's Chromium driven by Playwright against pytest-django's live server.

Screenshots go to test-output/ (gitignored).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from pymatgen.core import Lattice, Structure

from discovery.models import CampaignRound
from tests.factories import make_material, perovskite
from tests.frontend.conftest import build_campaign, build_catalog

pytestmark = [pytest.mark.browser]
CHROMIUM = "/usr/bin/chromium"
SHOTS = Path(__file__).resolve().parents[2] / "test-output" / "screenshots"

if not Path(CHROMIUM).exists():
    pytest.skip(f"{CHROMIUM} not installed (scripts/setup.sh installs it)", allow_module_level=True)
expect = pytest.importorskip("playwright.sync_api").expect


@pytest.fixture(autouse=True)
def _allow_orm_beside_playwrights_loop():
    """Playwright's sync API runs an event loop in the test thread from the first browser test to the end of the
    session, and Django refuses ORM calls from a thread with a running loop unless this is set. It is set here, not at
    import, and the browser tests run last (see conftest.py), so no other test (e.g. ``check --deploy``) sees it."""
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    return {
        **browser_type_launch_args,
        "executable_path": CHROMIUM,
        "args": [
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--enable-unsafe-swiftshader",  # software WebGL for the 3D viewer
        ],
    }


@pytest.fixture(scope="session")
def browser_context_args(browser_context_args):
    return {**browser_context_args, "viewport": {"width": 1400, "height": 1000}}


@pytest.fixture
def live_catalog(transactional_db):
    catalog = build_catalog()
    catalog.update(build_campaign(catalog))
    return catalog


def shot(page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def result_rows(page):
    return page.locator("#results tbody tr")


def test_home_page(page, live_server, live_catalog):
    page.goto(live_server.url + "/")
    expect(page.locator(".stats")).to_contain_text("Materials")
    expect(page.locator("#stable-chart .main-svg").first).to_be_visible()
    expect(page.locator(".material-list")).to_contain_text("SrTiO")
    shot(page, "home")


def test_periodic_table_narrows_the_list(page, live_server, live_catalog):
    errors = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(live_server.url + "/materials/")
    expect(result_rows(page)).to_have_count(8)

    page.get_by_role("button", name="Titanium (Ti)").click()
    expect(result_rows(page)).to_have_count(4)
    expect(page).to_have_url(re.compile(r"elements=Ti"))
    for formula in page.locator("#results tbody td.formula").all_inner_texts():
        assert "Ti" in formula

    page.get_by_role("button", name="Titanium (Ti): required").click()  # second click excludes
    expect(result_rows(page)).to_have_count(4)
    expect(page).to_have_url(re.compile(r"exclude_elements=Ti"))
    assert all("Ti" not in f for f in page.locator("#results tbody td.formula").all_inner_texts())

    # keyboard: from Ti (col 4) ArrowLeft reaches Sc, ArrowUp reaches Mg... require Oxygen by keyboard
    oxygen = page.get_by_role("button", name="Oxygen (O)")
    oxygen.focus()
    page.keyboard.press("ArrowRight")
    expect(page.get_by_role("button", name="Fluorine (F)")).to_be_focused()
    page.keyboard.press("ArrowLeft")
    page.keyboard.press("Enter")
    expect(result_rows(page)).to_have_count(2)  # SrO and MgO: with O, without Ti
    shot(page, "materials-filtered")

    page.go_back()  # back to "excludes Ti"
    expect(page).to_have_url(re.compile(r"^(?!.*[?&]elements=O).*exclude_elements=Ti(&|$)"))
    expect(result_rows(page)).to_have_count(4)
    expect(page.get_by_role("button", name="Titanium (Ti): excluded")).to_be_visible()
    assert not errors, errors


def test_search_sort_and_paginate(page, live_server, live_catalog):
    page.goto(live_server.url + "/materials/")
    page.get_by_label("Formula or chemical system").fill("O-Sr-Ti")
    expect(result_rows(page)).to_have_count(2)
    expect(page).to_have_url(re.compile(r"q=O-Sr-Ti"))
    page.get_by_role("link", name="E above hull").click()
    expect(page).to_have_url(re.compile(r"ordering=-e_above_hull"))
    expect(result_rows(page).first).to_contain_text("gn-000008")
    page.get_by_label("Formula or chemical system").fill("ABO3")
    expect(result_rows(page)).to_have_count(2)
    expect(page).to_have_url(re.compile(r"q=ABO3.*ordering=-e_above_hull"))  # the sort survives a filter change
    page.get_by_label("Formula or chemical system").fill("")
    expect(result_rows(page)).to_have_count(8)
    expect(result_rows(page).first).to_contain_text("gn-000008")
    shot(page, "materials-sorted")

    base = perovskite("Ba", "Ti")
    for i in range(20):
        make_material(Structure(Lattice.cubic(3.9 + i * 0.01), base.species, base.frac_coords), e_above_hull=0.01 * i)
    page.get_by_label("Stable only").check()
    page.get_by_label("Stable only").uncheck()  # refreshes the list: 28 rows now
    expect(result_rows(page)).to_have_count(25)
    page.get_by_role("link", name="Next →").click()
    expect(result_rows(page)).to_have_count(3)
    expect(page).to_have_url(re.compile(r"page=2"))
    expect(page).to_have_url(re.compile(r"ordering=-e_above_hull"))
    page.get_by_label("Per page").select_option("50")  # a filter change goes back to page 1
    expect(result_rows(page)).to_have_count(28)
    expect(page).not_to_have_url(re.compile(r"page=2"))
    page.go_back()
    expect(result_rows(page)).to_have_count(3)


def test_material_page_shows_viewer_and_phase_diagram(page, live_server, live_catalog):
    errors = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(live_server.url + "/materials/gn-000005/")
    expect(page.locator("#viewer canvas")).to_have_count(1)
    expect(page.locator("#pd-plot .main-svg").first).to_be_visible(timeout=20_000)
    expect(page.locator(".phase-diagram table")).to_contain_text("TiO")
    expect(page.get_by_text("dataset stability value")).to_be_visible()
    shot(page, "material-srtio3")
    page.locator("#viewer").screenshot(path=str(SHOTS / "viewer.png"))
    page.get_by_role("button", name="2×2×2 cell").click()
    expect(page.get_by_role("button", name="2×2×2 cell")).to_have_attribute("aria-pressed", "true")
    page.locator("#viewer").screenshot(path=str(SHOTS / "viewer-supercell.png"))
    assert not errors, errors

    page.goto(live_server.url + "/materials/gn-000008/")
    expect(page.locator(".trail")).to_contain_text("Sr-Ti-O demo")
    expect(page.locator(".decomposition a")).to_have_attribute("href", "/materials/gn-000005/")
    shot(page, "material-discovered")


def test_phase_diagram_page(page, live_server, live_catalog):
    page.goto(live_server.url + "/phase-diagrams/O-Sr-Ti/")
    expect(page.locator("#pd-plot .main-svg").first).to_be_visible(timeout=20_000)
    shot(page, "phase-diagram-ternary")
    page.goto(live_server.url + "/phase-diagrams/O-Sr/")
    expect(page.locator("#pd-plot .main-svg").first).to_be_visible(timeout=20_000)
    shot(page, "phase-diagram-binary")
    # a click on a point opens its material (the point's data as plotly hands it to plotly_click)
    page.evaluate(
        """() => { const el = document.getElementById('pd-plot');
                   const i = el.data.findIndex(t => t.name === 'Stable');
                   el.emit('plotly_click', {points: [{curveNumber: i, pointNumber: 0, hovertext: el.data[i].hovertext[0]}]}); }"""
    )
    expect(page).to_have_url(re.compile(r"/materials/gn-000003/$"))


def test_campaign_progress_updates_live(page, live_server, live_catalog):
    campaign = live_catalog["campaign"]
    page.goto(f"{live_server.url}/campaigns/{campaign.pk}/")
    expect(page.get_by_test_id("n-dft-done")).to_have_text("12")
    expect(page.locator("#chart-hit-rate .main-svg").first).to_be_visible()
    shot(page, "campaign-before")
    CampaignRound.objects.filter(campaign=campaign, index=2).update(n_dft_done=7, stage="fold")
    expect(page.get_by_test_id("n-dft-done")).to_have_text("16", timeout=10_000)
    expect(page.get_by_test_id("round-stage")).to_have_text("fold")
    shot(page, "campaign-after")
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(live_server.url + "/materials/")
    shot(page, "materials-phone")


def test_restrict_to_the_picked_elements(page, live_server, live_catalog):
    page.goto(live_server.url + "/materials/")
    page.get_by_role("button", name="Strontium (Sr)").click()
    page.get_by_role("button", name="Oxygen (O)").click()
    expect(result_rows(page)).to_have_count(3)  # SrO, SrTiO3 twice
    page.get_by_label("Only the required elements (no others)").check()
    expect(page).to_have_url(re.compile(r"only_elements=O%2CSr|only_elements=O,Sr"))
    expect(result_rows(page)).to_have_count(2)  # Sr and SrO: nothing but Sr and O
    expect(page.locator(".js-selection")).to_have_text("Only O, Sr")
    page.reload()  # the URL alone restores the state
    expect(page.get_by_label("Only the required elements (no others)")).to_be_checked()
    expect(page.get_by_role("button", name="Strontium (Sr): required")).to_have_attribute("aria-pressed", "true")
    expect(result_rows(page)).to_have_count(2)
    page.get_by_role("button", name="Clear elements").click()
    expect(result_rows(page)).to_have_count(8)
