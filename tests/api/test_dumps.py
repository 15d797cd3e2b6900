"""Published full dumps: publish_dumps writes the catalog archive and an OPTIMADE JSON Lines file; the API root links
them, /api/v1/dumps/ lists and serves them, unthrottled; every dumped structure is a valid OPTIMADE resource."""

from __future__ import annotations

import gzip
import io
import json
import tarfile

import pytest
from django.core.management import call_command
from optimade.models import StructureResource

pytestmark = pytest.mark.django_db


def test_published_dumps_are_listed_served_and_valid(client, catalog_rows, settings, tmp_path):
    settings.GNOMON_DUMP_DIR = tmp_path / "dumps"
    assert client.get("/api/v1/dumps/").json() == []
    call_command("publish_dumps", stdout=io.StringIO(), stderr=io.StringIO())
    root = client.get("/api/v1/").json()
    listing = client.get(root["dumps"]).json()
    assert sorted(d["kind"] for d in listing) == ["catalog", "optimade"]
    files = {}
    for dump in listing:
        response = client.get(dump["url"])
        assert response.status_code == 200
        files[dump["kind"]] = b"".join(response.streaming_content)
    with tarfile.open(fileobj=io.BytesIO(files["catalog"])) as archive:
        assert "manifest.json" in archive.getnames()
    lines = gzip.decompress(files["optimade"]).decode().splitlines()
    assert json.loads(lines[0]) == {"x-optimade": {"meta": {"api_version": json.loads(lines[0])["x-optimade"]["meta"]
                                                                                    ["api_version"]}}}
    assert json.loads(lines[1])["type"] == "info" and json.loads(lines[2])["id"] == "structures"
    entries = [json.loads(line) for line in lines[3:]]
    assert len(entries) == len(catalog_rows)
    for entry in entries:
        StructureResource(**entry)
    assert client.get("/api/v1/dumps/gnomon-catalog-20000101T000000Z.tar.gz").status_code == 404
    assert client.get("/api/v1/dumps/..%2Fsettings.py").status_code == 404
