"""The container processes, run for real outside a container: entrypoint, gunicorn with docker/gunicorn.conf.py in
production mode, celery beat as its own process, and the health-check script each compose service uses."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.deploy.conftest import production_env
from tests.deploy.test_queue_routing import _database_url

ROOT = Path(__file__).resolve().parents[2]
ENTRYPOINT = str(ROOT / "docker" / "entrypoint.sh")
HEALTHCHECK = [sys.executable, str(ROOT / "docker" / "healthcheck.py")]
pytestmark = pytest.mark.slow


def venv_path_env(**overrides: str | None) -> dict[str, str]:
    """Production environment with this interpreter's bin directory first (the image puts /app/.venv/bin there)."""
    env = production_env(**overrides)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return env


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def stop(proc: subprocess.Popen, timeout: float = 30) -> int:
    """SIGTERM to the process group, as `docker stop` does; SIGKILL only if it does not exit in time."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            return proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            raise
    return proc.returncode


def wait_until(predicate, timeout: float, proc: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"process exited ({proc.returncode}):\n{log.read_text()[-4000:]}")
        if predicate():
            return
        time.sleep(0.5)
    pytest.fail(f"timed out:\n{log.read_text()[-4000:]}")


def test_entrypoint_waits_for_the_database_then_execs(transactional_db):
    env = venv_path_env(DATABASE_URL=_database_url())
    proc = subprocess.Popen(
        [ENTRYPOINT, "python", "-c", "import os; print('started', os.getpid())"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert out.split() == ["started", str(proc.pid)]  # exec: the command replaces the shell and receives signals


def test_entrypoint_gives_up_on_an_unreachable_database():
    env = venv_path_env(DATABASE_URL="postgres://postgres@127.0.0.1:1/none", GNOMON_WAIT_FOR_DB_SECONDS="1")
    result = subprocess.run([ENTRYPOINT, "true"], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert "PostgreSQL not reachable" in result.stderr


def test_entrypoint_migrates_and_collects_static_for_web(transactional_db, tmp_path):
    env = venv_path_env(DATABASE_URL=_database_url(), GNOMON_MIGRATE_ON_START="1")
    result = subprocess.run(
        [ENTRYPOINT, "python", "manage.py", "showmigrations", "--plan"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert "[X]" in result.stdout and "[ ]" not in result.stdout
    assert (ROOT / "staticfiles" / "admin").is_dir()


def test_web_container_process_serves_healthz_in_production_mode(transactional_db, tmp_path):
    port = free_port()
    log = tmp_path / "web.log"
    env = venv_path_env(DATABASE_URL=_database_url(), GNOMON_BIND=f"127.0.0.1:{port}", GNOMON_WEB_WORKERS="1")
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [ENTRYPOINT, "gunicorn", "gnomon.wsgi:application", "--config", "docker/gunicorn.conf.py"],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        url = f"http://127.0.0.1:{port}/healthz"

        def healthy() -> bool:
            return subprocess.run([*HEALTHCHECK, "http", url], env=env, capture_output=True).returncode == 0

        wait_until(healthy, 90, proc, log)
        result = subprocess.run([*HEALTHCHECK, "http", url], env=env, capture_output=True, text=True)
        assert result.stdout.startswith("healthy:")
    finally:
        assert stop(proc) == 0
    lines = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
    requests = [line for line in lines if line["logger"] == "gnomon.request"]
    assert requests and requests[-1]["path"] == "/healthz" and requests[-1]["status"] == 200
    assert requests[-1]["request_id"]
    assert any(line["logger"].startswith("gunicorn") for line in lines)  # gunicorn's own lines are JSON too
    assert not [line for line in log.read_text().splitlines() if 'HTTP/1.1"' in line]  # no second (gunicorn) access log


def test_http_healthcheck_fails_when_nothing_answers():
    result = subprocess.run(
        [*HEALTHCHECK, "http", f"http://127.0.0.1:{free_port()}/healthz"], capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 1 and result.stdout.startswith("unhealthy:")


def test_beat_runs_alone_and_stops_on_sigterm(tmp_path):
    log = tmp_path / "beat.log"
    env = venv_path_env()
    cmd = [sys.executable, "-m", "celery", "-A", "gnomon", "beat", "--schedule", str(tmp_path / "celerybeat-schedule")]
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_until(lambda: "beat: Starting" in log.read_text(), 90, proc, log)
        result = subprocess.run([*HEALTHCHECK, "beat"], env=env, capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stdout + result.stderr
    finally:
        started = time.monotonic()
        returncode = stop(proc, timeout=20)
    assert returncode == 0, log.read_text()[-2000:]
    assert time.monotonic() - started < 20


def test_image_build_collectstatic_step_needs_no_servers():
    """The Dockerfile collects static files at build time, with no database or broker running: run that exact step."""
    import re
    import shlex

    text = (ROOT / "docker" / "Dockerfile").read_text().replace("\\\n", " ")
    step = re.search(r"^RUN (.*?python manage\.py collectstatic[^&]*)", text, flags=re.M).group(1)
    words = shlex.split(step)
    assignments = dict(word.split("=", 1) for word in words[: words.index("python")])
    assert assignments["GNOMON_DEBUG"] == "1" and "DATABASE_URL" in assignments
    env = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/tmp"), **assignments}
    result = subprocess.run(
        [sys.executable, "manage.py", "collectstatic", "--noinput", "--dry-run", "-v", "1"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert result.returncode == 0, result.stderr
    assert "static file" in result.stdout
