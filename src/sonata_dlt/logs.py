"""Structured logs: one event per line, with the request id, party and bilateral when there is one."""

from __future__ import annotations

import json
import logging
import sys
from contextvars import ContextVar
from typing import Any

request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)
party_var: ContextVar[str | None] = ContextVar("party", default=None)
bilateral_var: ContextVar[str | None] = ContextVar("bilateral", default=None)

_STANDARD_ATTRS = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}


class _ContextFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id_var.get()
        record.party = party_var.get()
        record.bilateral = bilateral_var.get()
        return True


def _fields(record: logging.LogRecord) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "ts": f"{record.created:.3f}",
        "level": record.levelname.lower(),
        "logger": record.name,
        "event": record.getMessage(),
    }
    for key in ("request_id", "party", "bilateral"):
        value = getattr(record, key, None)
        if value:
            fields[key] = value
    for key, value in record.__dict__.items():
        if key not in _STANDARD_ATTRS and key not in fields and key not in ("request_id", "party", "bilateral"):
            fields[key] = value
    if record.exc_info:
        fields["exc"] = logging.Formatter().formatException(record.exc_info)
    return fields


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return json.dumps(_fields(record), default=str, separators=(",", ":"))


class KeyValueFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        def render(value: Any) -> str:
            text = str(value)
            return json.dumps(text) if (" " in text or "=" in text or '"' in text or not text) else text

        return " ".join(f"{key}={render(value)}" for key, value in _fields(record).items())


def configure_logging(fmt: str = "kv", level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else KeyValueFormatter())
    handler.addFilter(_ContextFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # Records carry nothing our formatters do not print: no caller lookup (a stack walk per record), thread or
    # process names (a getpid call per record). The logging manual's own "Optimization" advice; an access log
    # line per request made them measurable.
    logging._srcfile = None
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    # uvicorn's own access log would duplicate ours; its error log goes through the root handler.
    logging.getLogger("uvicorn.access").disabled = True
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
