"""What every installed provider's simulator shares (parametrized over `gateway.plugins.get_providers()`)."""

from __future__ import annotations

import time

import pytest

from gateway.plugins import get_providers
from gateway.sim.base import Simulator


def test_the_provider_builds_its_simulator_on_real_time(provider_name: str) -> None:
    provider = get_providers()[provider_name]
    sim = provider.simulator(0.25)
    if sim is None:
        pytest.skip(f"{provider_name} has no simulator")
    assert isinstance(sim, Simulator) and sim.step_s == 0.25
    assert sim.prefix == provider.sim_prefix and provider.sim_prefix
    # `gateway simulate` serves it as built: its jobs progress on the monotonic clock (tests inject a FakeClock)
    assert sim.clock is time.monotonic
