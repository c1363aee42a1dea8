"""The complete minimal plugin in docs/plugins.md works as printed: registered, listed, normalizing, talking HTTP."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from gateway.inputs import parse_input
from gateway.plugins import get_providers, pm
from gateway.states import State
from gateway.testing import conformance

DOC = Path(__file__).resolve().parents[1] / "docs" / "plugins.md"


@pytest.fixture
def acme(tmp_path):
    blocks = re.findall(r"```python\n(# file: acme_gateway\.py\n.*?)```", DOC.read_text(), re.S)
    assert len(blocks) == 1, "docs/plugins.md must hold exactly one acme_gateway.py example"
    path = tmp_path / "acme_gateway.py"
    path.write_text(blocks[0])
    spec = importlib.util.spec_from_file_location("acme_gateway", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    pm.register(module, name="acme-docs")
    yield module
    pm.unregister(name="acme-docs")


def test_example_plugin_registers_and_maps(acme):
    provider = get_providers()["acme"]
    assert provider.display_name == "Acme Translate"
    assert provider.normalize({"state": "busy"}).state is State.RUNNING
    assert provider.normalize({"state": "broken"}).error.code == "vendor_error"
    assert provider.normalize({"state": "melting"}).state is State.UNKNOWN
    for strange in (None, [], "x", {"state": 5}):
        assert provider.normalize(strange).state is State.UNKNOWN


async def test_example_plugin_talks_to_a_vendor(acme, aiohttp_server, monkeypatch):
    seen = {}

    async def create(request):
        seen["key"] = request.headers.get("X-Acme-Key")
        seen["body"] = await request.json()
        return web.json_response({"id": "a1"})

    async def status(request):
        return web.json_response({"state": "done", "output": ["Hallo"]})

    app = web.Application()
    app.add_routes([web.post("/jobs", create), web.get("/jobs/{id}", status)])
    server = await aiohttp_server(app)
    monkeypatch.setenv("ACME_TEST_KEY", "k-acme")
    provider = acme.AcmeProvider()
    async with aiohttp.ClientSession() as session:
        config = acme.AcmeConfig(base_url=str(server.make_url("")), api_key_env="ACME_TEST_KEY")
        conn = provider.connect(session, config)
        text = {"kind": "text", "source_language": "en", "target_language": "de", "texts": ["Hello"]}
        ref = await provider.submit(conn, parse_input(text))  # the gateway passes the typed model
        body = await provider.fetch_status(conn, ref)
        result = await provider.fetch_result(conn, ref, body)
    assert ref == {"id": "a1"} and seen == {"key": "k-acme", "body": {"texts": ["Hello"], "to": "de"}}
    assert provider.normalize(body).state is State.SUCCEEDED
    assert [o.target for o in result.outputs] == ["Hallo"]


def test_example_plugin_passes_the_conformance_totality_check(acme):
    """Its vendor calls the status `state`: the kit reads the provider's `status_field`, not a fixed key."""
    provider = get_providers()["acme"]
    assert provider.status_field == "state"
    conformance.check_mapping_total(provider)
