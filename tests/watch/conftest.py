"""Fixtures for watch tests: the demo gateway on a FakeClock whose schedule the test drives (`fake`); on the system
clock it is the shared `new_demo`."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp.test_utils import TestServer

from gateway.sim.server import build_simulator_app
from gateway.testing.clock import FakeClock
from support.demo import Demo, make_demo
from support.watching import FakeWatch, VendorLog


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
