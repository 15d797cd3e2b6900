"""Campaigns over realistic element spaces, run the way users run them: does every campaign complete?

A matrix of campaigns (binary, ternary and quaternary spaces; halides, oxides, a chalcogenide, nitrides and
intermetallics; each pipeline alone and both; small and large ``max_atoms``) is launched one after another with
``manage.py launch_campaign --config FILE --wait`` against the quick start's own processes: the production worker
layout of ``gnomon.processes.celery_processes`` (prefork pools, an orchestration worker on ``default,screening`` and a
DFT worker on ``dft``, two processes each) plus beat, on a database of its own (``BENCH_MATRIX_DATABASE``, default
``gnomon_matrix`` on the ``DATABASE_URL`` server) seeded with the shared datasets that hold structures.

The verifier is the ``ml`` backend (CHGNet: seconds per job) unless ``--verifier gpaw`` (the ``fast`` GPAW preset:
minutes per job on 2 cores; results go to ``campaign_matrix_gpaw.json``). Each campaign's outcome, wall time, stage
times and candidate counts are written as soon as it ends, so an interrupted run keeps what it measured (``--resume``
skips campaigns already in the file with the same settings).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/gnomon .venv/bin/python benchmarks/campaign_matrix.py
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import RESULTS_DIR, ROOT, data_dir, write_result  # noqa: E402
from benchmarks.synthetic_catalog import sibling_database_url  # noqa: E402

PYTHON = sys.executable
# Every shared dataset with structures, and MP's composition table (competing phases, reference verdicts); carbon_24
# (4,062 allotropes of C, no element of the matrix) is left out to save the 12 minutes its import takes.
SEED_DATASETS = ("gpaw-pbe-bootstrap", "aviary_hf_n_ti_zr_zn", "mp_elemental_refs", "perov_5",
                 "bartel2020_mp_stability")
COMMON: dict[str, Any] = {
    "rounds": 2,
    "candidates_per_round": 60,
    "dft_per_round": 2,
    "ensemble_size": 2,
    "epochs": 3,
    "kappa": 1.0,
    "kappa_final": 0.0,
    "max_predicted_e_above_hull": 0.5,  # a 3-epoch model is poor: let every round verify something
    "dft_preset": "fast",
}
# name → (chemistry, settings). Spaces are chosen so the seed sets hold parents for the structural pipeline.
MATRIX: dict[str, tuple[str, dict[str, Any]]] = {
    "Na-Cl": ("halide", {"elements": ["Na", "Cl"], "pipelines": ["structural"], "max_atoms": 4}),
    "K-Zn-F": ("halide", {"elements": ["K", "Zn", "F"], "pipelines": ["structural", "compositional"],
                          "max_atoms": 7}),
    "Li-Na-K-Cl": ("halide", {"elements": ["Li", "Na", "K", "Cl"], "max_elements": 4,
                              "pipelines": ["compositional"], "max_atoms": 8}),
    "Mg-Al-O": ("oxide", {"elements": ["Mg", "Al", "O"], "pipelines": ["structural"], "max_atoms": 8}),
    "Li-Fe-O": ("oxide", {"elements": ["Li", "Fe", "O"], "pipelines": ["structural", "compositional"],
                          "max_atoms": 8}),
    "Ca-Sr-Ti-O": ("oxide", {"elements": ["Ca", "Sr", "Ti", "O"], "max_elements": 4, "pipelines": ["structural"],
                             "max_atoms": 16}),
    "Zn-Se": ("chalcogenide", {"elements": ["Zn", "Se"], "pipelines": ["structural", "compositional"],
                               "max_atoms": 8}),
    "Ti-Zr-Zn": ("intermetallic", {"elements": ["Ti", "Zr", "Zn"], "pipelines": ["structural"], "max_atoms": 8}),
    "Mg-Zn": ("intermetallic", {"elements": ["Mg", "Zn"], "pipelines": ["structural", "compositional"],
                                "max_atoms": 6}),
    "Hf-Ti-Zr-N": ("nitride", {"elements": ["Hf", "Ti", "Zr", "N"], "max_elements": 4,
                               "pipelines": ["structural", "compositional"], "max_atoms": 16}),
}


def log(message: str) -> None:
    print(f"==> {message}", flush=True)


def campaign_settings(name: str, verifier: str) -> dict[str, Any]:
    if name.startswith("preset:"):  # a built-in campaign as launch_campaign --preset runs it (e.g. the demo)
        from discovery.campaign_config import PRESETS

        preset = name.split(":", 1)[1]
        return {**PRESETS[preset], "name": f"bench-{preset}"}
    _, settings = MATRIX[name]
    elements = settings["elements"]
    return {"name": f"matrix-{verifier}-{name}", "max_elements": min(3, len(elements)), **COMMON,
            "dft_backend": "ml" if verifier == "ml" else "gpaw", **settings}


def toml(settings: dict[str, Any]) -> str:
    def value(v: Any) -> str:
        if isinstance(v, list):
            return "[" + ", ".join(json.dumps(x) for x in v) + "]"
        return json.dumps(v)

    return "[campaign]\n" + "".join(f"{k} = {value(v)}\n" for k, v in settings.items())


def manage(env: dict[str, str], *args: str) -> None:
    log("manage.py " + " ".join(args))
    subprocess.run([PYTHON, "manage.py", *args], cwd=ROOT, env=env, check=True)


def prepare(env: dict[str, str], fresh: bool, *, seed_existing: bool = True) -> None:
    """Create the benchmark database if needed (``fresh``: drop it first), migrate it and seed it with the shared
    datasets (re-loading adds no duplicates; ``seed_existing=False`` seeds a newly created database only)."""
    import psycopg
    from psycopg import sql

    url = env["DATABASE_URL"]
    name = url.rsplit("/", 1)[1]
    with psycopg.connect(url.rsplit("/", 1)[0] + "/postgres", autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
        if exists and fresh:
            conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))
            exists = None
        if not exists:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    manage(env, "migrate", "--noinput", "-v", "0")
    if exists and not seed_existing:
        return
    for dataset in SEED_DATASETS:
        manage(env, "load_seed", "--dataset", dataset, "--no-hulls", "--no-progress")
    manage(env, "recompute_hulls")


def launch(config: Path, env: dict[str, str], timeout: float) -> tuple[subprocess.CompletedProcess, float]:
    """``manage.py launch_campaign --config FILE --wait``, as a user runs it; returns the process and its wall time
    (seconds)."""
    t0 = time.monotonic()
    run = subprocess.run([PYTHON, "manage.py", "launch_campaign", "--config", str(config), "--wait", "--timeout",
                          str(timeout)], cwd=ROOT, env=env, capture_output=True, text=True)
    return run, round(time.monotonic() - t0, 1)


def benchmark_env(database_url: str, broker_url: str, var: Path) -> dict[str, str]:
    """The environment of a benchmark's own database, broker and state folder (models, DFT work directories), for
    its subprocesses and, set in ``os.environ``, for this process's Django."""
    var.mkdir(parents=True, exist_ok=True)
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "CELERY_BROKER_URL": broker_url,
        "GNOMON_VAR_DIR": str(var),
        "GNOMON_MODEL_DIR": str(var / "models"),
        "GNOMON_DFT_WORKDIR": str(var / "dft"),
        "GNOMON_DATA_DIR": str(data_dir()),
    }
    env.pop("CELERY_RESULT_BACKEND", None)
    os.environ.update({k: env[k] for k in ("DATABASE_URL", "CELERY_BROKER_URL", "GNOMON_VAR_DIR", "GNOMON_MODEL_DIR",
                                           "GNOMON_DFT_WORKDIR", "GNOMON_DATA_DIR")})
    return env


@contextmanager
def quickstart_processes(env: dict[str, str], var: Path):
    """The quick start's own processes (``gnomon.processes.celery_processes``: prefork orchestration and DFT workers,
    beat), logging to ``var/workers.log``, with the queues purged of an earlier interrupted run's messages first;
    stopped (TERM, then KILL after a minute) on the way out. Campaign benchmarks run their campaigns inside it."""
    from gnomon.celery import app
    from gnomon.processes import celery_processes

    with app.connection_for_write() as conn:
        for queue in ("default", "screening", "dft"):
            conn.default_channel.queue_purge(queue)
    procs = []
    logs = var / "workers.log"
    for proc_name, argv in celery_processes(PYTHON, str(var / "celerybeat-schedule")):
        log(f"starting {proc_name}")
        procs.append(subprocess.Popen(argv, cwd=ROOT, env=env, stdout=logs.open("ab"), stderr=subprocess.STDOUT,
                                      start_new_session=True))
    try:
        yield procs
    finally:
        for proc in procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)


def collect(campaign_name: str) -> dict[str, Any]:
    """Outcome, wall time, stage times (s, summed over rounds) and candidate counts of one campaign."""
    from discovery.models import Campaign, GenerationChunk

    campaign = Campaign.objects.get(name=campaign_name)
    rounds = list(campaign.rounds.order_by("index"))
    stage_s: dict[str, float] = {}
    for rnd in rounds:
        for stage, seconds in (rnd.timings or {}).items():
            stage_s[stage] = round(stage_s.get(stage, 0.0) + float(seconds), 2)
    wall = (campaign.finished_at - campaign.started_at).total_seconds() if campaign.finished_at else None
    return {
        "outcome": campaign.status,
        "error": campaign.error,
        "wall_s": round(wall, 1) if wall is not None else None,
        "rounds_done": sum(r.stage == "done" for r in rounds),
        "stage_s": stage_s,
        "generation_chunks": GenerationChunk.objects.filter(round__campaign=campaign).count(),
        "parents": sum((r.generation or {}).get("n_parents", 0) for r in rounds),
        "compositions": sum((r.generation or {}).get("n_compositions", 0) for r in rounds),
        "skipped_parents": sum(len((r.generation or {}).get("skipped_parents", [])) for r in rounds),
        "generated": sum(r.n_generated for r in rounds),
        "unique": sum(r.n_deduplicated for r in rounds),
        "screened": sum(r.n_screened for r in rounds),
        "selected": sum(r.n_selected for r in rounds),
        "verified": sum(r.n_dft_done for r in rounds),
        "dft_failed": sum(r.n_dft_failed for r in rounds),
        "on_hull": sum(r.n_new_on_hull for r in rounds),
        "confirmed": sum((r.verdicts or {}).get("confirmed", 0) for r in rounds),
        "provisional": sum((r.verdicts or {}).get("provisional", 0) for r in rounds),
        "missing_competitors": sorted({m["formula"] for r in rounds for c in (r.verdicts or {}).get("candidates", [])
                                       for m in c.get("missing", [])}),
        "hit_rate_per_round": [r.hit_rate for r in rounds],
    }


def result_name(verifier: str, preset: str | None) -> str:
    if preset:
        return f"campaign_preset_{preset}"
    return "campaign_matrix" if verifier == "ml" else f"campaign_matrix_{verifier}"


def summarise(results: dict[str, Any], verifier: str, wall_s: float, preset: str | None = None) -> None:
    rows = list(results.values())
    completed = [r for r in rows if r["outcome"] == "completed"]
    walls = sorted(r["wall_s"] for r in completed if r["wall_s"] is not None)
    metrics = {
        "campaigns": len(rows),
        "completed_fraction": round(len(completed) / len(rows), 3) if rows else None,
        "failed": [f"{r['space']}: {r['error']}" for r in rows if r["outcome"] != "completed"],
        "median_wall_s": walls[len(walls) // 2] if walls else None,
        "verified_total": sum(r["verified"] for r in rows),
        "verifiers": sorted({r["settings"]["dft_backend"] for r in rows}),
        "confirmed_total": sum(r["confirmed"] for r in rows),
        "provisional_total": sum(r["provisional"] for r in rows),
    }
    baseline = {
        "what": "main before this change (generation started a process pool inside the Celery task)",
        "measured": "not re-run here; the campaigns issue reports K-Zn-F failing in round 0 at generate on the quick "
                    "start's prefork worker ('daemonic processes are not allowed to have children'), and every "
                    "campaign with 4+ compositions or 250+ parents with it",
    }
    write_result(result_name(verifier, preset), metrics, baseline, None, extra={
        "settings": {"common": COMMON, "workers": "gnomon.processes.celery_processes (prefork, 2 + 2 processes)",
                     "seed_datasets": list(SEED_DATASETS)},
        "wall_seconds": round(wall_s, 1),
        "campaigns": results,
    })


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--verifier", choices=("ml", "gpaw"), default="ml")
    parser.add_argument("--only", nargs="+", choices=sorted(MATRIX), help="run these element spaces only")
    parser.add_argument("--preset", help="run this built-in campaign (e.g. demo) instead of the matrix; results go "
                                         "to campaign_preset_<name>.json")
    parser.add_argument("--resume", action="store_true", help="keep campaigns already in the results file")
    parser.add_argument("--fresh-database", action="store_true", help="drop and re-seed the benchmark database")
    parser.add_argument("--timeout", type=float, default=1800, help="seconds each campaign may take")
    options = parser.parse_args()

    var = ROOT / "var" / f"bench-matrix-{options.verifier}"
    env = benchmark_env(sibling_database_url("BENCH_MATRIX_DATABASE", "gnomon_matrix"),
                        os.environ.get("BENCH_MATRIX_BROKER", "redis://127.0.0.1:6379/11"), var)
    name = result_name(options.verifier, options.preset)
    path = RESULTS_DIR / f"{name}.json"
    results: dict[str, Any] = {}
    if options.resume and path.exists():
        results = json.loads(path.read_text()).get("campaigns", {})

    started = time.monotonic()
    prepare(env, options.fresh_database)
    from benchmarks.common import setup_django

    setup_django()
    from discovery.models import Campaign

    with quickstart_processes(env, var):
        for space in [f"preset:{options.preset}"] if options.preset else (options.only or list(MATRIX)):
            settings = campaign_settings(space, options.verifier)
            if options.resume and results.get(space, {}).get("settings") == settings:
                log(f"{space}: kept from the earlier run")
                continue
            Campaign.objects.filter(name=settings["name"]).delete()
            config = var / f"{space}.toml"
            config.write_text(toml(settings))
            log(f"campaign {space}")
            run, wall_s = launch(config, env, options.timeout)
            row = {"space": space, "chemistry": MATRIX[space][0] if space in MATRIX else "preset", "settings": settings,
                   "launch_exit_code": run.returncode, "launch_wall_s": wall_s,
                   "launch_output_tail": (run.stdout + run.stderr)[-600:], **collect(settings["name"])}
            results[space] = row
            log(f"{space}: {row['outcome']} in {row['wall_s']} s; generated {row['generated']}, verified "
                f"{row['verified']}" + (f"; {row['error']}" if row["error"] else ""))
            summarise(results, options.verifier, time.monotonic() - started, options.preset)
    summarise(results, options.verifier, time.monotonic() - started, options.preset)
    log(f"results in {path}")


if __name__ == "__main__":
    main()
