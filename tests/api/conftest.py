"""Fixtures for API tests: live in-process simulators and the gateway app on a temp store."""

from __future__ import annotations

import pytest

from support.demo import make_demo


@pytest.fixture
async def demo(aiohttp_client, sim_server, tmp_path):
    d = await make_demo(aiohttp_client, sim_server, tmp_path)
    yield d
    await d.session.close()
