"""The access log: one INFO line per request on the `gateway.access` logger, made cheaply.

`Logger.info` looks up its caller's frame and file name for every record; an access line needs neither, and at
thousands of requests a second that lookup and the record's generic set-up are a large share of a cached read.
`access_log` builds the line only when the level is on and hands the logging system a ready record whose static
fields are filled once per process. Handlers, formatters and filters are the operator's, as for any logger."""

from __future__ import annotations

import logging
import os
import threading
import time
from typing import Any

log = logging.getLogger("gateway.access")
_STARTED: float = logging._startTime  # type: ignore[attr-defined]
_thread_names: dict[int, str] = {}


def _thread_name(ident: int) -> str:
    name = _thread_names[ident] = threading.current_thread().name
    return name


class AccessRecord(logging.LogRecord):
    """A LogRecord with every standard attribute, set without a caller lookup or path handling."""

    _static: dict[str, Any] = {
        "name": log.name,
        "args": (),
        "levelname": "INFO",
        "levelno": logging.INFO,
        "pathname": __file__,
        "filename": os.path.basename(__file__),
        "module": "access",
        "exc_info": None,
        "exc_text": None,
        "stack_info": None,
        "lineno": 0,
        "funcName": "access_log",
        "processName": "MainProcess",
        "process": os.getpid(),
        "taskName": None,
    }

    def __init__(self, message: str) -> None:  # the base __init__ is deliberately not called (see the module doc)
        now = time.time()
        ident = threading.get_ident()
        self.__dict__.update(
            self._static,
            msg=message,
            created=now,
            msecs=int((now - int(now)) * 1000) + 0.0,
            relativeCreated=(now - _STARTED) * 1000,
            thread=ident,
            threadName=_thread_names.get(ident) or _thread_name(ident),
        )


def access_log(request_id: str, method: str, route: str, status: str, seconds: float, tenant: str) -> None:
    """`request_id=... method=... route=... status=... duration_ms=... tenant=...` when INFO is on: written
    straight by the `gateway serve` access handler when it is the logger's only one, else as a LogRecord."""
    if not log.isEnabledFor(logging.INFO):
        return
    line = (
        f"request_id={request_id} method={method} route={route} status={status} "
        f"duration_ms={seconds * 1000:.1f} tenant={tenant}"
    )
    handlers = log.handlers
    if len(handlers) == 1 and not log.propagate and not log.filters:
        handler = handlers[0]
        write_line = getattr(handler, "write_line", None)
        if write_line is not None and not handler.filters:
            write_line(line)
            return
    log.handle(AccessRecord(line))
