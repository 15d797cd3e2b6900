"""Scale-out by queue: a real worker started with only ``-Q dft`` runs DFT tasks and never receives screening tasks.

The worker is a separate ``python -m celery -A gnomon worker`` process on the configured broker and on pytest-django's
test database (``transactional_db``, so it sees committed data), killed with its process group afterwards.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from urllib.parse import quote

import pytest
from django.conf import settings
from django.db import connection

from gnomon.celery import app
from gnomon.logging import request_id_var
from gnomon.testing_tasks import DFT_PROBE, SCREEN_PROBE, run_dft_deploy_probe, screen_deploy_probe

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def _database_url() -> str:
    db = connection.settings_dict
    auth = quote(db["USER"] or "", safe="")
    if db.get("PASSWORD"):
        auth += ":" + quote(db["PASSWORD"], safe="")
    host = db["HOST"] or "localhost"
    if host.startswith("/"):  # unix socket directory (the embedded PostgreSQL)
        return f"postgres://{auth}@/{db['NAME']}?host={quote(host, safe='')}" + (
            f"&port={db['PORT']}" if db.get("PORT") else ""
        )
    return f"postgres://{auth}@{host}:{db['PORT'] or 5432}/{db['NAME']}"


def _queue_length(queue: str) -> int:
    with app.connection_for_write() as conn:
        return conn.default_channel.client.llen(queue)


def _purge(*queues: str) -> None:
    with app.connection_for_write() as conn:
        for queue in queues:
            conn.default_channel.client.delete(queue)


@pytest.fixture
def dft_only_worker(transactional_db, tmp_path):
    """A real worker consuming only the ``dft`` queue; yields (node name, log path)."""
    if not settings.CELERY_BROKER_URL.startswith(("redis://", "rediss://", "redis+socket://", "unix://")):
        pytest.skip("queue inspection below speaks Redis")
    _purge("dft", "screening")
    node = f"dft-probe-{uuid.uuid4().hex[:8]}@%h"
    log_path = tmp_path / "worker.log"
    env = {
        **os.environ,
        "DATABASE_URL": _database_url(),
        "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
        "CELERY_RESULT_BACKEND": settings.CELERY_RESULT_BACKEND,
        "GNOMON_LOG_FORMAT": "json",
        "DJANGO_SETTINGS_MODULE": "gnomon.settings",
    }
    cmd = [sys.executable, "-m", "celery", "-A", "gnomon", "worker", "-Q", "dft", "-c", "1", "-n", node]
    cmd += ["--include", "gnomon.testing_tasks", "--without-gossip", "--without-mingle", "-l", "INFO"]
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        expanded = node.replace("%h", __import__("socket").gethostname())
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                pytest.fail(f"worker exited ({proc.returncode}):\n{log_path.read_text()[-4000:]}")
            if app.control.ping(destination=[expanded], timeout=1):
                break
        else:
            pytest.fail(f"worker did not answer a ping:\n{log_path.read_text()[-4000:]}")
        yield expanded, log_path
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        _purge("dft", "screening")


def test_routes_come_from_settings():
    router = app.amqp.router
    assert router.route({}, SCREEN_PROBE)["queue"].name == "screening"
    assert router.route({}, DFT_PROBE)["queue"].name == "dft"
    assert router.route({}, "catalog.tasks.anything")["queue"].name == settings.CELERY_TASK_DEFAULT_QUEUE == "default"


def test_dft_only_worker_never_receives_screening_tasks(dft_only_worker):
    node, log_path = dft_only_worker

    token = request_id_var.set("req-deploy-test")
    try:
        screening = screen_deploy_probe.delay()
        dft = run_dft_deploy_probe.delay()
    finally:
        request_id_var.reset(token)

    report = dft.get(timeout=60)
    assert report["routing_key"] == "dft"
    assert report["hostname"] == node
    assert report["database"] == connection.settings_dict["NAME"]  # the worker works on the test database
    assert report["task_id_in_log_context"] == dft.id
    assert report["request_id_in_log_context"] == "req-deploy-test"  # the enqueuing request's id travelled along

    # No sleep: let the worker fetch once more. A second DFT probe, sent after the screening message had waited a whole
    # task's round trip, must come back while the screening message still waits: a worker that also listened on
    # "screening" would have taken the older message first. Then look everywhere it could be.
    assert run_dft_deploy_probe.delay().get(timeout=60)["routing_key"] == "dft"
    assert screening.state == "PENDING"
    assert _queue_length("screening") == 1, "the screening message must still wait in its queue"
    inspect = app.control.inspect(destination=[node], timeout=5)
    seen = [t for tasks in (inspect.active() or {}).values() for t in tasks]
    seen += [t for tasks in (inspect.reserved() or {}).values() for t in tasks]
    assert not [t for t in seen if t["id"] == screening.id]
    queues = {q["name"] for qs in (inspect.active_queues() or {}).values() for q in qs}
    assert queues == {"dft"}

    lines = [json.loads(line) for line in log_path.read_text().splitlines() if line.startswith("{")]
    probe_lines = [line for line in lines if line.get("message") == "deploy probe ran"]
    assert probe_lines, "the worker logs JSON lines"
    assert probe_lines[0]["task_id"] == dft.id
    assert probe_lines[0]["request_id"] == "req-deploy-test"
    assert probe_lines[0]["task_name"] == DFT_PROBE
    assert screening.id not in log_path.read_text()


def test_worker_healthcheck_pings_its_own_node(dft_only_worker):
    """What compose's worker health check runs: healthy for this node, unhealthy for a node that does not exist."""
    node, _log = dft_only_worker
    script = [sys.executable, str(ROOT / "docker" / "healthcheck.py"), "worker"]
    ok = subprocess.run([*script, node], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    missing = subprocess.run([*script, "nobody@nowhere"], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert missing.returncode == 1 and "did not answer" in missing.stdout
