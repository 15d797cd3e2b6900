"""Container health checks (docker/compose.yaml): exit 0 when healthy, 1 otherwise, one line of explanation.

    python docker/healthcheck.py http URL      # web (/healthz: database + broker) and flower (/healthcheck)
    python docker/healthcheck.py worker NODE   # a Celery worker answers a ping addressed to its node name
    python docker/healthcheck.py beat          # a `celery beat` process runs here and the broker answers

Kept light: the http check imports nothing from Gnomon; worker and beat import only the Celery app.
"""

from __future__ import annotations

import os
import sys
import urllib.request
from pathlib import Path


def check_http(url: str) -> str:
    # Plain HTTP on loopback: /healthz is answered before the HTTPS redirect and host validation.
    with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 - fixed loopback URL from compose
        return f"{url} answered {response.status}"


def _broker_answers() -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gnomon.settings")
    import django

    django.setup()
    from gnomon.health import check_broker

    check_broker()


def check_worker(node: str) -> str:
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gnomon.settings")
    import django

    django.setup()
    from gnomon.celery import app

    replies = app.control.ping(destination=[node], timeout=5)
    if not replies:
        raise RuntimeError(f"worker {node} did not answer a ping")
    return f"worker {node} answered"


def check_beat() -> str:
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            argv = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"celery" in b" ".join(argv) and b"beat" in argv:
            _broker_answers()
            return f"celery beat running (pid {proc.name}), broker answers"
    raise RuntimeError("no celery beat process")


def main(argv: list[str]) -> int:
    try:
        if argv[:1] == ["http"] and len(argv) == 2:
            message = check_http(argv[1])
        elif argv[:1] == ["worker"] and len(argv) == 2:
            message = check_worker(argv[1])
        elif argv == ["beat"]:
            message = check_beat()
        else:
            print(__doc__, file=sys.stderr)
            return 2
    except Exception as exc:  # noqa: BLE001 - any failure is "unhealthy", with its reason
        print(f"unhealthy: {type(exc).__name__}: {exc}")
        return 1
    print(f"healthy: {message}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
