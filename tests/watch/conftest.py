"""Fixtures for watch tests: the API demo wiring (simulators live), on the system clock (`make`) or on a FakeClock
whose schedule the test drives (`fake`)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from aiohttp.test_utils import TestServer

from gateway.sim.server import build_simulator_app
from gateway.testing.clock import FakeClock
from support.demo import Demo, make_demo
from support.watching import FakeWatch, VendorLog


@pytest.fixture
async def make(aiohttp_client, sim_server, tmp_path) -> AsyncIterator[Callable[..., Awaitable[Demo]]]:
    """Build a demo gateway with poll overrides: `await make(poll={...})`."""
    made: list[Demo] = []

    async def build(**changes: Any) -> Demo:
        demo = await make_demo(aiohttp_client, sim_server, tmp_path, **changes)
        made.append(demo)
        return demo

    yield build
    for demo in made:
        await demo.session.close()


@pytest.fixture
async def fake(aiohttp_client, tmp_path) -> AsyncIterator[FakeWatch]:
    """The simulators live (their vendor requests logged at fake time) and `await fake.make(poll={...})` building
    a demo gateway whose watcher runs on the fake clock."""
    clock = FakeClock()
    log = VendorLog(clock)
    app = build_simulator_app(step_s=3600.0)
    app.middlewares.append(log.middleware)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    watch = FakeWatch(clock, log)

    async def build(**changes: Any) -> Demo:
        demo = await make_demo(aiohttp_client, server, tmp_path, clock=clock, **changes)
        watch.demos.append(demo)
        return demo

    watch.make = build
    try:
        yield watch
    finally:
        for demo in watch.demos:
            await demo.session.close()
        await server.close()
