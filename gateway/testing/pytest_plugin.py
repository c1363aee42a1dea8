"""The gateway's pytest plugin for provider authors (registered through the `pytest11` entry point, so any test
run in an environment where the gateway is installed has these fixtures; nothing happens until a test asks).

A plugin package's tests name their provider once, in their conftest.py:

    @pytest.fixture
    def gateway_provider_name():
        return "azure_batch"

and then use:

- `gateway_provider`: the installed provider of that name (found through the `gateway.providers` entry points);
- `gateway_sim_url`: where the vendor is: the provider's simulator live on a loopback port when recording
  (`GATEWAY_RECORD=1`), `GATEWAY_VENDOR_URL` when set (a real vendor's sandbox), else an address that only
  cassettes answer;
- `gateway_vendor_session`: an aiohttp session that reaches the simulator under the recorded host name;
- `gateway_vendor_key`: the vendor key the tests use (`GATEWAY_VENDOR_KEY`, or a fixed test key);
- `gateway_conn`: the provider's `VendorConnection` with that key; `gateway_connect(key=...)` makes another;
- `gateway_sim_control`: the simulator's control API (force a status, inject a fault), a no-op when replaying;
- `vcr_config`: pytest-recording's cassette settings, scrubbing the vendor key, auth headers and the values of
  the provider's private vendor_ref fields (`private_ref_fields`) wherever the vendor returns them.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import pytest

from gateway.plugins import get_provider
from gateway.provider import Provider
from gateway.testing.cassettes import SIM_HOST, recording, recording_session
from gateway.testing.cassettes import vcr_config as cassette_settings
from gateway.testing.conformance import SimControl
from gateway.testing.harness import open_vendor
from gateway.vendor_http import VendorConnection

#: a real vendor (or an already running simulator) to record against instead of the in-process simulator
VENDOR_URL_ENV = "GATEWAY_VENDOR_URL"
#: the vendor key to record with (default: a fixed test key the simulators accept)
VENDOR_KEY_ENV = "GATEWAY_VENDOR_KEY"
#: the ini option naming the provider under test (the `gateway_provider_name` fixture wins)
INI_PROVIDER = "gateway_provider"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addini(INI_PROVIDER, "name of the gateway provider a plugin package tests (gateway testing kit)")


def pytest_configure(config: pytest.Config) -> None:
    # registered now, after every entry-point plugin: `vcr_config` here is the gateway's, not pytest-recording's
    # default (a conftest.py still overrides either)
    config.pluginmanager.register(GatewayFixtures(), "gateway-testing-fixtures")


def live() -> bool:
    """True when the tests talk to a vendor (recording cassettes), False when cassettes answer."""
    return recording()


class GatewayFixtures:
    @pytest.fixture
    def gateway_provider_name(self, request: pytest.FixtureRequest) -> str | None:
        """The provider under test: override this fixture, or set the ini option; None when neither is."""
        return str(request.config.getini(INI_PROVIDER) or "") or None

    @pytest.fixture
    def gateway_provider(self, gateway_provider_name: str | None) -> Provider:
        if not gateway_provider_name:
            pytest.fail(
                "name the provider under test: a `gateway_provider_name` fixture in conftest.py "
                f"or `{INI_PROVIDER} = <name>` in the pytest ini options"
            )
        return get_provider(gateway_provider_name)

    @pytest.fixture
    def gateway_vendor_key(self, gateway_provider: Provider) -> str:
        return os.environ.get(VENDOR_KEY_ENV) or f"test-key-{gateway_provider.name}-5e1f"

    @pytest.fixture
    async def gateway_sim_url(self, gateway_provider: Provider) -> AsyncIterator[str]:
        prefix = gateway_provider.sim_prefix or ""
        if os.environ.get(VENDOR_URL_ENV):
            yield os.environ[VENDOR_URL_ENV].rstrip("/")
            return
        if not live():
            yield f"http://{SIM_HOST}:9{prefix}"
            return
        if gateway_provider.simulator() is None:
            pytest.fail(f"{gateway_provider.name} has no simulator: set {VENDOR_URL_ENV} to record against the vendor")
        async with open_vendor(gateway_provider) as harness:  # jobs move only when the tests force them
            yield f"http://{SIM_HOST}:{harness.server.port}{prefix}"

    @pytest.fixture
    async def gateway_vendor_session(self) -> AsyncIterator[aiohttp.ClientSession]:
        async with recording_session() as session:
            yield session

    @pytest.fixture
    def gateway_connect(
        self,
        gateway_provider: Provider,
        gateway_vendor_session: aiohttp.ClientSession,
        gateway_sim_url: str,
        gateway_vendor_key: str,
        monkeypatch: pytest.MonkeyPatch,
    ) -> Callable[..., VendorConnection]:
        """`gateway_connect(key=..., **config)`: a connection through the provider's own `connect`."""
        env = f"GATEWAY_KIT_{gateway_provider.name.upper()}_KEY"

        def connect(key: str | None = gateway_vendor_key, **config: Any) -> VendorConnection:
            if key is None:
                monkeypatch.delenv(env, raising=False)
            else:
                monkeypatch.setenv(env, key)
            settings = gateway_provider.config_model.model_validate(
                {"base_url": gateway_sim_url, "api_key_env": env, **config}
            )
            return gateway_provider.connect(gateway_vendor_session, settings)

        return connect

    @pytest.fixture
    def gateway_conn(self, gateway_connect: Callable[..., VendorConnection]) -> VendorConnection:
        return gateway_connect()

    @pytest.fixture
    def gateway_sim_control(self, gateway_vendor_session: aiohttp.ClientSession, gateway_sim_url: str) -> SimControl:
        return SimControl(gateway_vendor_session, gateway_sim_url if live() else None)

    @pytest.fixture
    def vcr_config(self, request: pytest.FixtureRequest, gateway_provider_name: str | None) -> dict[str, Any]:
        """The gateway's cassette settings for the named provider; pytest-recording's default ({}) when the
        tests name none (another project's tests in the same environment are not affected)."""
        if not gateway_provider_name:
            return {}
        provider = get_provider(gateway_provider_name)
        key = request.getfixturevalue("gateway_vendor_key")
        return cassette_settings(
            [key], secret_fields=provider.private_ref_fields, auth_headers=provider.auth_headers(key).keys()
        )
