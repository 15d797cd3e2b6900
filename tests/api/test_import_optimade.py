"""import_optimade against our own OPTIMADE endpoint, served by a live server."""

from __future__ import annotations

import pytest
from django.core.management import CommandError, call_command

from catalog.models import Material, MaterialOrigin
from catalog.optimade_client import OptimadeClientError, iter_structures, provider_prefix, versioned_base

pytestmark = pytest.mark.django_db(transaction=True)


def test_versioned_base():
    assert versioned_base("https://x.org/optimade/") == "https://x.org/optimade/v1"
    assert versioned_base("https://x.org/optimade/v1") == "https://x.org/optimade/v1"
    assert versioned_base("https://x.org/optimade/v1.2") == "https://x.org/optimade/v1.2"


def test_iter_structures_follows_pages_and_filters(live_server, catalog_rows):
    base = f"{live_server.url}/optimade"
    remote = list(iter_structures(base, 'elements HAS "O"', page_limit=1))
    assert sorted(r.structure.composition.reduced_formula for r in remote) == ["BaTiO3", "LaFeO3", "MgO", "SrTiO3"]
    by_id = {r.id: r for r in remote}
    original = catalog_rows["srtio3"].to_structure()
    assert by_id[catalog_rows["srtio3"].public_id].structure.matches(original)
    assert len(list(iter_structures(base, "", page_limit=2, limit=3))) == 3
    assert provider_prefix(base) == "gnomon"


def test_client_errors_are_clear(live_server):
    with pytest.raises(OptimadeClientError, match="HTTP 400"):
        list(iter_structures(f"{live_server.url}/optimade", "nsites <"))
    with pytest.raises(OptimadeClientError, match="http"):
        list(iter_structures("file:///etc/passwd"))


def test_import_command_registers_through_the_catalog_service(live_server, catalog_rows):
    before = Material.objects.count()
    call_command("import_optimade", f"{live_server.url}/optimade", "--filter", "nelements=2", "--dataset", "mirror")
    # our own structures come back as duplicates: merged into the same materials, with a new origin each
    assert Material.objects.count() == before
    assert MaterialOrigin.objects.filter(dataset="mirror").count() == 2
    call_command("import_optimade", f"{live_server.url}/optimade", "--filter", "nelements=2", "--dataset", "mirror")
    assert MaterialOrigin.objects.filter(dataset="mirror").count() == 2  # idempotent


def test_import_command_reports_provider_errors(live_server):
    with pytest.raises(CommandError, match="400"):
        call_command("import_optimade", f"{live_server.url}/optimade", "--filter", "nsites <")
