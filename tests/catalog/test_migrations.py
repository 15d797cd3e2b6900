"""Data migrations on a catalog that holds campaign crystals (the state a real installation upgrades from)."""

from __future__ import annotations

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

pytestmark = pytest.mark.django_db(transaction=True)


def test_origin_provenance_columns_are_filled_from_details():
    executor = MigrationExecutor(connection)
    executor.migrate([("catalog", "0004_material_verdict")])
    old = executor.loader.project_state([("catalog", "0004_material_verdict"),
                                         ("discovery", "0008_dft_job_provenance_columns")]).apps
    campaign = old.get_model("discovery", "Campaign").objects.create(
        name="old", elements=["Cl", "Na"], max_elements=2, pipelines=["structural"], config={})
    material = old.get_model("catalog", "Material").objects.create(
        public_id="gn-999001", structure={}, formula_reduced="NaCl", formula_anonymous="AB", elements=["Cl", "Na"],
        nelements=2, chemsys="Cl-Na", nsites=2, volume=40.0, density=2.0, fingerprint="f")
    origins = old.get_model("catalog", "MaterialOrigin").objects
    origins.create(material=material, kind="campaign", dataset="campaign:x", source_id="c1",
                   details={"campaign": campaign.pk, "candidate": 123456, "round": 0})
    origins.create(material=material, kind="dataset", dataset="seed", source_id="s1", details={"file": "a.cif"})

    executor = MigrationExecutor(connection)  # a fresh graph, as `migrate` builds it
    executor.migrate(executor.loader.graph.leaf_nodes())
    from catalog.models import MaterialOrigin

    filled = MaterialOrigin.objects.get(source_id="c1")
    assert filled.campaign_id == campaign.pk and filled.candidate_id is None  # a vanished candidate stays empty
    assert MaterialOrigin.objects.get(source_id="s1").campaign_id is None
