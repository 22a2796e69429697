"""Service logging: a request id and the file being handled on every line, in every stage.

In the gateway the interceptor binds ``request_id`` and ``method`` for the duration of
an RPC and the upload handler adds ``project`` and ``file`` once it has read the
header; in the converter and loader the handler of a bus event binds ``request_id``
(the event's message id), ``upload_id`` (the gateway upload that produced the file),
``project`` and ``file``. The fields live in context variables, so any ``log.info`` on
the handler's thread carries them without passing them around. ``--log-format json``
prints one JSON object per line (for Cloud Logging / Loki), ``text`` a readable line
with the same fields appended.
"""

from __future__ import annotations

import contextvars
import json
import logging
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from rvcloud.backends.bus.base import Message

_fields: contextvars.ContextVar[dict[str, str]] = contextvars.ContextVar("rvcloud_log_fields", default={})  # noqa: B039 -- never mutated, only replaced


def current_fields() -> dict[str, str]:
    return _fields.get()


def bind(**fields: str) -> None:
    """Add fields to every later log line of this RPC (this context)."""
    _fields.set({**_fields.get(), **fields})


@contextmanager
def scope(**fields: str) -> Iterator[None]:
    """Fields for the duration of a block (one RPC); restored afterwards."""
    token = _fields.set({**fields})
    try:
        yield
    finally:
        _fields.reset(token)


def event_fields(msg: Message) -> dict[str, str]:
    """The log fields of a bus event: its id as the request id, the upload and the file."""
    d = msg.data
    return {
        "request_id": msg.id,
        "upload_id": str(d.get("upload_id", "")),
        "project": str(d.get("project", "")),
        "file": str(d.get("filename", "")),
    }


class _ContextFilter(logging.Filter):
    """Copies the context fields onto each record (handlers may run formatting later)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.rv_fields = current_fields()
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, context fields, exception."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "severity": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        out.update(getattr(record, "rv_fields", None) or {})
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    def __init__(self, process: str = "gateway") -> None:
        super().__init__(f"%(asctime)s {process} %(levelname)s %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        extra = getattr(record, "rv_fields", None) or {}
        if extra:
            text += " [" + " ".join(f"{k}={v}" for k, v in extra.items()) + "]"
        return text


def setup_logging(fmt: str = "text", level: int = logging.INFO, process: str = "gateway") -> None:
    """Configure the root logger of a stage process (``fmt`` is text or json)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter(process))
    handler.addFilter(_ContextFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
