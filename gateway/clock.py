"""Time, injected: the watcher, its lanes and the job operations read time through a `Clock`, so tests can
drive them with `gateway.testing.clock.FakeClock` instead of sleeping on wall time."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from typing import Protocol


def now_utc() -> datetime:
    """The current time as an aware UTC datetime."""
    return datetime.now(UTC)


class Clock(Protocol):
    """What the gateway needs of time: a monotonic reading (seconds), the wall time, and waiting."""

    def __call__(self) -> float:
        """Monotonic seconds (the scheduler's time line)."""
        ...

    def now(self) -> datetime:
        """The wall time, aware, in UTC."""
        ...

    async def sleep(self, seconds: float) -> None: ...

    async def wait(self, event: asyncio.Event, seconds: float) -> bool:
        """Until `event` is set or `seconds` pass on this clock; True when the event was set."""
        ...


async def wait_event(event: asyncio.Event, seconds: float) -> bool:
    """Wait for the event or the timeout; True when set. Unlike `wait_for(event.wait())` on Python 3.11,
    a cancellation arriving as the event is set is never swallowed (shutdown cannot hang): `asyncio.timeout`
    turns only its own cancellation into TimeoutError, and waits in the caller's task (no task per wait, which
    matters to the scheduler: it waits like this between every batch of due polls)."""
    if event.is_set():
        return True
    try:
        async with asyncio.timeout(max(0.0, seconds)):
            await event.wait()
    except TimeoutError:
        return event.is_set()
    return True


class SystemClock:
    """The real clock: `time.monotonic`, `datetime.now(UTC)`, `asyncio.sleep`."""

    #: (time.monotonic itself: read on every cached job read, so without a Python frame around it)
    __call__ = staticmethod(time.monotonic)

    def now(self) -> datetime:
        return now_utc()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))

    async def wait(self, event: asyncio.Event, seconds: float) -> bool:
        return await wait_event(event, seconds)


SYSTEM_CLOCK = SystemClock()
