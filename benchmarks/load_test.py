#!/usr/bin/env python
"""Load test: 50 concurrent users against gunicorn + PostgreSQL holding ≥ 100,000 synthetic materials, on loopback.

    python benchmarks/load_test.py [--users 50] [--seconds 60] [--materials 100000]

What runs, in one process tree on this machine:

1. ``benchmarks/synthetic_catalog.py`` fills a separate database (``BENCH_LOAD_DATABASE``, default ``gnomon_load`` on the
   ``DATABASE_URL`` server) up to ``--materials`` rows; the test suite never sees it.
2. gunicorn serves ``gnomon.wsgi`` on 127.0.0.1 with production settings (``GNOMON_DEBUG=0``, static files collected,
   JSON logs at WARNING), ``--workers`` processes × ``--threads`` threads (default: docker/gunicorn.conf.py's 3 × 2).
   The API throttle rates are raised for the run: all simulated users share one IP, and the subject is the server's
   capacity, not the throttle (which tests/security/test_limits.py covers).
3. A plain asyncio + aiohttp load generator (no locust needed): each user loops over a weighted mix of requests
   with a think time (``--think`` seconds mean, exponential): the home page, the materials browser with filters, a
   material page, the API list with filters, a small export (one chemical system, CSV) — and records status and
   latency per kind.

Baseline, in the same run: the same mix from one user without think time for ``--baseline-seconds`` (each request's
service time on an otherwise idle server). The result compares p95 under load with that. Writes ``benchmarks/results/load.json``. Goals (issue #9): zero errors and
p95 ≤ 200 ms for pages.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import socket
import statistics
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))

from benchmarks.common import machine_description, write_result  # noqa: E402
from benchmarks.synthetic_catalog import sibling_database_url, top_up  # noqa: E402

PAGE_KINDS = ("home", "browse", "material_page")
WEIGHTS = {"home": 1, "browse": 3, "material_page": 3, "api_list": 3, "export_small": 1}
BROWSE_FILTERS = [
    "elements=O", "elements=Fe,O&is_stable=true", "chemsys=Ba-O-Ti", "crystal_system=tetragonal",
    "formula=ABC3", "energy_above_hull_max=0.05&ordering=formation_energy_per_atom", "nelements=3&elements=La",
    "spacegroup_number=225&energy_above_hull_max=0.1", "exclude_elements=O,F&nelements=2", "origin=campaign",
]
API_FILTERS = [
    "elements=Li,O&energy_above_hull_max=0.1", "chemsys=Sr-Ti-O", "formula=AB2&ordering=-formation_energy_per_atom",
    "is_stable=true&nelements=3", "formation_energy_per_atom_max=-3&crystal_system=cubic", "chemsys=Li-*-O",
    "spacegroup_number=221&energy_above_hull_min=0.05&energy_above_hull_max=0.2", "exclude_elements=O&limit=50",
    "elements=Fe&fields=public_id,formula_reduced,energy_above_hull", "origin=synthetic:mp-like&is_stable=true",
]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def sample_targets(url: str) -> tuple[list[str], list[str]]:
    """Material ids to visit and exact chemical systems for small exports (from the load database itself)."""
    import psycopg

    with psycopg.connect(url) as conn:
        ids = [r[0] for r in conn.execute(
            "SELECT public_id FROM catalog_material TABLESAMPLE SYSTEM (1) LIMIT 2000").fetchall()]
        chemsystems = [r[0] for r in conn.execute(
            "SELECT chemsys FROM catalog_material TABLESAMPLE SYSTEM (1) WHERE nelements = 3 LIMIT 500").fetchall()]
    return ids, chemsystems


def server_env(url: str) -> dict:
    return {
        **os.environ,
        "DATABASE_URL": url,
        "GNOMON_DEBUG": "0",
        "CELERY_BROKER_URL": os.environ.get("CELERY_BROKER_URL", "redis://127.0.0.1:6379/0"),  # nothing is enqueued
        "SECRET_KEY": "load-test-only-" + "x" * 40,
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "GNOMON_SECURE_SSL_REDIRECT": "0",
        "GNOMON_HSTS_SECONDS": "0",
        "GNOMON_LOG_FORMAT": "json",
        "GNOMON_LOG_LEVEL": "WARNING",
        "GNOMON_API_ANON_RATE": "1000000/min",
        "GNOMON_API_USER_RATE": "1000000/min",
        "GNOMON_API_ANON_EXPORT_RATE": "1000000/min",
        "GNOMON_API_USER_EXPORT_RATE": "1000000/min",
    }


def start_server(env: dict, port: int, workers: int, threads: int) -> subprocess.Popen:
    subprocess.run([sys.executable, "manage.py", "collectstatic", "--noinput", "-v0"], check=True, cwd=ROOT, env=env)
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "gnomon.wsgi", "-b", f"127.0.0.1:{port}", "-w", str(workers),
         "--threads", str(threads), "--timeout", "120", "--log-level", "warning"],
        cwd=ROOT, env=env,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return server
        except OSError:
            if server.poll() is not None:
                raise SystemExit("gunicorn exited during start-up") from None
            time.sleep(0.3)
    server.terminate()
    raise SystemExit("gunicorn did not start within 60 s")


class Recorder:
    def __init__(self) -> None:
        self.latencies: dict[str, list[float]] = defaultdict(list)
        self.errors: dict[str, int] = defaultdict(int)
        self.error_samples: list[str] = []
        self.bytes = 0


def pick(rng: random.Random, ids: list[str], chemsystems: list[str]) -> tuple[str, str]:
    kind = rng.choices(list(WEIGHTS), list(WEIGHTS.values()))[0]
    if kind == "home":
        return kind, "/"
    if kind == "browse":
        return kind, f"/materials/?{rng.choice(BROWSE_FILTERS)}"
    if kind == "material_page":
        return kind, f"/materials/{rng.choice(ids)}/"
    if kind == "api_list":
        return kind, f"/api/v1/materials/?{rng.choice(API_FILTERS)}"
    return kind, f"/api/v1/export/?chemsys={rng.choice(chemsystems)}&format=csv"


async def user(session, base: str, rng: random.Random, stop_at: float, think: float, record: Recorder,
               ids: list[str], chemsystems: list[str]) -> None:
    while time.monotonic() < stop_at:
        kind, path = pick(rng, ids, chemsystems)
        started = time.perf_counter()
        try:
            async with session.get(base + path) as response:
                body = await response.read()
                status = response.status
        except Exception as exc:  # noqa: BLE001 - a refused or dropped connection is an error to count
            status, body = 0, repr(exc).encode()
        elapsed = time.perf_counter() - started
        record.latencies[kind].append(elapsed)
        record.bytes += len(body)
        if status != 200:
            record.errors[kind] += 1
            if len(record.error_samples) < 10:
                record.error_samples.append(f"{status} {path}: {body[:200]!r}")
        if think:
            await asyncio.sleep(rng.expovariate(1 / think))


async def run_users(base: str, users: int, seconds: float, think: float, ids, chemsystems, seed: int) -> dict:
    import aiohttp

    record = Recorder()
    connector = aiohttp.TCPConnector(limit=users + 5)
    timeout = aiohttp.ClientTimeout(total=120)
    started = time.monotonic()
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        stop_at = started + seconds
        await asyncio.gather(*(
            user(session, base, random.Random(seed + i), stop_at, think, record, ids, chemsystems)
            for i in range(users)
        ))
    wall = time.monotonic() - started
    return summarize(record, wall, users)


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))] * 1000


def summarize(record: Recorder, wall: float, users: int) -> dict:
    kinds = {}
    for kind, values in sorted(record.latencies.items()):
        kinds[kind] = {"requests": len(values), "errors": record.errors.get(kind, 0),
                       "p50_ms": round(pct(values, 50), 1), "p95_ms": round(pct(values, 95), 1),
                       "mean_ms": round(statistics.fmean(values) * 1000, 1)}
    pages = [v for kind in PAGE_KINDS for v in record.latencies.get(kind, [])]
    everything = [v for values in record.latencies.values() for v in values]
    return {
        "users": users, "seconds": round(wall, 1), "requests": len(everything),
        "requests_per_s": round(len(everything) / wall, 1), "errors": sum(record.errors.values()),
        "pages_p95_ms": round(pct(pages, 95), 1) if pages else None,
        "all_p95_ms": round(pct(everything, 95), 1) if everything else None,
        "mbytes": round(record.bytes / 1e6, 1), "per_kind": kinds, "error_samples": record.error_samples,
    }


def load_average() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return ""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--baseline-seconds", type=float, default=30)
    parser.add_argument("--think", type=float, default=1.0, help="mean think time between a user's requests, s")
    parser.add_argument("--materials", type=int, default=100_000)
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--result-name", default="load", help="results/<name>.json (e.g. to keep a variant's run)")
    options = parser.parse_args()

    url = sibling_database_url("BENCH_LOAD_DATABASE", "gnomon_load")
    total = top_up(url, options.materials)
    ids, chemsystems = sample_targets(url)
    print(f"load database: {total:,} materials", flush=True)
    port = free_port()
    server = start_server(server_env(url), port, options.workers, options.threads)
    base = f"http://127.0.0.1:{port}"
    try:
        # Warm-up: every worker thread imports, connects and compiles templates before anything is measured.
        asyncio.run(run_users(base, 2 * options.workers * options.threads, 10, 0, ids, chemsystems, seed=999))
        load_before = load_average()
        baseline = asyncio.run(run_users(base, 1, options.baseline_seconds, 0, ids, chemsystems, 1))
        print(f"    1 user: {baseline['requests_per_s']} req/s, pages p95 {baseline['pages_p95_ms']} ms", flush=True)
        loaded = asyncio.run(run_users(base, options.users, options.seconds, options.think, ids, chemsystems, 100))
        load_after = load_average()
        print(f"    {options.users} users: {loaded['requests_per_s']} req/s, errors {loaded['errors']}, "
              f"pages p95 {loaded['pages_p95_ms']} ms", flush=True)
    finally:
        server.terminate()
        server.wait(timeout=30)

    metrics = {
        "users": options.users, "requests_per_s": loaded["requests_per_s"], "errors": loaded["errors"],
        "pages_p95_ms": loaded["pages_p95_ms"], "all_p95_ms": loaded["all_p95_ms"],
        **{f"{kind}_p95_ms": values["p95_ms"] for kind, values in loaded["per_kind"].items()},
        "meets_goal": loaded["errors"] == 0 and (loaded["pages_p95_ms"] or 1e9) <= 200,
    }
    path = write_result(
        options.result_name,
        metrics,
        {"name": "same mix, 1 user, no think time (service time on an idle server)", "requests_per_s": baseline["requests_per_s"],
         "pages_p95_ms": baseline["pages_p95_ms"], "all_p95_ms": baseline["all_p95_ms"]},
        {"pages_p95_vs_one_user": round(loaded["pages_p95_ms"] / baseline["pages_p95_ms"], 2)
         if baseline["pages_p95_ms"] else None},
        extra={
            "goals": {"errors": 0, "pages_p95_ms": 200},
            "setup": {"materials": total, "gunicorn_workers": options.workers, "gunicorn_threads": options.threads,
                      "think_time_mean_s": options.think, "seconds": options.seconds, "mix_weights": WEIGHTS,
                      "load_average_before_after": [load_before, load_after], "machine": machine_description()},
            "loaded": loaded,
            "one_user": baseline,
        },
    )
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
