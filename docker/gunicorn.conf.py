"""Gunicorn settings for the web container; every value can be overridden with GUNICORN_CMD_ARGS or the env below.

Gunicorn's own log lines go through the same handler as Django's (JSON or text, see gnomon/logging.py); the per-request
access line comes from gnomon.logging.RequestIdMiddleware (with the request id), so gunicorn's access log stays off.
"""

import os

from gnomon.logging import build_logging_config

bind = os.environ.get("GNOMON_BIND", "0.0.0.0:8000")
workers = int(os.environ.get("GNOMON_WEB_WORKERS", "3"))
threads = int(os.environ.get("GNOMON_WEB_THREADS", "2"))
timeout = int(os.environ.get("GNOMON_WEB_TIMEOUT", "120"))
graceful_timeout = 30
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None  # noqa: S108 - gunicorn heartbeat in RAM (Docker)
accesslog = None
_debug = os.environ.get("GNOMON_DEBUG", "1").strip().lower() in {"1", "true", "yes", "on"}
logconfig_dict = build_logging_config(
    os.environ.get("GNOMON_LOG_FORMAT", "text" if _debug else "json"), os.environ.get("GNOMON_LOG_LEVEL", "INFO")
)
