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


def test_a_bad_entry_is_skipped_and_reported_and_the_rest_imported(live_server, catalog_rows, tmp_path):
    """A provider page with one entry the OPTIMADE models refuse: the importer names it and imports the others."""
    import csv
    import json
    import threading
    import urllib.parse
    import urllib.request
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from catalog.optimade_client import STRUCTURE_FIELDS

    query = urllib.parse.urlencode({"page_limit": 100, "response_fields": ",".join(STRUCTURE_FIELDS)})
    with urllib.request.urlopen(f"{live_server.url}/optimade/v1/structures?{query}") as response:  # noqa: S310
        page = json.load(response)
    bad = page["data"][0]
    bad["attributes"]["lattice_vectors"] = [[1.0, 0.0], "not a vector"]
    page["links"]["next"] = None

    class Provider(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - http.server's name
            answer = page if "/structures" in self.path else {"meta": {"provider": {"prefix": "stub"}}}
            body = json.dumps(answer).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/vnd.api+json")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Provider)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    report = tmp_path / "skipped.csv"
    try:
        call_command("import_optimade", f"http://127.0.0.1:{server.server_port}/optimade", "--dataset", "stub",
                     "--report", str(report))
    finally:
        server.shutdown()
    rows = list(csv.reader(report.open()))
    assert rows[0] == ["id", "url", "reason"] and len(rows) == 2
    assert rows[1][0] == bad["id"] and "lattice_vectors" in rows[1][2]
    assert MaterialOrigin.objects.filter(dataset="stub").count() == len(page["data"]) - 1
