"""Shared fixtures: the provider harness (every installed provider against its live simulator) and vendor
cassettes (recorded from the simulators by `make cassettes`, replayed offline)."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from typing import Any

import pytest
from aiohttp.test_utils import TestServer

from gateway.plugins import get_providers
from gateway.sim.server import build_simulator_app
from gateway.testing.case import ConformanceCase
from gateway.testing.cassettes import SIM_HOST, recording, recording_session
from gateway.testing.cassettes import vcr_config as make_vcr_config
from gateway.testing.harness import VendorFactory, VendorHarness, open_vendor
from gateway.testing.postgres import PostgresServer, find_bin_dir
from support.cases import load_case
from support.constants import CASSETTE_SECRETS
from support.demo import Demo, make_demo
from support.scripted import ScriptedVendor


@pytest.fixture
def vcr_config():
    return make_vcr_config(CASSETTE_SECRETS.values())


@pytest.fixture(scope="module")
def vcr_cassette_dir(request):
    """cassettes/ at the root; GATEWAY_CASSETTE_DIR records elsewhere (the re-recording equivalence test)."""
    return os.environ.get("GATEWAY_CASSETTE_DIR") or str(request.config.rootpath / "cassettes")


@pytest.fixture
async def sim_base_url():
    """The simulators' base URL: a live in-process server when recording, an unreachable name when replaying."""
    if not recording():
        yield f"http://{SIM_HOST}:9"
        return
    server = TestServer(build_simulator_app(step_s=3600.0), host="127.0.0.1")
    await server.start_server()
    try:
        yield f"http://{SIM_HOST}:{server.port}"
    finally:
        await server.close()


@pytest.fixture
async def vendor_session():
    async with recording_session() as session:
        yield session


@pytest.fixture
def providers():
    return get_providers()


@pytest.fixture
async def sim_server():
    """All simulators live on a free loopback port, with no automatic progression (tests force states)."""
    server = TestServer(build_simulator_app(step_s=3600.0), host="127.0.0.1")
    await server.start_server()
    yield server
    await server.close()


@pytest.fixture(scope="session")
def postgres_server():
    """A private PostgreSQL server for the whole test session (one per xdist worker), on a free loopback port in a
    temporary directory; stopped and removed at the end. Without PostgreSQL installed the test is skipped, except
    under CI=true, where it fails (`make postgres` installs it)."""
    if find_bin_dir() is None:
        reason = "PostgreSQL is not installed (`make postgres` installs it): PostgreSQL tests skipped"
        if os.environ.get("CI") == "true":
            pytest.fail("CI=true requires the PostgreSQL tests to run, but " + reason)
        pytest.skip(reason)
    server = PostgresServer.start_in()
    try:
        yield server
    finally:
        server.destroy()


@pytest.fixture
def postgres_url(postgres_server):
    """A new empty database on the session's private server."""
    return postgres_server.create_database()


#: every installed provider (entry points), by name: the harness's fault scenarios run against each
INSTALLED = sorted(get_providers())


@pytest.fixture
async def vendor() -> AsyncIterator[VendorFactory]:
    """`await vendor(name, **options)`: that provider and its simulator live on a free loopback port, driven by a
    FakeClock, with a connection (`gateway.testing.harness.open_vendor` takes the options); closed after the test."""
    async with AsyncExitStack() as stack:

        async def make(name: str, **options: Any) -> VendorHarness:
            return await stack.enter_async_context(open_vendor(get_providers()[name], **options))

        yield make


@pytest.fixture(params=INSTALLED)
def provider_name(request: pytest.FixtureRequest) -> str:
    """Parametrizes a test over every installed provider."""
    return request.param


@pytest.fixture
async def live(vendor: VendorFactory, provider_name: str) -> VendorHarness:
    """The harness of each installed provider in turn (see `vendor`)."""
    if get_providers()[provider_name].simulator() is None:
        pytest.skip(f"{provider_name} has no simulator")
    return await vendor(provider_name)


@pytest.fixture
def case(provider_name: str) -> ConformanceCase:
    """The conformance case of each installed provider in turn (tests/support/cases/<name>.py)."""
    return load_case(provider_name)


@pytest.fixture
async def scripted(aiohttp_server) -> ScriptedVendor:
    """A vendor on a free loopback port that answers what the test scripts (`scripted.on(...)`), at `scripted.url`."""
    vendor = ScriptedVendor()
    server = await aiohttp_server(vendor.app(), host="127.0.0.1")
    vendor.url = str(server.make_url("")).rstrip("/")
    return vendor


@pytest.fixture
async def new_demo(aiohttp_client, sim_server, tmp_path) -> AsyncIterator[Callable[..., Awaitable[Demo]]]:
    """`await new_demo(**make_demo_options)`: the gateway app on a temp store, pointed at the live simulators
    (`sim_server`); its client session is closed after the test."""
    made: list[Demo] = []

    async def build(**changes: Any) -> Demo:
        demo = await make_demo(aiohttp_client, sim_server, tmp_path, **changes)
        made.append(demo)
        return demo

    yield build
    for demo in made:
        await demo.session.close()
