"""Cancel through HTTP with a provider that supports it (none of the four vendors documents a cancel
endpoint, so a throwaway plugin and a tiny vendor stand in)."""

from __future__ import annotations

import pytest
from aiohttp import web

from gateway.config import parse_config
from gateway.provider import Capabilities
from gateway.server.app import create_app
from gateway.states import State
from support.plugins import TinyVendorProvider, registered


class CancellableProvider(TinyVendorProvider):
    name = "cancel_test"
    display_name = "Cancellable (test)"
    capabilities = Capabilities(cancel=True)
    mapping = {"open": State.RUNNING, "stopped": State.CANCELLED}


@pytest.fixture
def plugin():
    with registered(CancellableProvider(), name="cancel-test"):
        yield


async def test_cancel_is_202_then_the_job_ends_cancelled(plugin, aiohttp_server, aiohttp_client, tmp_path):
    jobs: dict[str, str] = {}

    async def create(request):
        jobs["j1"] = "open"
        return web.json_response({"id": "j1"})

    async def status(request):
        return web.json_response({"status": jobs[request.match_info["id"]]})

    async def cancel(request):
        jobs[request.match_info["id"]] = "stopped"
        return web.json_response({}, status=202)

    vendor = web.Application()
    vendor.add_routes([web.post("/jobs", create), web.get("/jobs/{id}", status), web.post("/jobs/{id}/cancel", cancel)])
    server = await aiohttp_server(vendor)
    config, settings = parse_config(
        {
            "tenants": {"t": {"keys": ["tenant-key-1"]}},
            "providers": {"cancel_test": {"base_url": str(server.make_url("")).rstrip("/"), "poll": {"initial_s": 5}}},
        }
    )
    client = await aiohttp_client(create_app(config, settings, state_dir=tmp_path))
    auth = {"Authorization": "Bearer tenant-key-1"}
    async with client.post("/v1/jobs", json={"provider": "cancel_test", "input": {}}, headers=auth) as resp:
        job = await resp.json()
        assert resp.status == 201
    async with client.post(f"/v1/jobs/{job['id']}/cancel", headers=auth) as resp:
        cancelled = await resp.json()
        assert resp.status == 202
    assert cancelled["state"] == "cancelled" and cancelled["terminal"] and jobs["j1"] == "stopped"
    async with client.post(f"/v1/jobs/{job['id']}/cancel", headers=auth) as resp:
        assert resp.status == 409 and (await resp.json())["code"] == "not_cancellable"
