"""The provider these tests are about; everything else comes from the gateway's testing kit (its pytest plugin:
gateway_provider, gateway_conn, gateway_connect, gateway_sim_control, vcr_config, ...)."""

import pytest


@pytest.fixture
def gateway_provider_name():
    return "azure_batch"
