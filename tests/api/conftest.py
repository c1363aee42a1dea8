"""Fixtures for API tests: live in-process simulators and the gateway app on a temp store."""

from __future__ import annotations

import pytest
from aiohttp.test_utils import TestServer
from demo_kit import make_demo

from gateway.sim.server import build_simulator_app


@pytest.fixture
async def sim_server():
    server = TestServer(build_simulator_app(step_s=3600.0), host="127.0.0.1")
    await server.start_server()
    yield server
    await server.close()


@pytest.fixture
async def demo(aiohttp_client, sim_server, tmp_path):
    d = await make_demo(aiohttp_client, sim_server, tmp_path)
    yield d
    await d.session.close()
