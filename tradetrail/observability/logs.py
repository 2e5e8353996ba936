"""Structured logs: ``TRADETRAIL_LOG_FORMAT=json`` writes one JSON object per line, each carrying the
execution and the step it was logged under (the executor sets both around each step; a thread starts with
neither). The default stays the plain text format."""

from __future__ import annotations

import json
import logging
import sys
from contextvars import ContextVar
from datetime import UTC, datetime

EXECUTION_ID: ContextVar[str | None] = ContextVar("tradetrail_execution_id", default=None)
STEP: ContextVar[str | None] = ContextVar("tradetrail_step", default=None)

# The attributes every LogRecord has; anything else on a record came from ``extra=`` and is kept.
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime", "taskName"}


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time (UTC, ISO 8601), level, logger, message, process, thread, the
    execution id and step when set, the exception's traceback, and any ``extra`` fields."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {"time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
                 "level": record.levelname, "logger": record.name, "message": record.getMessage(),
                 "process": record.process, "thread": record.threadName}
        execution, step = EXECUTION_ID.get(), STEP.get()
        if execution is not None:
            entry["execution_id"] = execution
        if step is not None:
            entry["step"] = step
        for key, value in vars(record).items():
            if key not in _STANDARD and key not in entry:
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            entry["exception"] = record.exc_text
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return json.dumps(entry, default=str, ensure_ascii=False)


# The loggers a server or worker writes through besides the root (they have handlers of their own).
SERVER_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access", "celery", "celery.task")


def use_json(logger: logging.Logger | None = None, level: str | None = None) -> None:
    """Every handler of ``logger`` (default: the root, plus the server's own loggers) writes JSON; a root
    without handlers gets one on stderr."""
    loggers = [logger] if logger is not None else [logging.getLogger(),
                                                   *(logging.getLogger(n) for n in SERVER_LOGGERS)]
    root = logging.getLogger()
    if logger is None and not root.handlers:
        root.addHandler(logging.StreamHandler(sys.stderr))
    if level is not None and logger is None:
        root.setLevel(level.upper())
    formatter = JsonFormatter()
    for each in loggers:
        for handler in each.handlers:
            handler.setFormatter(formatter)


def configure(settings, logger: logging.Logger | None = None) -> None:
    """Apply ``TRADETRAIL_LOG_FORMAT``: JSON when asked; text leaves the logging as the process set it up."""
    if settings.log_format == "json":
        use_json(logger, settings.log_level if logger is None else None)
