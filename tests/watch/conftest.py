"""Fixtures for watch tests: the API demo wiring (simulators live) with adjustable poll settings."""

from __future__ import annotations

import pytest

from support.demo import make_demo


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
