"""Server-sent events (the WHATWG event-stream format) read from an aiohttp answer as they arrive."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import aiohttp

#: refuse a single line longer than this (a broken or hostile stream), rather than buffering it forever
MAX_LINE = 8 * 1024 * 1024


@dataclass(frozen=True)
class Event:
    id: str | None
    event: str
    data: str


class EventParser:
    """Feed it bytes; it gives back each complete event (comments and unknown fields ignored)."""

    def __init__(self) -> None:
        self._buffer = b""
        self._data: list[str] = []
        self._event = ""
        self._id: str | None = None

    def feed(self, chunk: bytes) -> list[Event]:
        self._buffer += chunk
        events: list[Event] = []
        while True:
            end = self._buffer.find(b"\n")
            if end < 0:
                if len(self._buffer) > MAX_LINE:
                    raise ValueError("an event-stream line is longer than the client accepts")
                return events
            line = self._buffer[:end].rstrip(b"\r").decode("utf-8", "replace")
            self._buffer = self._buffer[end + 1 :]
            event = self._line(line)
            if event is not None:
                events.append(event)

    def _line(self, line: str) -> Event | None:
        if not line:
            if not self._data:
                self._event = ""
                return None
            event = Event(self._id, self._event or "message", "\n".join(self._data))
            self._data, self._event = [], ""
            return event
        if line.startswith(":"):
            return None
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._event = value
        elif name == "id" and "\0" not in value:
            self._id = value
        return None


async def read_events(resp: aiohttp.ClientResponse) -> AsyncIterator[Event]:
    """Each event of the answer, in order, until the server ends the stream."""
    parser = EventParser()
    async for chunk in resp.content.iter_any():
        for event in parser.feed(chunk):
            yield event
