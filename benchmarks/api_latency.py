#!/usr/bin/env python
"""p95 latency of filtered ``GET /api/v1/materials/`` on a 1,000,000-row catalog with the current indexes.

    python benchmarks/api_latency.py [--rows 1000000] [--requests 40]

The catalog lives in its own database (``BENCH_1M_DATABASE``, default ``gnomon_bench1m`` on the ``DATABASE_URL``
server), filled by ``benchmarks/synthetic_catalog.py`` (COPY) up to ``--rows`` when smaller. Each query of
``QUERIES`` (one to four filters, with and without sorting) is requested ``--requests`` times through the whole
Django/DRF stack (test client: URL routing, validation, the selector's SQL, serialisation), after one warm-up call;
p50/p95 per query and over all requests. Goal (issue #7): p95 ≤ 50 ms.

Baseline, in the same run: the very SQL each request runs for its page (taken from PostgreSQL's log of the request
through ``connection.queries``), re-run with index scans switched off (``enable_indexscan``, ``enable_bitmapscan``,
``enable_indexonlyscan`` = off), i.e. what the same API would cost without its indexes. Writes
``benchmarks/results/api_latency.json`` with the plan of the slowest query.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))

from benchmarks.synthetic_catalog import sibling_database_url, top_up  # noqa: E402

QUERIES = [
    "elements=O&energy_above_hull_max=0.05",
    "chemsys=Ba-O-Ti",
    "formula=ABC3&is_stable=true",
    "elements=Fe&nelements=3&ordering=energy_above_hull",
    "formation_energy_per_atom_max=-3&crystal_system=cubic",
    "exclude_elements=O&ordering=-formation_energy_per_atom",
    "chemsys=Li-*-O",
    "spacegroup_number=225&energy_above_hull_min=0.1&energy_above_hull_max=0.2",
    "elements=Li,O&is_stable=true&nelements=3&ordering=-formation_energy_per_atom",
    "origin=campaign&energy_above_hull_max=0.1",
    "crystal_system=tetragonal&formation_energy_per_atom_min=-2&formation_energy_per_atom_max=-1",
    "formula=SrTiO3",
]


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))] * 1000


def page_sql(client, query: str) -> list[tuple[str, float]]:
    """The SQL statements one request runs (from connection.queries with DEBUG-style capture)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as captured:
        client.get(f"/api/v1/materials/?{query}")
    return [(q["sql"], float(q["time"])) for q in captured.captured_queries]


def time_sql(sql: str, indexes: bool, repeat: int = 3) -> float:
    """Best of ``repeat`` runs of ``sql`` (ms), with or without index scans."""
    from django.db import connection, transaction

    best = float("inf")
    for _ in range(repeat):
        with transaction.atomic(), connection.cursor() as cursor:
            if not indexes:
                cursor.execute("SET LOCAL enable_indexscan = off; SET LOCAL enable_bitmapscan = off; "
                               "SET LOCAL enable_indexonlyscan = off")
            started = time.perf_counter()
            cursor.execute(sql)
            cursor.fetchall()
            best = min(best, (time.perf_counter() - started) * 1000)
    return best


def explain(sql: str) -> str:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql)
        return "\n".join(row[0] for row in cursor.fetchall())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--requests", type=int, default=40, help="requests per query")
    parser.add_argument("--no-baseline", action="store_true", help="skip the index-less SQL baseline")
    options = parser.parse_args()

    url = sibling_database_url("BENCH_1M_DATABASE", "gnomon_bench1m")
    total = top_up(url, options.rows)
    os.environ["DATABASE_URL"] = url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gnomon.settings")
    os.environ.setdefault("GNOMON_LOG_LEVEL", "WARNING")
    import django

    django.setup()
    from django.test import Client, override_settings

    from benchmarks.common import write_result

    client = Client()
    unthrottled = {"anon": None, "user": None, "anon_export": None, "user_export": None}
    per_query: dict[str, dict] = {}
    everything: list[float] = []
    with override_settings(GNOMON_API_THROTTLE_RATES=unthrottled, ALLOWED_HOSTS=["testserver"]):
        for query in QUERIES:
            first = client.get(f"/api/v1/materials/?{query}")  # warm-up (plan cache, buffers)
            assert first.status_code == 200, (query, first.content[:300])
            timings = []
            for _ in range(options.requests):
                started = time.perf_counter()
                response = client.get(f"/api/v1/materials/?{query}")
                timings.append(time.perf_counter() - started)
                assert response.status_code == 200
            everything.extend(timings)
            per_query[query] = {"p50_ms": round(pct(timings, 50), 1), "p95_ms": round(pct(timings, 95), 1),
                                "mean_ms": round(statistics.fmean(timings) * 1000, 1),
                                "results": len(first.json()["results"])}
            print(f"    {query}: p50 {per_query[query]['p50_ms']} ms, p95 {per_query[query]['p95_ms']} ms", flush=True)

        baseline: dict[str, dict] = {}
        slowest = max(per_query, key=lambda q: per_query[q]["p95_ms"])
        plans = {}
        if not options.no_baseline:
            for query in QUERIES:
                statements = [sql for sql, _ in page_sql(client, query) if sql.lstrip().upper().startswith("SELECT")]
                with_indexes = sum(time_sql(sql, True) for sql in statements)
                without = sum(time_sql(sql, False, repeat=1) for sql in statements)
                baseline[query] = {"sql_ms_with_indexes": round(with_indexes, 1),
                                   "sql_ms_without_indexes": round(without, 1)}
                print(f"    SQL {query}: {with_indexes:.1f} ms with indexes, {without:.1f} ms without", flush=True)
            statements = [sql for sql, _ in page_sql(client, slowest) if sql.lstrip().upper().startswith("SELECT")]
            plans[slowest] = [explain(sql) for sql in statements]

    p95 = pct(everything, 95)
    metrics = {
        "table_rows": total,
        "requests": len(everything),
        "p50_ms": round(pct(everything, 50), 1),
        "p95_ms": round(p95, 1),
        "worst_query_p95_ms": per_query[slowest]["p95_ms"],
        "queries_meeting_50ms_p95": sum(1 for v in per_query.values() if v["p95_ms"] <= 50),
        "queries": len(QUERIES),
        "meets_goal": p95 <= 50,
    }
    base_with = sum(v["sql_ms_with_indexes"] for v in baseline.values())
    base_without = sum(v["sql_ms_without_indexes"] for v in baseline.values())
    path = write_result(
        "api_latency",
        metrics,
        {"name": "the same page SQL with index scans off", "sql_ms_total_with_indexes": round(base_with, 1),
         "sql_ms_total_without_indexes": round(base_without, 1)} if baseline else None,
        round(base_without / base_with, 1) if baseline and base_with else None,
        extra={"goals": {"p95_ms": 50, "table_rows": 1_000_000}, "per_query": per_query,
               "sql_baseline_per_query": baseline, "slowest_query": slowest, "slowest_query_plans": plans},
    )
    print(f"p95 {p95:.1f} ms over {len(everything)} requests on {total:,} rows; wrote {path}")


if __name__ == "__main__":
    main()
