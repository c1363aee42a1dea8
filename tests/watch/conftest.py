"""Fixtures for watch tests: the API demo wiring (simulators live) with adjustable poll settings."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from aiohttp.test_utils import TestServer

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "api"))

from demo_kit import make_demo

from gateway.sim.server import build_simulator_app


@pytest.fixture
async def sim_server():
    server = TestServer(build_simulator_app(step_s=3600.0), host="127.0.0.1")
    await server.start_server()
    yield server
    await server.close()


@pytest.fixture
async def make(aiohttp_client, sim_server, tmp_path):
    """Build a demo gateway with poll overrides: `await make(poll={...})`."""
    made = []

    async def build(**changes):
        demo = await make_demo(aiohttp_client, sim_server, tmp_path, **changes)
        made.append(demo)
        return demo

    yield build
    for demo in made:
        await demo.session.close()
