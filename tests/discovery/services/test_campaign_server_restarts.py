"""Fault injection: restart Redis, then PostgreSQL, in the middle of a campaign run by a real worker.

A Redis restart loses every queued and unacknowledged message (this Redis keeps nothing on disk); a PostgreSQL restart
cuts every connection, the worker's in the middle of a DFT job included. The campaign must still complete, with
nothing lost or duplicated: its state lives in PostgreSQL, beat re-sends what is pending, DFT jobs retry on
connection errors, and unique constraints refuse duplicates.

These tests restart the machine's own servers (PostgreSQL on 127.0.0.1:5432 and Redis on 127.0.0.1:6379, as on CI),
which needs root and cuts off everyone else using them: set ``GNOMON_SKIP_SERVER_RESTARTS=1`` to skip them on a
shared machine.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from urllib.parse import urlparse

import pytest
from django.conf import settings
from django.db import connection

from discovery.models import Campaign, CampaignRound
from discovery.services.campaigns import create_campaign
from tests.discovery import campaign_support as support
from tests.discovery.services.test_campaign_end_to_end import TINY

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def _why_not() -> str | None:
    if os.environ.get("GNOMON_SKIP_SERVER_RESTARTS") == "1":
        return "GNOMON_SKIP_SERVER_RESTARTS=1"
    if os.geteuid() != 0:
        return "restarting the machine's PostgreSQL and Redis needs root"
    if not (shutil.which("pg_ctlcluster") and shutil.which("redis-cli") and shutil.which("redis-server")):
        return "pg_ctlcluster, redis-cli or redis-server not found"
    db = connection.settings_dict
    if (db["HOST"] or "") not in ("127.0.0.1", "localhost") or str(db["PORT"] or 5432) != "5432":
        return "the test database is not the machine's PostgreSQL on 127.0.0.1:5432"
    broker = urlparse(settings.CELERY_BROKER_URL)
    if broker.scheme != "redis" or broker.hostname not in ("127.0.0.1", "localhost") or (broker.port or 6379) != 6379:
        return "the broker is not the machine's Redis on 127.0.0.1:6379"
    return None


def _answers(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False


def _wait_port(port: int, up: bool, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if _answers(port) == up:
            return
        time.sleep(0.2)
    raise AssertionError(f"port {port} did not go {'up' if up else 'down'} within {timeout} s")


# Settings read off the running Redis before it is stopped and given back to the new one, so that it comes back as
# it was (a config file may say otherwise: Debian's enables RDB snapshots that a Redis without a writable directory
# then refuses writes over).
REDIS_SETTINGS = ("port", "bind", "protected-mode", "save", "appendonly", "dir", "dbfilename", "databases",
                  "maxmemory", "maxmemory-policy", "stop-writes-on-bgsave-error", "requirepass")


def _redis_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["redis-cli", "-h", "127.0.0.1", "-p", "6379", *args], check=False, capture_output=True,
                          text=True, timeout=30)


def running_redis_arguments() -> list[str]:
    """``redis-server`` arguments that reproduce the running server's settings (multi-word values split)."""
    args = ["--daemonize", "yes"]
    for name in REDIS_SETTINGS:
        lines = _redis_cli("config", "get", name).stdout.splitlines()
        if len(lines) < 2:
            continue
        value = lines[1]
        args.append(f"--{name}")
        args.extend(value.split() if name in ("bind", "save") and value else [value])
    return args


def restart_redis() -> None:
    """Stop without saving (queued messages are lost, as in a crash) and start again with the same settings."""
    arguments = running_redis_arguments()
    _redis_cli("shutdown", "nosave")
    _wait_port(6379, up=False)
    subprocess.run(["redis-server", *arguments], check=True, timeout=60)
    _wait_port(6379, up=True)
    deadline = time.monotonic() + 30
    while _redis_cli("set", "gnomon:restart-probe", "1").stdout.strip() != "OK":  # accepts writes again
        if time.monotonic() > deadline:
            raise AssertionError("Redis came back but refuses writes: " + _redis_cli("info", "persistence").stdout)
        time.sleep(0.2)
    _redis_cli("del", "gnomon:restart-probe")


def restart_postgres() -> None:
    subprocess.run(["pg_ctlcluster", "15", "main", "restart", "-m", "fast"], check=True, capture_output=True,
                   timeout=120)
    _wait_port(5432, up=True)
    connection.close()  # this process's connection died with the server; the next query reconnects


@pytest.fixture
def restartable():
    reason = _why_not()
    if reason:
        pytest.skip(reason)
    yield
    if not _answers(6379):  # never leave the machine without its servers
        subprocess.run(["redis-server", "--daemonize", "yes", "--port", "6379", "--bind", "127.0.0.1",
                        "--save", "", "--appendonly", "no"], check=False, timeout=60)
    if not _answers(5432):
        subprocess.run(["pg_ctlcluster", "15", "main", "start"], check=False, timeout=120)


def test_campaign_completes_across_redis_and_postgres_restarts(restartable, campaign_env):
    var, staff = campaign_env
    campaign = create_campaign({**TINY, "name": "restarts"}, user=staff, launch=True)
    log = var / "worker.log"
    worker = support.start_worker("restarts", log, var, dft_sleep=3, beat=True, extra_env=support.FAST_BEAT)
    try:
        support.wait_for(support.job_running(campaign), 300, "a DFT job of the campaign to run", log)
        restart_redis()  # mid-round: queued DFT messages and stage nudges are gone

        def second_round_started() -> bool:
            return CampaignRound.objects.filter(campaign=campaign, index=1).exists()

        support.wait_for(second_round_started, 300, "the campaign to move on after the Redis restart", log)
        campaign.refresh_from_db()
        assert campaign.status == Campaign.Status.RUNNING
        restart_postgres()  # in round 1: every connection cut, the worker's included
        support.wait_for(support.campaign_finished(campaign), 600, "the campaign to finish after both restarts", log)
    finally:
        support.stop(worker)

    support.assert_completed_cleanly(campaign, rounds=2)
