from __future__ import annotations

import functools

import pytest
from django.test import override_settings
from rest_framework.test import APIClient

from catalog.models import MaterialOrigin
from tests.factories import make_material
from tests.factories import perovskite as _perovskite
from tests.factories import rocksalt as _rocksalt


@functools.cache
def _cached(builder, *args):
    return builder(*args)


def rocksalt(*args):
    """Structure.from_spacegroup costs ~1 s for Fm-3m; build each prototype once per session."""
    return _cached(_rocksalt, *args).copy()


def perovskite(*args):
    return _cached(_perovskite, *args).copy()


UNTHROTTLED = {"anon": None, "user": None, "anon_export": None, "user_export": None}


@pytest.fixture(autouse=True)
def _no_throttling():
    with override_settings(GNOMON_API_THROTTLE_RATES=UNTHROTTLED):
        yield


@pytest.fixture
def client() -> APIClient:
    return APIClient()


@pytest.fixture
def catalog_rows(db):
    rows = {
        "nacl": make_material(
            rocksalt("Na", "Cl", 5.69),
            e_above_hull=0.0,
            is_stable=True,
            dataset="perov",
            formation_energy_per_atom=-2.1,
        ),
        "mgo": make_material(
            rocksalt("Mg", "O", 4.21), e_above_hull=0.05, is_stable=False, formation_energy_per_atom=-3.0
        ),
        "srtio3": make_material(
            perovskite("Sr", "Ti"), e_above_hull=0.0, is_stable=True, formation_energy_per_atom=-3.5
        ),
        "batio3": make_material(
            perovskite("Ba", "Ti"), e_above_hull=0.2, is_stable=False, formation_energy_per_atom=-3.3
        ),
        "lafeo3": make_material(perovskite("La", "Fe"), e_above_hull=0.01, is_stable=False),
    }
    from discovery.models import Campaign

    campaign = Campaign.objects.create(id=7, name="c7", elements=["Fe", "La", "O"], max_elements=3,
                                       pipelines=["structural"], config={})
    MaterialOrigin.objects.create(
        material=rows["lafeo3"],
        kind=MaterialOrigin.Kind.CAMPAIGN,
        dataset="campaign:7",
        source_id="c7-1",
        campaign=campaign,
    )
    return rows
