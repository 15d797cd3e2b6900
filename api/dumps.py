"""Published full dumps, so bulk users never fight the export throttle: the catalog archive (``export_catalog``'s
``.tar.gz``) and every structure in OPTIMADE JSON Lines (a header line ``{"x-optimade": {"meta": ...}}``, the ``info``
and ``info/structures`` resources, then one structure resource per line, as optimade-maker writes and reads them).

``manage.py publish_dumps`` writes both, dated, into ``settings.GNOMON_DUMP_DIR`` with an ``index.json`` (name,
kind, bytes, SHA-256, time); ``/api/v1/dumps/`` lists them and serves the files, unthrottled.
"""

from __future__ import annotations

import gzip
import json
import re
from datetime import UTC, datetime
from pathlib import Path

from django.test import RequestFactory
from optimade import __api_version__

from api.optimade import views as optimade_views
from api.optimade.entries import resource_queryset, structure_resource
from catalog.datasets import sha256_of
from catalog.models import Material
from catalog.services.archive import export_catalog

NAME = re.compile(r"^gnomon-(catalog|optimade)-\d{8}T\d{6}Z\.(tar\.gz|jsonl\.gz)$")
KEEP = 3  # dumps of each kind kept; older ones are deleted when a new one is published


def write_optimade_jsonl(path: Path, base_url: str) -> int:
    """Every structure as an OPTIMADE resource, one per line (gzip); returns the number of structures."""
    factory = RequestFactory()
    info = json.loads(optimade_views.info(factory.get("/optimade/v1/info")).content)["data"]
    entry_info = json.loads(optimade_views.entry_info(factory.get("/optimade/v1/info/structures"),
                                                      "structures").content)["data"]
    n = 0
    with gzip.open(path, "wt", encoding="utf-8") as out:
        out.write(json.dumps({"x-optimade": {"meta": {"api_version": __api_version__}}}) + "\n")
        out.write(json.dumps(info) + "\n")
        out.write(json.dumps(entry_info) + "\n")
        for material in resource_queryset(Material.objects.order_by("id")).iterator(chunk_size=2000):
            out.write(json.dumps(structure_resource(material, None, base_url)) + "\n")
            n += 1
    return n


def publish(dump_dir: Path, base_url: str) -> list[dict]:
    """Write a new pair of dumps and the index; returns the index (newest first)."""
    dump_dir.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    for kind, suffix, write in (
        ("catalog", "tar.gz", lambda p: export_catalog(p)),
        ("optimade", "jsonl.gz", lambda p: write_optimade_jsonl(p, base_url)),
    ):
        final = dump_dir / f"gnomon-{kind}-{stamp}.{suffix}"
        partial = final.with_name(final.name + ".part")
        write(partial)
        partial.replace(final)  # a reader never sees half a dump
        for old in sorted(dump_dir.glob(f"gnomon-{kind}-*.{suffix}"), reverse=True)[KEEP:]:
            old.unlink()
    entries = []
    for path in sorted((p for p in dump_dir.iterdir() if NAME.match(p.name)), reverse=True):
        entries.append({"name": path.name, "kind": NAME.match(path.name).group(1), "bytes": path.stat().st_size,
                        "sha256": sha256_of(path), "created": datetime.fromtimestamp(path.stat().st_mtime, UTC).isoformat()})
    index = dump_dir / "index.json"
    index.with_suffix(".part").write_text(json.dumps(entries, indent=1))
    index.with_suffix(".part").replace(index)
    return entries


def published(dump_dir: Path) -> list[dict]:
    """The index of published dumps (newest first); empty when none has been published."""
    try:
        return json.loads((dump_dir / "index.json").read_text())
    except (OSError, ValueError):
        return []
