"""Structured logging: one JSON object per line (or readable text), each carrying the request id or the Celery task id.

- ``request_id`` comes from :class:`RequestIdMiddleware`: the incoming ``X-Request-ID`` header when it is a sane token
  (so a proxy's id follows the request through Gnomon), else a fresh uuid; it is echoed in the response header.
- ``task_id`` / ``task_name`` are set by Celery's ``task_prerun`` signal and cleared by ``task_postrun``. A task queued
  while a request is being served carries that request's id in a message header, so its log lines name both.
- :func:`build_logging_config` returns the ``LOGGING`` dict for settings; ``GNOMON_LOG_FORMAT`` is ``json`` or ``text``.

This module imports no Django at import time: ``gnomon.settings`` imports it.
"""

from __future__ import annotations

import contextvars
import datetime as dt
import json
import logging
import re
import time
import traceback
import uuid
from typing import Any

from celery.signals import before_task_publish, setup_logging, task_postrun, task_prerun

request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("gnomon_request_id", default=None)
task_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("gnomon_task_id", default=None)
task_name_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("gnomon_task_name", default=None)

REQUEST_ID_HEADER = "X-Request-ID"
REQUEST_ID_MESSAGE_HEADER = "gnomon_request_id"  # Celery message header carrying the enqueuing request's id
_SANE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:@/+=-]{1,128}$")
LOG_FORMATS = ("json", "text")

# Attributes every LogRecord has; anything else on a record came from ``extra=`` and goes into the JSON object.
_RECORD_ATTRS = frozenset(vars(logging.LogRecord("x", logging.INFO, "x", 0, "x", None, None))) | {
    "message",
    "asctime",
    "request_id",
    "task_id",
    "task_name",
    "taskName",
    "request",  # django.request attaches the HttpRequest itself
    "server_time",
}


def clean_request_id(value: str | None) -> str:
    """The incoming id when it is a short token of safe characters, else a new random one."""
    if value and _SANE_REQUEST_ID.match(value):
        return value
    return uuid.uuid4().hex


class ContextFilter(logging.Filter):
    """Adds ``request_id``, ``task_id`` and ``task_name`` (or None) to every record passing through a handler."""

    def filter(self, record: logging.LogRecord) -> bool:
        # Django logs 4xx/5xx responses (django.request) after the middleware returned; the request is on the record.
        record.request_id = request_id_var.get() or getattr(getattr(record, "request", None), "request_id", None)
        record.task_id = task_id_var.get()
        record.task_name = task_name_var.get()
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (UTC, ISO 8601), level, logger, message, ids, extras, exception."""

    def format(self, record: logging.LogRecord) -> str:
        payload: dict[str, Any] = {
            "time": dt.datetime.fromtimestamp(record.created, tz=dt.UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", None) or request_id_var.get(),
            "task_id": getattr(record, "task_id", None) or task_id_var.get(),
            "task_name": getattr(record, "task_name", None) or task_name_var.get(),
            "process": record.process,
        }
        for key, value in vars(record).items():
            if key not in _RECORD_ATTRS and not key.startswith("_") and key not in payload:
                payload[key] = value
        if record.exc_info:
            payload["exc_type"] = record.exc_info[0].__name__ if record.exc_info[0] else None
            payload["exc"] = "".join(traceback.format_exception(*record.exc_info)).rstrip()
        elif record.exc_text:
            payload["exc"] = record.exc_text
        if record.stack_info:
            payload["stack"] = record.stack_info
        return json.dumps(payload, default=str, ensure_ascii=False)


TEXT_FORMAT = "%(asctime)s %(levelname)-7s %(name)s [req=%(request_id)s task=%(task_id)s] %(message)s"


def build_logging_config(log_format: str = "text", level: str = "INFO") -> dict[str, Any]:
    """The ``LOGGING`` dict: one stderr handler, JSON or text, ids on every line; Django's and Celery's loggers propagate."""
    log_format = log_format.strip().lower()
    if log_format not in LOG_FORMATS:
        raise ValueError(f"GNOMON_LOG_FORMAT must be one of {', '.join(LOG_FORMATS)}, not {log_format!r}")
    formatter: dict[str, Any] = (
        {"()": "gnomon.logging.JsonFormatter"} if log_format == "json" else {"format": TEXT_FORMAT}
    )
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"context": {"()": "gnomon.logging.ContextFilter"}},
        "formatters": {"gnomon": formatter},
        "handlers": {
            "console": {"class": "logging.StreamHandler", "formatter": "gnomon", "filters": ["context"]},
        },
        "root": {"handlers": ["console"], "level": level.upper()},
        "loggers": {
            # Django's own handlers would print a second, unformatted copy; everything goes through the root handler.
            "django": {"handlers": [], "level": level.upper(), "propagate": True},
            "django.server": {"handlers": [], "propagate": True},
            "celery": {"level": level.upper()},
            "gunicorn.error": {"handlers": [], "propagate": True},
            # One line per request comes from RequestIdMiddleware (with the request id); gunicorn's would repeat it.
            "gunicorn.access": {"handlers": [], "propagate": False},
        },
    }


class RequestIdMiddleware:
    """Binds a request id for the duration of a request, echoes it as ``X-Request-ID`` and logs one line per request."""

    logger = logging.getLogger("gnomon.request")

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        request_id = clean_request_id(request.headers.get(REQUEST_ID_HEADER))
        request.request_id = request_id
        token = request_id_var.set(request_id)
        started = time.perf_counter()
        try:
            response = self.get_response(request)
            response[REQUEST_ID_HEADER] = request_id
            self.logger.info(
                "%s %s %s",
                request.method,
                request.path,
                response.status_code,
                extra={
                    "method": request.method,
                    "path": request.path,
                    "status": response.status_code,
                    "duration_ms": round((time.perf_counter() - started) * 1000, 1),
                },
            )
            return response
        finally:
            request_id_var.reset(token)


# --- Celery -----------------------------------------------------------------------------------------------------------
# Connected at import; gnomon.celery imports this module so that every worker, beat and web process has them.

_task_tokens: dict[str, tuple[contextvars.Token, contextvars.Token, contextvars.Token]] = {}


@before_task_publish.connect(weak=False)
def _add_request_id_header(headers: dict | None = None, **_kwargs) -> None:
    """A task queued while serving a request (or running a task) carries the originating request id."""
    request_id = request_id_var.get()
    if headers is not None and request_id and REQUEST_ID_MESSAGE_HEADER not in headers:
        headers[REQUEST_ID_MESSAGE_HEADER] = request_id


@task_prerun.connect(weak=False)
def _bind_task_context(task_id: str | None = None, task=None, **_kwargs) -> None:
    request_id = getattr(getattr(task, "request", None), REQUEST_ID_MESSAGE_HEADER, None) if task else None
    if request_id is None and task is not None:
        request_id = (getattr(task.request, "headers", None) or {}).get(REQUEST_ID_MESSAGE_HEADER)
    _task_tokens[task_id or ""] = (
        task_id_var.set(task_id),
        task_name_var.set(getattr(task, "name", None)),
        request_id_var.set(request_id),
    )


@task_postrun.connect(weak=False)
def _unbind_task_context(task_id: str | None = None, **_kwargs) -> None:
    tokens = _task_tokens.pop(task_id or "", None)
    if tokens is None:
        return
    for var, token in zip((task_id_var, task_name_var, request_id_var), tokens, strict=True):
        try:
            var.reset(token)
        except ValueError:  # token from another context (eager tasks inside a request); just clear
            var.set(None)


@setup_logging.connect(weak=False)
def _celery_uses_django_logging(**_kwargs) -> None:
    """Celery workers and beat log through settings.LOGGING (same format and ids) instead of Celery's own set-up."""
    import logging.config

    from django.conf import settings

    logging.config.dictConfig(settings.LOGGING)
