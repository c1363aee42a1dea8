"""Shared fixtures: vendor cassettes (recorded from the simulators by `make cassettes`, replayed offline)."""

from __future__ import annotations

import os

import pytest
from aiohttp.test_utils import TestServer

from gateway.plugins import get_providers
from gateway.sim.server import build_simulator_app
from gateway.testing.cassettes import SIM_HOST, recording, recording_session
from gateway.testing.cassettes import vcr_config as make_vcr_config
from gateway.testing.postgres import PostgresServer, find_bin_dir
from support.constants import CASSETTE_SECRETS


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
