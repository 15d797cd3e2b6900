#!/usr/bin/env python
"""Bulk export and list latency on a large synthetic catalog.

Measures, in one run against one PostgreSQL database (``BENCH_DATABASE_URL``, default: database ``BENCH_1M_DATABASE``
= ``gnomon_bench1m`` on the ``DATABASE_URL`` server, shared with api_latency.py, created and migrated on first use):

- export throughput (materials/s) of ``api.export.stream_export`` for JSON Lines (with structures), CSV and
  extended XYZ over the whole table, each in a fresh process;
- growth of that process's resident memory (VmRSS sampled during the export, minus before) for 1k rows vs the whole
  table (flat = constant memory);
- the naive baseline in the same run: ``MaterialSerializer(queryset, many=True).data`` over a fully materialised
  queryset, then ``json.dumps`` per row — throughput and peak memory at 1k and ``BENCH_NAIVE_ROWS`` rows;
- p50/p95 latency of filtered ``GET /api/v1/materials/`` requests (Django test client, full view stack) on the table.

Rows are synthetic (``benchmarks/synthetic_catalog.py``: six prototypes, realistic element pools, energies, hull
fields, origins), streamed in with COPY until the table holds ``BENCH_EXPORT_ROWS`` (default 1,000,000, the issue's
goal; a million rows take minutes). Memory is sampled at 1k, 10k, 100k and all rows of JSON Lines. Extended XYZ,
the slowest format, is timed on its first ``BENCH_EXTXYZ_ROWS`` rows (default 200,000). Writes
``benchmarks/results/export.json``.
"""

from __future__ import annotations

import json
import os
import random
import resource
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))

from benchmarks.common import machine_description  # noqa: E402

ROWS = int(os.environ.get("BENCH_EXPORT_ROWS", "1000000"))
EXTXYZ_ROWS = int(os.environ.get("BENCH_EXTXYZ_ROWS", "200000"))
NAIVE_ROWS = int(os.environ.get("BENCH_NAIVE_ROWS", "100000"))
LATENCY_REQUESTS = int(os.environ.get("BENCH_LATENCY_REQUESTS", "200"))


def bench_database_url() -> str:
    if os.environ.get("BENCH_DATABASE_URL"):
        return os.environ["BENCH_DATABASE_URL"]
    base = os.environ.get("DATABASE_URL")
    if not base:
        raise SystemExit("set DATABASE_URL (or BENCH_DATABASE_URL) to a PostgreSQL server for the benchmark")
    parts = urlsplit(base)
    return urlunsplit(parts._replace(path="/" + os.environ.get("BENCH_1M_DATABASE", "gnomon_bench1m")))


def setup_django() -> None:
    os.environ["BENCH_DATABASE_URL"] = os.environ["DATABASE_URL"] = bench_database_url()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gnomon.settings")
    os.environ.setdefault("GNOMON_LOG_LEVEL", "WARNING")
    import django

    django.setup()


def ensure_database() -> None:
    import psycopg

    url = bench_database_url()
    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    admin = urlunsplit(parts._replace(path="/postgres", scheme="postgresql"))
    with psycopg.connect(admin, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')  # noqa: S608 - our own derived name
    subprocess.run([sys.executable, str(ROOT / "manage.py"), "migrate", "-v0"], check=True,
                   env={**os.environ, "DATABASE_URL": url})


def populate(target: int) -> int:
    """Add synthetic materials (benchmarks/synthetic_catalog.py, COPY) until the table holds ``target`` rows."""
    from benchmarks.synthetic_catalog import fill
    from catalog.models import Material

    have = Material.objects.count()
    if have < target:
        fill(target - have, seed=have, drop=False)
    return Material.objects.count()


def rss_mb() -> float:
    """Current resident set size (MB): sampled while the export runs (ru_maxrss would only show import peaks)."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure_export(fmt: str, rows: int | None, without_structure: bool = False) -> dict:
    """One export in this (fresh) process: seconds, rows, bytes, peak RSS."""
    from api.export import stream_export
    from catalog.models import Material
    from catalog.selectors import MaterialQuery, search_materials

    queryset = search_materials(MaterialQuery())
    if rows is not None:
        cutoff = Material.objects.order_by("id").values_list("id", flat=True)[rows - 1]
        queryset = queryset.filter(id__lte=cutoff)
    rss_before = peak = rss_mb()
    started = time.perf_counter()
    n_bytes = 0
    n_lines = 0
    from api.export import EXPORT_COLUMNS

    fields = tuple(EXPORT_COLUMNS) if without_structure else None
    for i, chunk in enumerate(stream_export(queryset, fmt, fields)):
        n_bytes += len(chunk)
        if fmt == "jsonl":
            n_lines += chunk.count(b"\n")
        if i % 16 == 0:
            peak = max(peak, rss_mb())
    seconds = time.perf_counter() - started
    peak = max(peak, rss_mb())
    count = n_lines if fmt == "jsonl" else (rows or Material.objects.count())
    return {"format": fmt + (" (no structure)" if without_structure else ""), "rows": count, "seconds": seconds, "rows_per_s": count / seconds, "mbytes": n_bytes / 1e6,
            "peak_rss_mb": peak, "rss_before_mb": rss_before, "rss_growth_mb": peak - rss_before}


def measure_naive(rows: int) -> dict:
    """Baseline: a DRF serializer over a fully materialised queryset, then one JSON line per row."""
    from api.serializers import ALL_MATERIAL_FIELDS, MaterialSerializer
    from catalog.models import Material

    fields = tuple(f for f in ALL_MATERIAL_FIELDS if f != "origins")
    rss_before = rss_mb()
    started = time.perf_counter()
    queryset = list(Material.objects.select_related("hull_scheme").order_by("id")[:rows])
    data = MaterialSerializer(queryset, many=True, fields=fields).data
    body = "\n".join(json.dumps(row) for row in data).encode()
    seconds = time.perf_counter() - started
    peak = rss_mb()  # everything is still alive here: the high-water mark
    return {"format": "jsonl (naive)", "rows": len(queryset), "seconds": seconds, "rows_per_s": len(queryset) / seconds,
            "mbytes": len(body) / 1e6, "peak_rss_mb": peak, "rss_before_mb": rss_before,
            "rss_growth_mb": peak - rss_before}


def measure_latency(requests: int) -> dict:
    from django.test import Client, override_settings

    from benchmarks.api_latency import QUERIES as queries  # the same filters the 1M-row latency benchmark times

    rng = random.Random(1)
    client = Client()
    timings: dict[str, list[float]] = {q: [] for q in queries}
    unthrottled = {"anon": None, "user": None, "anon_export": None, "user_export": None}
    with override_settings(GNOMON_API_THROTTLE_RATES=unthrottled):
        for q in queries:  # warm-up
            client.get(f"/api/v1/materials/?{q}&limit=100")
        for _ in range(requests):
            q = rng.choice(queries)
            started = time.perf_counter()
            response = client.get(f"/api/v1/materials/?{q}&limit=100")
            timings[q].append(time.perf_counter() - started)
            assert response.status_code == 200, response.content[:300]
    everything = sorted(t for ts in timings.values() for t in ts)

    def pct(values, p):
        return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))] * 1000

    return {
        "requests": len(everything),
        "p50_ms": pct(everything, 50),
        "p95_ms": pct(everything, 95),
        "max_ms": everything[-1] * 1000,
        "per_query_p95_ms": {q: pct(sorted(ts), 95) for q, ts in timings.items() if ts},
        "per_query_median_ms": {q: statistics.median(ts) * 1000 for q, ts in timings.items() if ts},
    }


def child(kind: str, *args: str) -> dict:
    out = subprocess.run([sys.executable, __file__, "--child", kind, *args], capture_output=True, text=True,
                         env=os.environ.copy(), cwd=ROOT, check=False)
    if out.returncode:
        raise SystemExit(f"benchmark step {kind} {args} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    if len(sys.argv) > 2 and sys.argv[1] == "--child":
        setup_django()
        kind = sys.argv[2]
        if kind == "export":
            result = measure_export(sys.argv[3], int(sys.argv[4]) if sys.argv[4] != "all" else None,
                                    without_structure=len(sys.argv) > 5 and sys.argv[5] == "scalar")
        elif kind == "naive":
            result = measure_naive(int(sys.argv[3]))
        else:
            result = measure_latency(int(sys.argv[3]))
        print(json.dumps(result))
        return

    ensure_database()
    setup_django()
    started = time.monotonic()
    total = populate(ROWS)
    print(f"table: {total:,} materials (populate {time.monotonic() - started:.0f} s)", flush=True)

    exports = []
    sizes = [n for n in (1000, 10_000, 100_000) if n < total]
    runs = [("jsonl", str(n)) for n in sizes] + [("jsonl", "all"), ("csv", "all"),
                                                  ("extxyz", str(EXTXYZ_ROWS) if EXTXYZ_ROWS < total else "all"),
                                                  ("jsonl", "all", "scalar")]
    for fmt, rows, *variant in runs:
        result = child("export", fmt, rows, *variant)
        print(f"    export {result['format']} {result['rows']:,} rows: {result['rows_per_s']:,.0f}/s, "
              f"RSS growth {result['rss_growth_mb']:.1f} MB", flush=True)
        exports.append(result)
    naive = []
    for rows in (1000, min(NAIVE_ROWS, total)):
        result = child("naive", str(rows))
        print(f"    naive {result['rows']:,} rows: {result['rows_per_s']:,.0f}/s, "
              f"RSS growth {result['rss_growth_mb']:.1f} MB", flush=True)
        naive.append(result)
    latency = child("latency", str(LATENCY_REQUESTS))
    print(f"    list latency p50 {latency['p50_ms']:.1f} ms, p95 {latency['p95_ms']:.1f} ms", flush=True)

    jsonl_runs = [e for e in exports[: len(sizes) + 1]]
    jsonl_all = jsonl_runs[-1]
    by_format = {e["format"]: e for e in exports[len(sizes) + 1:]}
    naive_big = naive[-1]
    results = {
        "benchmark": "export",
        "date": datetime.now(UTC).isoformat(),
        "machine": machine_description(),
        "load_average": " ".join(Path("/proc/loadavg").read_text().split()[:3]),
        "table_rows": total,
        "metrics": {
            "jsonl_materials_per_s": jsonl_all["rows_per_s"],
            "csv_materials_per_s": by_format["csv"]["rows_per_s"],
            "extxyz_materials_per_s": by_format["extxyz"]["rows_per_s"],
            "jsonl_no_structure_materials_per_s": by_format["jsonl (no structure)"]["rows_per_s"],
            **{f"rss_growth_mb_{e['rows']}": e["rss_growth_mb"] for e in jsonl_runs},
            "peak_rss_mb_1k": jsonl_runs[0]["peak_rss_mb"],
            f"peak_rss_mb_{jsonl_all['rows']}": jsonl_all["peak_rss_mb"],
            "memory_flat": jsonl_all["rss_growth_mb"] - jsonl_runs[0]["rss_growth_mb"] < 10,
            "list_p95_ms": latency["p95_ms"],
        },
        "baseline": {
            "naive_materials_per_s": naive_big["rows_per_s"],
            "naive_rss_growth_mb_1k": naive[0]["rss_growth_mb"],
            f"naive_rss_growth_mb_{naive_big['rows']}": naive_big["rss_growth_mb"],
        },
        "speedup": jsonl_all["rows_per_s"] / naive_big["rows_per_s"],
        "goals": {"export_materials_per_s": 20000, "list_p95_ms": 50, "table_rows": 1_000_000},
        "exports": exports,
        "naive": naive,
        "latency": latency,
    }
    (HERE / "results").mkdir(exist_ok=True)
    (HERE / "results" / "export.json").write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results["metrics"], indent=2))


if __name__ == "__main__":
    main()
