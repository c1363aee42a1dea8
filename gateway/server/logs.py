"""The log output of `gateway serve`: one line per record on stderr, written through a buffer.

At thousands of requests a second the access log is most of what a cached read costs beyond aiohttp itself:
formatting the time of every record, and one write system call per line (stderr is line-buffered). This
handler formats the time once per millisecond, queues access lines as they are (a deque append: no lock, no
encoding per line) and writes them joined, in order with the other records, through a 64 KiB buffer. The
buffer is flushed at once for warnings and errors, and otherwise at least every `FLUSH_EVERY_S` (a timer on the
event loop) and at exit. Embedders of the gateway configure logging as they like; nothing else depends on this
module."""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
import sys
import time
from collections import deque
from collections.abc import AsyncIterator
from typing import TextIO

FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"
ACCESS_LOGGER = "gateway.access"
FLUSH_EVERY_S = 0.5
#: queued access lines are written out once this many wait (between two timer flushes)
QUEUED_LINES = 512


class SecondCachedFormatter(logging.Formatter):
    """`logging.Formatter` whose `asctime` text is made once per second (its milliseconds once per millisecond),
    not once per record."""

    def __init__(self, fmt: str = FORMAT) -> None:
        super().__init__(fmt)
        self._second = -1
        self._text = ""
        self._milli = -1
        self._stamp = ""

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        return self.stamp(record.created)

    def stamp(self, created: float) -> str:
        """`asctime` of a record made at `created` (time.time())."""
        milli = int(created * 1000)
        if milli != self._milli:
            second = milli // 1000
            if second != self._second:
                self._second = second
                self._text = time.strftime("%Y-%m-%d %H:%M:%S", self.converter(created))
            self._milli = milli
            self._stamp = f"{self._text},{milli - second * 1000:03d}"
        return self._stamp


class BufferedStreamHandler(logging.StreamHandler[TextIO]):
    """A StreamHandler that leaves flushing to `flush_now` (called by a timer), except for warnings and errors;
    `queue` takes ready lines (the access log's), written before the next record and at each flush."""

    def __init__(self, stream: TextIO) -> None:
        super().__init__(stream)
        #: ready lines not yet written (deque: appended without the lock from any thread, taken under it)
        self.queued: deque[str] = deque()

    def queue(self, line: str) -> None:
        """Write `line` (ending in a newline) with the next record or flush: its order among records is kept."""
        self.queued.append(line)
        if len(self.queued) >= QUEUED_LINES:
            with self.lock:  # type: ignore[union-attr]
                self._write_queued()

    def _write_queued(self) -> None:
        """Write the queued lines (the caller holds the lock): as many as there are now, oldest first."""
        queued = self.queued
        if queued:
            take = queued.popleft
            self.stream.write("".join([take() for _ in range(len(queued))]))

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self._write_queued()  # (`Handler.handle` holds the lock)
            self.stream.write(self.format(record) + self.terminator)
            if record.levelno >= logging.WARNING:
                self.stream.flush()
        except RecursionError:
            raise
        except Exception:
            self.handleError(record)

    def flush_now(self) -> None:
        with contextlib.suppress(Exception):
            self.acquire()
            try:
                self._write_queued()
                self.stream.flush()
            finally:
                self.release()


class AccessLineHandler(logging.Handler):
    """The handler `configure` gives the `gateway.access` logger: the same output as every other record (FORMAT,
    through the buffered stream), and `write_line`, with which `gateway.server.access` writes a request's line
    without building a LogRecord at all (the one line per request is the hottest log path)."""

    def __init__(self, sink: BufferedStreamHandler, formatter: SecondCachedFormatter) -> None:
        super().__init__(logging.INFO)
        self.sink = sink
        self.setFormatter(formatter)
        self._queue, self._stamp = sink.queue, formatter.stamp  # (bound once: `write_line` runs per request)

    def emit(self, record: logging.LogRecord) -> None:
        self.sink.emit(record)

    def write_line(self, message: str) -> None:
        """Write one INFO line of the `gateway.access` logger, formatted as FORMAT would (queued: see the sink)."""
        self._queue(f"{self._stamp(time.time())} INFO gateway.access {message}\n")


def configure(level: int = logging.INFO) -> BufferedStreamHandler:
    """Log every record at `level` and above to stderr through the buffered handler; returns it."""
    stream = io.TextIOWrapper(
        io.BufferedWriter(io.FileIO(sys.stderr.fileno(), "w", closefd=False), 65536),
        encoding="utf-8",
        errors="backslashreplace",
    )
    handler = BufferedStreamHandler(stream)
    formatter = SecondCachedFormatter()
    handler.setFormatter(formatter)
    logging.basicConfig(level=level, handlers=[handler], force=True)
    access = logging.getLogger(ACCESS_LOGGER)
    for old in list(access.handlers):
        access.removeHandler(old)
    access.addHandler(AccessLineHandler(handler, formatter))
    access.propagate = False  # its lines go out once, through its own handler
    return handler


@contextlib.asynccontextmanager
async def flushing(handler: BufferedStreamHandler) -> AsyncIterator[None]:
    """Flush the handler every FLUSH_EVERY_S while the block runs, and once more at its end."""

    async def tick() -> None:
        while True:
            await asyncio.sleep(FLUSH_EVERY_S)
            handler.flush_now()

    task = asyncio.create_task(tick(), name="gateway-log-flush")
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        handler.flush_now()
