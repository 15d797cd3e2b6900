"""Blind rediscovery: hide a chemical system from the catalog, let a real campaign search it, compare with MP.

For each system given on the command line (``Li-O``, ``K-Mg-Cl``, any elements):

1. on a database of its own (``BENCH_REDISCOVERY_DATABASE``, default ``gnomon_rediscovery``, seeded once with the
   shared datasets: the GPAW bootstrap set, the aviary and perov_5 structures, MP's elemental references and MP's
   composition table of Bartel et al. 2020), every crystal and every reference row of the system and of its
   subsystems is deleted, except the elements; the hulls of every scheme are rebuilt;
2. a real campaign runs on that system with the quick start's own processes (prefork Celery workers, beat): GPAW,
   the cheap ``fast`` protocol, both pipelines (structural and compositional), a stated budget
   (``--rounds`` × ``--dft-per-round`` candidates, plus the elemental references and the competing phases it queues);
3. its confirmed verdicts are compared with the Materials Project (the Bartel et al. 2020 Ed table, read from the
   file, since the database no longer holds the system):

- ``recall``: MP-stable compositions (Ed ≤ 0, reduced formula of at most 10 atoms) of the system and its subsystems
  that the campaign confirmed stable, over all such compositions;
- ``precision``: confirmed-stable compositions that MP calls stable or puts within 25 meV/atom of its hull, over
  confirmed-stable compositions with an MP entry; those without one are counted apart as ``novel``;
- ``dft_jobs`` (every job: candidates, references, competitors) and ``cpu_hours`` (job wall time × 1 core: GPAW runs
  serially), per system and in total.

Results accumulate per system in ``benchmarks/results/rediscovery.json``; a system already there with the same
settings is skipped, so a long run continues where it stopped (``--redo`` runs it again).

Caveat, stated in the result: the compositional pipeline ranks compositions with a ridge model trained once on the
Bartel Ef table, which includes the hidden systems' formation energies; the structural pipeline and the screening
ensemble never see them.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/gnomon .venv/bin/python benchmarks/rediscovery.py Li-O Mg-Cl
"""

from __future__ import annotations

import argparse
import csv
import itertools
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.campaign_matrix import (  # noqa: E402
    benchmark_env,
    launch,
    log,
    manage,
    prepare,
    quickstart_processes,
    toml,
)
from benchmarks.common import RESULTS_DIR, ROOT, data_dir, write_result  # noqa: E402
from benchmarks.synthetic_catalog import sibling_database_url  # noqa: E402

NAME = "rediscovery"
PATH = RESULTS_DIR / f"{NAME}.json"
PRECISION_WINDOW_EV = 0.025  # eV/atom: MP's Ed up to this counts as "stable or nearly" for precision
MAX_FORMULA_ATOMS = 10  # recall counts MP-stable compositions with reduced formulas up to this many atoms
DEFAULT_SYSTEMS = ("Li-O", "Mg-Cl", "K-Mg-F")  # cheap elements for GPAW on 2 cores; K-Mg-F has two MP-stable ternaries


def subsystems(system: str) -> list[str]:
    """Every chemical system of two or more of the system's elements, sorted names ('Cl-Mg')."""
    elements = sorted(system.split("-"))
    return ["-".join(c) for n in range(2, len(elements) + 1) for c in itertools.combinations(elements, n)]


def mp_table(system: str) -> dict[str, float]:
    """Reduced formula → MP decomposition energy Ed (eV/atom, ≤ 0 on the hull) of every composition inside the
    system (Bartel et al. 2020, train and test splits)."""
    from pymatgen.core import Composition

    wanted = set(subsystems(system))
    out: dict[str, float] = {}
    for split in ("train", "test"):
        with open(data_dir() / "bartel2020_mp_stability" / "Ed" / f"{split}.csv", newline="") as handle:
            for row in csv.DictReader(handle):
                comp = Composition(row["formula"])
                if comp.chemical_system in wanted:
                    out[comp.reduced_formula] = float(row["target"])
    return out


def settings_for(system: str, options) -> dict[str, Any]:
    elements = sorted(system.split("-"))
    ternary_or_more = len(elements) >= 3
    return {
        "name": f"rediscover-{system}",
        "elements": elements,
        "max_elements": len(elements),
        "pipelines": ["structural", "compositional"],
        "rounds": options.rounds or (4 if ternary_or_more else 3),
        "candidates_per_round": 200,
        "dft_per_round": options.dft_per_round or (6 if ternary_or_more else 3),
        "ensemble_size": 2,
        "epochs": 10,
        "kappa": 1.0,
        "kappa_final": 0.0,
        "max_predicted_e_above_hull": 0.3,
        # A binary has one chemical system: its cap is the round's picks; one pick per formula spreads them over
        # compositions (first runs spent every pick on Li2O2/Li2O3 polymorphs and never verified Li2O).
        "cap_per_chemsys": 2 if ternary_or_more else options.dft_per_round or 3,
        "cap_per_formula": 1,
        "max_atoms": options.max_atoms,
        "max_competitor_jobs": 6 if ternary_or_more else 2,
        "dft_backend": "gpaw",
        "dft_preset": "fast",
    }


def hide(system: str, env: dict[str, str]) -> dict[str, int]:
    """Delete the system's and its subsystems' crystals and reference rows (elements kept); rebuild the hulls."""
    from django.db import transaction

    from catalog.models import EnergyRecord, Material

    systems = subsystems(system)
    with transaction.atomic():
        n_rows, _ = EnergyRecord.objects.filter(chemsys__in=systems).delete()
        n_materials, _ = Material.objects.filter(chemsys__in=systems).delete()
    manage(env, "recompute_hulls")
    return {"deleted_energy_rows": n_rows, "deleted_material_rows": n_materials}


def stop_if_running(campaign_name: str) -> bool:
    """Cancel a campaign that outlived ``--timeout`` (its queued and running jobs with it), as its owner would; the
    result row records that it was cut short. Returns whether it had to."""
    from django.contrib.auth import get_user_model

    from discovery.models import Campaign
    from discovery.services.campaigns import cancel_campaign

    campaign = Campaign.objects.get(name=campaign_name)
    if campaign.status not in (Campaign.Status.QUEUED, Campaign.Status.RUNNING, Campaign.Status.PAUSED):
        return False
    staff, _ = get_user_model().objects.get_or_create(username="benchmark", defaults={"is_staff": True})
    cancel_campaign(campaign, user=staff)
    return True


def measure(system: str, campaign_name: str, mp: dict[str, float]) -> dict[str, Any]:
    """The campaign's confirmed verdicts in the system against MP's Ed table."""
    from django.db.models import Q
    from pymatgen.core import Composition

    from catalog.models import HullEntry
    from catalog.verdicts import CONFIRMED, stability_verdicts
    from discovery.models import Campaign, DFTJob
    from discovery.services.dft import scheme_for

    campaign = Campaign.objects.get(name=campaign_name)
    scheme = scheme_for("gpaw", "fast")
    entries = list(HullEntry.objects.filter(scheme=scheme, chemsys__in=subsystems(system), status=HullEntry.Status.OK,
                                            energy_record__excluded_reason="")
                   .select_related("energy_record", "scheme"))
    verdicts = stability_verdicts(entries)
    confirmed_stable, provisional_stable = set(), set()
    for entry in entries:
        verdict = verdicts[entry.pk]
        formula = Composition(entry.energy_record.composition).reduced_formula
        if verdict.on_hull:
            (confirmed_stable if verdict.state == CONFIRMED else provisional_stable).add(formula)
    computed = sorted({Composition(e.energy_record.composition).reduced_formula for e in entries})
    mp_stable = sorted(f for f, ed in mp.items() if ed <= 0 and Composition(f).num_atoms <= MAX_FORMULA_ATOMS)
    found = sorted(set(mp_stable) & confirmed_stable)
    with_entry = sorted(f for f in confirmed_stable if f in mp)
    right = sorted(f for f in with_entry if mp[f] <= PRECISION_WINDOW_EV)
    jobs = list(DFTJob.objects.filter(  # its candidates, the competitors it queued, the references computed meanwhile
        Q(candidate__round__campaign=campaign) | Q(competitor_for=campaign)
        | Q(is_reference=True, created_at__gte=campaign.created_at)).only("state", "wall_time_s"))
    wall = sum(j.wall_time_s or 0.0 for j in jobs)
    return {
        "system": system,
        "campaign_status": campaign.status,
        "campaign_error": campaign.error,
        "mp_stable": mp_stable,
        "mp_stable_found": found,
        "recall": round(len(found) / len(mp_stable), 3) if mp_stable else None,
        "confirmed_stable": sorted(confirmed_stable),
        "provisional_stable": sorted(provisional_stable),
        "confirmed_stable_in_mp": with_entry,
        "confirmed_stable_mp_agrees": right,
        "precision": round(len(right) / len(with_entry), 3) if with_entry else None,
        "novel": sorted(confirmed_stable - set(mp)),
        "computed_compositions": computed,
        "mp_ed_of_computed": {f: round(mp[f], 4) for f in computed if f in mp},
        "dft_jobs": len(jobs),
        "dft_jobs_by_state": {s: sum(j.state == s for j in jobs) for s in sorted({j.state for j in jobs})},
        "cpu_hours": round(wall / 3600, 3),
    }


def summarise(runs: dict[str, Any], started_wall: float) -> None:
    if PATH.exists():  # another run (other systems, another database) may have written meanwhile: keep its systems
        earlier = json.loads(PATH.read_text()).get("metrics", {}).get("per_system", {})
        runs = {**{k: v for k, v in earlier.items() if k not in runs}, **runs}
    systems = [s for s in runs if runs[s].get("recall") is not None or runs[s].get("precision") is not None]
    found = sum(len(runs[s]["mp_stable_found"]) for s in systems)
    total = sum(len(runs[s]["mp_stable"]) for s in systems)
    right = sum(len(runs[s]["confirmed_stable_mp_agrees"]) for s in systems)
    judged = sum(len(runs[s]["confirmed_stable_in_mp"]) for s in systems)
    metrics = {
        "systems": sorted(runs),
        "recall": round(found / total, 3) if total else None,
        "recall_n": f"{found}/{total} MP-stable compositions (pooled over systems)",
        "precision": round(right / judged, 3) if judged else None,
        "precision_n": f"{right}/{judged} confirmed-stable compositions with an MP entry (pooled)",
        "novel": sum(len(runs[s]["novel"]) for s in runs),
        "dft_jobs": sum(runs[s]["dft_jobs"] for s in runs),
        "cpu_hours": round(sum(runs[s]["cpu_hours"] for s in runs), 3),
        "per_system": runs,
        "protocol": "GPAW fast (discovery/dft/presets.py), both pipelines",
        "caveat": "the compositional pipeline's ridge ranking model was trained on the Bartel Ef table, hidden "
                  "systems included; structures, reference rows and the screening ensemble's data exclude them",
        "goals": {"precision": 0.8, "recall": 0.5, "max_dft_jobs_binary": 15, "max_dft_jobs_ternary": 40},
    }
    baseline = {"random_guess": "none: MP is the reference, not a baseline method"}
    write_result(NAME, metrics, baseline, None, extra={"wall_s_this_run": round(time.monotonic() - started_wall)})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("systems", nargs="*", default=list(DEFAULT_SYSTEMS),
                        help=f"chemical systems, e.g. Li-O K-Mg-Cl (default: {' '.join(DEFAULT_SYSTEMS)})")
    parser.add_argument("--rounds", type=int, help="default 3 for binaries, 4 for larger systems")
    parser.add_argument("--dft-per-round", type=int, help="default 3 for binaries, 6 for larger systems")
    parser.add_argument("--max-atoms", type=int, default=8)
    parser.add_argument("--timeout", type=float, default=4 * 3600, help="seconds each campaign may take")
    parser.add_argument("--redo", action="store_true", help="run systems again that the results already hold")
    parser.add_argument("--fresh-database", action="store_true", help="drop and re-seed the benchmark database")
    parser.add_argument("--measure-only", action="store_true",
                        help="launch nothing: measure the systems' campaigns as they stand (a run cut short is "
                             "recorded with its campaign status and what it verified so far)")
    options = parser.parse_args()
    from pymatgen.core import Composition

    systems = ["-".join(sorted(Composition("".join(s.split("-"))).chemical_system.split("-"))) for s in options.systems]

    var = Path(os.environ.get("BENCH_REDISCOVERY_VAR", ROOT / "var" / "bench-rediscovery"))  # one per database
    env = benchmark_env(sibling_database_url("BENCH_REDISCOVERY_DATABASE", "gnomon_rediscovery"),
                        os.environ.get("BENCH_REDISCOVERY_BROKER", "redis://127.0.0.1:6379/13"), var)
    runs: dict[str, Any] = {}
    if PATH.exists():
        runs = json.loads(PATH.read_text()).get("metrics", {}).get("per_system", {})
    started = time.monotonic()
    if options.measure_only:
        manage(env, "migrate", "--noinput", "-v", "0")
        from benchmarks.common import setup_django

        setup_django()
        from discovery.models import Campaign

        for system in systems:
            settings = settings_for(system, options)
            campaign = Campaign.objects.filter(name=settings["name"]).first()
            if campaign is None:
                log(f"{system}: no campaign in {env['DATABASE_URL'].rsplit('/', 1)[1]}")
                continue
            row = measure(system, settings["name"], mp_table(system))
            row.update({"settings": campaign.config, "note": "measured as it stood (--measure-only)"})
            runs[system] = row
            log(f"{system}: {row['campaign_status']}; recall {row['recall']}, precision {row['precision']}, "
                f"{row['dft_jobs']} DFT jobs")
        summarise(runs, started)
        return
    prepare(env, options.fresh_database, seed_existing=False)  # seeded once; hide() edits it per system
    from benchmarks.common import setup_django

    setup_django()
    from discovery.models import Campaign

    with quickstart_processes(env, var):
        for system in systems:
            settings = settings_for(system, options)
            if not options.redo and runs.get(system, {}).get("settings") == settings \
                    and runs[system].get("campaign_status") == "completed":
                log(f"{system}: kept from an earlier run")
                continue
            log(f"{system}: hiding it from the catalog")
            hidden = hide(system, env)
            Campaign.objects.filter(name=settings["name"]).delete()
            config = var / f"{system}.toml"
            config.write_text(toml(settings))
            log(f"{system}: campaign {settings['name']}")
            run, wall_s = launch(config, env, options.timeout)
            stopped = stop_if_running(settings["name"])  # past --timeout: its jobs must not run on into the next system
            row = measure(system, settings["name"], mp_table(system))
            row["cancelled_at_timeout"] = stopped
            row.update({"settings": settings, "hidden": hidden, "wall_s": wall_s,
                        "launch_exit_code": run.returncode, "launch_output_tail": (run.stdout + run.stderr)[-600:]})
            runs[system] = row
            log(f"{system}: recall {row['recall']}, precision {row['precision']}, {row['dft_jobs']} DFT jobs, "
                f"{row['cpu_hours']} CPU h; confirmed stable {row['confirmed_stable']}")
            summarise(runs, started)
    summarise(runs, started)
    log(f"results in {PATH}")


if __name__ == "__main__":
    main()
