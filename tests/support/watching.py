"""Driving the gateway's watcher on a FakeClock against the live simulators, and reading what it asked when.

demo = await fake.make(poll={...})            # the watch tests' `fake` fixture: the real app, watcher on a FakeClock
await fake.advance(2.0)                       # fake time moves; every poll that came due has finished
[r.at for r in fake.log.status_reads(task)]   # the fake time of each vendor status request for that job
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from gateway.server.keys import GATEWAY
from gateway.testing.clock import FakeClock
from support.demo import Demo
from support.waiting import wait_until

#: the fake clock moves in steps of this many seconds: an exact binary fraction, so that every poll interval the
#: tests configure (multiples of it) lands exactly on a step and the schedule never drifts
STEP_S = 0.25


@dataclass(frozen=True)
class VendorRequest:
    at: float
    method: str
    path: str
    status: int


@dataclass
class VendorLog:
    """Every vendor request the simulators answered (control calls left out), stamped with the fake time."""

    clock: FakeClock
    requests: list[VendorRequest] = field(default_factory=list)

    @web.middleware
    async def middleware(self, request: web.Request, handler: Callable[[web.Request], Awaitable[Any]]) -> Any:
        at = self.clock()
        response = await handler(request)
        if "/__sim__/" not in request.path:
            self.requests.append(VendorRequest(at, request.method, request.path, response.status))
        return response

    def status_reads(self, fragment: str) -> list[VendorRequest]:
        """The GETs whose path holds `fragment` (e.g. a vendor job id)."""
        return [r for r in self.requests if r.method == "GET" and fragment in r.path]


@dataclass
class FakeWatch:
    clock: FakeClock
    log: VendorLog
    #: `await make(**make_demo_options)`: a demo gateway whose watcher runs on `clock` (set by the fixture)
    make: Callable[..., Awaitable[Demo]] = field(init=False)
    demos: list[Demo] = field(default_factory=list)

    async def polls_finished(self) -> None:
        """Wait (real I/O to the simulators) until no watcher has a vendor poll in flight. The watcher offers no
        public view of that: this reads `Watcher._inflight`."""
        watchers = [demo.app[GATEWAY].watcher for demo in self.demos]
        await wait_until(lambda: not any(w._inflight for w in watchers), what="the watcher's polls to finish")

    async def advance(self, seconds: float) -> None:
        """Move fake time forward step by step; after each step, let every poll that came due finish."""
        steps = round(seconds / STEP_S)
        assert abs(steps * STEP_S - seconds) < 1e-9, f"advance by multiples of {STEP_S} s"
        for _ in range(steps):
            await self.clock.advance(STEP_S)
            await self.polls_finished()

    async def advance_until(self, predicate: Callable[[], bool], *, within: float = 30.0) -> float:
        """Advance step by step until `predicate()` holds (at most `within` fake seconds); the fake time then."""
        for _ in range(round(within / STEP_S)):
            if predicate():
                return self.clock()
            await self.advance(STEP_S)
        assert predicate(), f"not true within {within:g} fake seconds"
        return self.clock()
