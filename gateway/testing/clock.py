"""A clock that moves only when a test says so (implements `gateway.clock.Clock`).

    clock = FakeClock()
    watcher = Watcher(..., clock=clock)      # or a Lane, a RateLimiter, a CircuitBreaker, a Simulator
    await clock.advance(5.0)                 # every sleep and wait due within those 5 s returns, in order

It is also a plain `() -> float` callable, which is what the simulators take as their clock.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

#: the wall time a FakeClock starts at unless told otherwise
EPOCH = datetime(2026, 1, 1, tzinfo=UTC)


class FakeClock:
    def __init__(self, start: float = 1000.0, *, wall: datetime = EPOCH) -> None:
        self.t = float(start)
        self._wall0 = wall
        self._start = float(start)
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._seq = itertools.count()

    def __call__(self) -> float:
        return self.t

    def now(self) -> datetime:
        return self._wall0 + timedelta(seconds=self.t - self._start)

    def _timer(self, seconds: float) -> asyncio.Future[None]:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if seconds <= 0:
            future.set_result(None)
        else:
            heapq.heappush(self._sleepers, (self.t + seconds, next(self._seq), future))
        return future

    async def sleep(self, seconds: float) -> None:
        await self._timer(seconds)

    async def wait(self, event: asyncio.Event, seconds: float) -> bool:
        if event.is_set():
            return True
        timer: asyncio.Future[Any] = self._timer(seconds)
        waiter: asyncio.Future[Any] = asyncio.ensure_future(event.wait())
        try:
            await asyncio.wait([timer, waiter], return_when=asyncio.FIRST_COMPLETED)
        finally:
            waiter.cancel()
            timer.cancel()
        return event.is_set()

    @property
    def sleepers(self) -> int:
        """How many sleeps and waits are pending on this clock."""
        return sum(1 for _, _, f in self._sleepers if not f.done())

    async def advance(self, seconds: float) -> None:
        """Move time forward, waking every sleeper due on the way in time order; lets woken tasks run."""
        target = self.t + max(0.0, seconds)
        while self._sleepers and self._sleepers[0][0] <= target:
            due, _, future = heapq.heappop(self._sleepers)
            self.t = max(self.t, due)
            if not future.done():
                future.set_result(None)
                await settle()
        self.t = target
        await settle()


async def settle(rounds: int = 5) -> None:
    """Let ready tasks run a few loop iterations (what a woken sleeper does next)."""
    for _ in range(rounds):
        await asyncio.sleep(0)
