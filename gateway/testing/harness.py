"""A provider wired to its live simulator over real HTTP, for testing the provider's I/O (plugin authors too).

    async with open_vendor(get_provider("camb")) as vendor:   # the simulator on a free loopback port
        ref = await vendor.provider.submit(vendor.conn, case.valid_input)
        await vendor.fault("http_429", retry_after_s=2)         # the next vendor request answers 429
        await vendor.clock.advance(5.0)                          # the simulator's jobs move on 5 s

The simulator runs on `aiohttp.test_utils.TestServer` (bound to port 0 by the server itself, so parallel test
processes never race for a port) and reads time from a `FakeClock`, which only moves when a test says so.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import web
from aiohttp.test_utils import TestServer

from gateway.provider import Provider
from gateway.sim.base import Simulator
from gateway.testing.clock import FakeClock
from gateway.vendor_http import VendorConnection

#: a sentinel for "the harness's own key" in `VendorHarness.connect`
_OWN_KEY: Any = object()

#: what a `vendor` fixture gives: `await vendor(name, **open_vendor_options)`
VendorFactory = Callable[..., Awaitable["VendorHarness"]]


def sim_key(provider: Provider) -> str:
    """The key the harness configures by default; every simulator accepts any non-empty key but `invalid`."""
    return f"sim-key-{provider.name}"


@dataclass
class VendorHarness:
    """One provider, its simulator live on loopback, the fake clock the simulator reads, and a connection."""

    provider: Provider
    sim: Simulator
    clock: FakeClock
    server: TestServer
    session: aiohttp.ClientSession
    #: the vendor key `conn` carries (None: the connection sends no key)
    key: str | None
    #: the connection every test starts with: the harness's key, default timeouts
    conn: VendorConnection = field(init=False)

    def __post_init__(self) -> None:
        self.conn = self.connect()

    @property
    def base_url(self) -> str:
        """Where the provider finds its vendor: the server root plus the simulator's prefix."""
        return str(self.server.make_url(self.provider.sim_prefix or "")).rstrip("/")

    def connect(self, key: str | None = _OWN_KEY, **config: Any) -> VendorConnection:
        """A new connection through the provider's own `connect`: another key (None: no key) or config keys
        (e.g. `timeout_s=0.05`); every other setting as in `conn`."""
        key = self.key if key is _OWN_KEY else key
        env = f"GATEWAY_HARNESS_{self.provider.name.upper()}_KEY"
        settings = self.provider.config_model.model_validate({"base_url": self.base_url, "api_key_env": env, **config})
        with _environ(env, key):  # a provider reads its key from the environment when it connects
            return self.provider.connect(self.session, settings)

    # -- the simulator's control API (contract section 6), over HTTP like any client of it ---------------
    async def _control(self, method: str, path: str, body: Any = None) -> Any:
        async with self.session.request(method, self.base_url + path, json=body) as resp:
            assert resp.status == 200, f"simulator control {method} {path} answered {resp.status}"
            return await resp.json()

    async def fault(self, kind: str, *, count: int = 1, **extra: Any) -> None:
        """The next `count` vendor requests meet this fault (`gateway.sim.base.FAULTS`); `retry_after_s`,
        `delay_s` as the control API takes them."""
        await self._control("POST", "/__sim__/faults", {"fault": kind, "count": count, **extra})

    async def clear_faults(self) -> None:
        await self._control("DELETE", "/__sim__/faults")

    async def force(self, job_id: str, patch: dict[str, Any]) -> dict[str, Any]:
        """Set fields of a simulated job's view; the job stops progressing on its own. Its view after."""
        return await self._control("POST", f"/__sim__/jobs/{job_id}/state", patch)

    async def stats(self) -> dict[str, int]:
        """Vendor requests so far, by method and route template (e.g. `GET /translate/{task_id}`)."""
        return (await self._control("GET", "/__sim__/stats"))["requests"]

    def requests(self) -> int:
        """How many vendor requests the simulator has seen (control calls not counted)."""
        return sum(self.sim.stats.values())


@asynccontextmanager
async def open_vendor(
    provider: Provider,
    *,
    sim: Simulator | None = None,
    clock: FakeClock | None = None,
    step_s: float = 3600.0,
    key: str | None = _OWN_KEY,
    session: aiohttp.ClientSession | None = None,
) -> AsyncIterator[VendorHarness]:
    """Serve the provider's simulator (or `sim`) on a free loopback port, driven by `clock` (a new FakeClock by
    default); `step_s` is the simulator's progression step (the default: jobs move only when forced)."""
    clock = clock or FakeClock()
    if sim is None:
        sim = provider.simulator(step_s)
        if sim is None:
            raise LookupError(f"provider {provider.name!r} has no simulator")
    sim.clock = clock
    app = web.Application()
    prefix = provider.sim_prefix or ""
    if prefix:
        app.add_subapp(prefix, sim.app())
    else:
        app = sim.app()
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    own_session = session is None
    client = session if session is not None else aiohttp.ClientSession()
    try:
        yield VendorHarness(
            provider=provider,
            sim=sim,
            clock=clock,
            server=server,
            session=client,
            key=sim_key(provider) if key is _OWN_KEY else key,
        )
    finally:
        if own_session:
            await client.close()
        await server.close()


@contextmanager
def _environ(name: str, value: str | None) -> Iterator[None]:
    before = os.environ.get(name)
    if value is None:
        os.environ.pop(name, None)
    else:
        os.environ[name] = value
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = before
