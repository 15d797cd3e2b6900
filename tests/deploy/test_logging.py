"""Structured logging: JSON lines with request and task ids; X-Request-ID honoured and echoed."""

from __future__ import annotations

import json
import logging

import pytest

from gnomon.logging import (
    ContextFilter,
    JsonFormatter,
    build_logging_config,
    clean_request_id,
    request_id_var,
    task_id_var,
)


def _format(record: logging.LogRecord) -> dict:
    ContextFilter().filter(record)
    return json.loads(JsonFormatter().format(record))


def test_json_line_carries_ids_extras_and_exceptions():
    token_r, token_t = request_id_var.set("req-1"), task_id_var.set("task-1")
    try:
        try:
            raise ValueError("boom")
        except ValueError:
            import sys

            record = logging.getLogger("gnomon.x").makeRecord(
                "gnomon.x", logging.ERROR, __file__, 1, "failed %s", ("here",), sys.exc_info(), extra={"material": 42}
            )
        line = _format(record)
    finally:
        request_id_var.reset(token_r)
        task_id_var.reset(token_t)
    assert line["message"] == "failed here"
    assert line["level"] == "ERROR" and line["logger"] == "gnomon.x"
    assert line["request_id"] == "req-1" and line["task_id"] == "task-1"
    assert line["material"] == 42
    assert line["exc_type"] == "ValueError" and "boom" in line["exc"]
    assert line["time"].endswith("+00:00")


def test_request_id_validation():
    assert clean_request_id("abc-123_X.y") == "abc-123_X.y"
    for bad in (None, "", "x" * 500, "has space", "new\nline", "<script>"):
        generated = clean_request_id(bad)
        assert generated != bad and len(generated) == 32


def test_build_logging_config_formats():
    assert build_logging_config("json")["formatters"]["gnomon"] == {"()": "gnomon.logging.JsonFormatter"}
    assert "request_id" in build_logging_config("TEXT", "debug")["formatters"]["gnomon"]["format"]
    assert build_logging_config("text", "debug")["root"]["level"] == "DEBUG"
    with pytest.raises(ValueError, match="GNOMON_LOG_FORMAT"):
        build_logging_config("yaml")


@pytest.mark.django_db
def test_middleware_honours_and_echoes_x_request_id(client, caplog):
    caplog.set_level(logging.INFO, logger="gnomon.request")
    response = client.get("/healthz", HTTP_X_REQUEST_ID="from-the-proxy-7")
    assert response["X-Request-ID"] == "from-the-proxy-7"
    record = next(r for r in caplog.records if r.name == "gnomon.request")
    assert record.status == 200 and record.path == "/healthz"
    assert _format(record)["request_id"] is None  # the context is reset once the request is done...
    assert request_id_var.get() is None


@pytest.mark.django_db
def test_request_id_is_bound_while_the_request_runs(client, caplog):
    caplog.set_level(logging.INFO)
    handler_lines: list[dict] = []

    class Capture(logging.Handler):
        def emit(self, record):
            ContextFilter().filter(record)
            handler_lines.append(json.loads(JsonFormatter().format(record)))

    capture = Capture()
    logging.getLogger("gnomon.request").addHandler(capture)
    try:
        response = client.get("/healthz", HTTP_X_REQUEST_ID="bad id with spaces")
    finally:
        logging.getLogger("gnomon.request").removeHandler(capture)
    generated = response["X-Request-ID"]
    assert generated != "bad id with spaces" and len(generated) == 32
    assert handler_lines[-1]["request_id"] == generated  # ...but every line logged during it carries the id
    assert handler_lines[-1]["status"] == 200
