#!/usr/bin/env python
"""The quick start: one command from a fresh checkout to a running Gnomon.

Uses the configured PostgreSQL/Redis (``DATABASE_URL``, ``CELERY_BROKER_URL``) or starts private ones (see
``gnomon.embedded``), migrates, loads the seed catalog, computes hulls, starts a Celery worker, Celery beat and the web
server, runs the demo campaign when the campaign engine is installed, and stops everything cleanly on Ctrl-C.

``--smoke`` does the same with a small slice of the seed data, checks that the web server answers and that the worker
answers a ping, runs the one-round ``smoke`` campaign (CHGNet as the verifier) to completion, then shuts down: CI runs
it to prove the embedded path works on a fresh machine.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
PYTHON = sys.executable


def log(message: str) -> None:
    print(f"==> {message}", flush=True)


class Children:
    """Long-running child processes, each in its own session so that stopping one stops its whole tree."""

    def __init__(self) -> None:
        self.procs: list[tuple[str, subprocess.Popen]] = []

    def start(self, name: str, args: list[str]) -> subprocess.Popen:
        log(f"starting {name}: {' '.join(args)}")
        proc = subprocess.Popen(args, cwd=ROOT, start_new_session=True)
        self.procs.append((name, proc))
        return proc

    def check_alive(self) -> None:
        for name, proc in self.procs:
            if proc.poll() is not None:
                raise SystemExit(f"{name} exited with code {proc.returncode}; see its output above")

    def stop_all(self) -> None:
        for name, proc in reversed(self.procs):
            if proc.poll() is None:
                log(f"stopping {name}")
                os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + 20
        for _name, proc in self.procs:
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


def manage(*args: str) -> None:
    log("manage.py " + " ".join(args))
    subprocess.run([PYTHON, "manage.py", *args], cwd=ROOT, check=True)


def wait_for_http(url: str, timeout: float = 60) -> int:
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 - our own loopback server
                return response.status
        except Exception as exc:  # noqa: BLE001 - keep polling until the server is up
            last_error = exc
            time.sleep(0.5)
    raise SystemExit(f"web server did not answer at {url}: {last_error}")


def ping_worker(timeout: float = 60) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gnomon.settings")
    import django

    django.setup()
    from gnomon.celery import app

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        replies = app.control.ping(timeout=2)
        if replies:
            log(f"worker answered: {replies}")
            return
    raise SystemExit("the Celery worker did not answer a ping")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, default=int(os.environ.get("GNOMON_PORT", "8000")))
    parser.add_argument("--smoke", action="store_true", help="small data, check everything answers, then stop")
    parser.add_argument("--no-campaign", action="store_true", help="skip the demo campaign")
    options = parser.parse_args()

    var_dir = Path(os.environ.get("GNOMON_VAR_DIR", ROOT / "var")).resolve()
    os.environ["GNOMON_VAR_DIR"] = str(var_dir)
    shared_data = ROOT.parent / "shared" / "data"
    if "GNOMON_DATA_DIR" not in os.environ and shared_data.is_dir():
        os.environ["GNOMON_DATA_DIR"] = str(shared_data)

    from gnomon.embedded import start_postgres, start_redis

    children = Children()
    embedded_pg = None
    redis_proc = None

    def on_signal(signum, _frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_signal)
    try:
        if not os.environ.get("DATABASE_URL"):
            log(f"DATABASE_URL unset: starting a private PostgreSQL in {var_dir / 'pgdata'}")
            os.environ["DATABASE_URL"], embedded_pg = start_postgres(var_dir, stop_at_exit=True)
        if not os.environ.get("CELERY_BROKER_URL"):
            log(f"CELERY_BROKER_URL unset: starting a private Redis on {var_dir / 'redis.sock'}")
            os.environ["CELERY_BROKER_URL"], redis_proc = start_redis(var_dir)

        manage("migrate", "--noinput")
        seed_args = ["load_seed"] + (["--limit", "200"] if options.smoke else [])
        database_tag = hashlib.sha1(os.environ["DATABASE_URL"].encode(), usedforsecurity=False).hexdigest()[:10]
        hulls_built = var_dir / f"seed-hulls-{database_tag}.done"  # per database: another DATABASE_URL starts afresh
        if hulls_built.exists():  # later starts: load_seed adds nothing new, or updates just the hulls it touches
            manage(*seed_args)
        else:  # first start: load everything, then build every hull once (faster than system by system)
            manage(*seed_args, "--no-hulls")
            manage("recompute_hulls")
            hulls_built.parent.mkdir(parents=True, exist_ok=True)
            hulls_built.write_text("seed hulls built; delete this file to rebuild them on the next start\n")
        manage("collectstatic", "--noinput", "-v", "0")

        from gnomon.processes import celery_processes

        # The production layout (docker/compose.yaml): orchestration, generation chunks and sweeps on one worker, DFT
        # on another, so that recovering a lost DFT job never waits for a DFT slot.
        for name, argv in celery_processes(PYTHON, str(var_dir / "celerybeat-schedule")):
            children.start(name, argv)
        children.start(
            "web",
            [PYTHON, "-m", "gunicorn", "gnomon.wsgi", "-b", f"127.0.0.1:{options.port}", "-w", "2", "--timeout", "120"],
        )
        status = wait_for_http(f"http://127.0.0.1:{options.port}/admin/login/")
        log(f"web server answers ({status}) at http://127.0.0.1:{options.port}/")
        ping_worker()

        launch = ROOT / "discovery" / "management" / "commands" / "launch_campaign.py"
        if not options.no_campaign and launch.exists():
            if options.smoke:  # CI: the campaign must finish (generate → screen → verify → fold) on this machine
                manage("launch_campaign", "--preset", "smoke", "--wait", "--timeout", "900", "--min-verified", "1")
            else:
                manage("launch_campaign", "--preset", "demo")

        if options.smoke:
            children.check_alive()
            log("smoke check passed")
            return
        log(f"Gnomon is running at http://127.0.0.1:{options.port}/ — press Ctrl-C to stop everything")
        while True:
            children.check_alive()
            time.sleep(1)
    except KeyboardInterrupt:
        log("Ctrl-C: shutting down")
    finally:
        children.stop_all()
        if redis_proc is not None:
            redis_proc.terminate()
            redis_proc.wait(timeout=10)
        if embedded_pg is not None:
            embedded_pg.cleanup()
        log("all stopped")


if __name__ == "__main__":
    main()
