"""`gateway simulate`: every installed provider's simulator in one aiohttp application."""

from __future__ import annotations

from aiohttp import web

from gateway.plugins import get_providers
from gateway.sim.base import Simulator

SIMULATORS = web.AppKey("simulators", dict[str, Simulator])


def build_simulator_app(step_s: float = 1.0) -> web.Application:
    """One app serving each provider's simulator under its prefix; the simulators are in app[SIMULATORS]."""
    root = web.Application()
    sims: dict[str, Simulator] = {}
    for name, provider in sorted(get_providers().items()):
        sim = provider.simulator(step_s)
        if sim is None or not provider.sim_prefix:
            continue
        sims[name] = sim
        root.add_subapp(provider.sim_prefix, sim.app())
    root[SIMULATORS] = sims
    return root
