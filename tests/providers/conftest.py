"""Provider tests: each test_<name>_client.py defines a `harness` fixture (`await vendor(name, ...)`); these give
its parts by name."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiohttp.test_utils import TestClient

from gateway.sim.base import Simulator
from gateway.testing.clock import FakeClock
from gateway.testing.harness import VendorHarness
from gateway.vendor_http import VendorConnection


@pytest.fixture
def sim(harness: VendorHarness) -> Simulator:
    """The module's provider's simulator (its jobs, stats and faults)."""
    return harness.sim


@pytest.fixture
def clock(harness: VendorHarness) -> FakeClock:
    """The clock the simulator reads: `await clock.advance(s)` moves its jobs on."""
    return harness.clock


@pytest.fixture
def conn(harness: VendorHarness) -> VendorConnection:
    return harness.conn


@pytest.fixture
async def client(harness: VendorHarness) -> AsyncIterator[TestClient]:
    """A plain HTTP client to the simulator's server (paths include the simulator's prefix)."""
    async with TestClient(harness.server) as client:
        yield client
