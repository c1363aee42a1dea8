"""One declaration per operation: the router and the OpenAPI document are built from the same declarations, the
document states the limits the server enforces (from the configuration), and the app releases what it made
when its startup fails half-way."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp import web

from gateway.config import parse_config
from gateway.server.app import create_app, start
from gateway.server.keys import HTTP, OPENAPI, STORE
from gateway.server.run import demo_config
from gateway.watch.engine import Watcher


def _router_pairs(app: web.Application) -> set[tuple[str, str]]:
    pairs = set()
    for route in app.router.routes():
        if route.method in ("HEAD", "*"):
            continue  # aiohttp adds HEAD beside every GET
        info = route.resource.get_info() if route.resource is not None else {}
        path = info.get("formatter") or info.get("path")
        pairs.add((route.method, path))
    return pairs


def _document_pairs(doc: dict[str, Any]) -> set[tuple[str, str]]:
    return {(method.upper(), path) for path, ops in doc["paths"].items() for method in ops}


def _parameter(doc: dict[str, Any], method: str, path: str, name: str) -> dict[str, Any]:
    params = doc["paths"][path][method]["parameters"]
    return next(p for p in params if p["name"] == name)


async def test_the_router_and_the_document_list_the_same_operations(demo) -> None:
    app = demo.client.server.app
    router, document = _router_pairs(app), _document_pairs(app[OPENAPI])
    assert router == document
    assert ("GET", "/v1/jobs/{job_id}") in router and ("POST", "/v1/jobs/attach") in router


async def test_a_route_added_beside_the_declarations_is_noticed(demo) -> None:
    """The comparison above fails when someone adds a route the document does not know."""

    async def undeclared(request: web.Request) -> web.Response:
        return web.Response()

    app = web.Application()
    app.router.add_get("/v1/undeclared", undeclared)
    assert _router_pairs(app) - _document_pairs(demo.client.server.app[OPENAPI]) == {("GET", "/v1/undeclared")}


@pytest.mark.parametrize("max_page", [7, 1000])
async def test_the_documented_page_limit_is_the_configured_one(new_demo, max_page) -> None:
    demo = await new_demo(server={"max_page": max_page})
    doc = demo.client.server.app[OPENAPI]
    assert _parameter(doc, "get", "/v1/jobs", "limit")["schema"] == {
        "type": "integer",
        "minimum": 1,
        "maximum": max_page,
    }
    status, _, _ = await demo.call("GET", f"/v1/jobs?limit={max_page}")
    assert status == 200
    status, body, _ = await demo.call("GET", f"/v1/jobs?limit={max_page + 1}")
    assert status == 422 and body["errors"][0]["loc"] == ["query", "limit"]
    assert f"from 1 to {max_page}" in body["errors"][0]["msg"]


async def test_every_documented_query_bound_is_enforced(demo) -> None:
    """The long-poll bounds of the document are the ones the handler applies."""
    doc = demo.client.server.app[OPENAPI]
    wait = _parameter(doc, "get", "/v1/jobs/{job_id}", "wait")["schema"]
    job = await demo.submit("camb", {"source_language": 1, "target_language": 31, "texts": ["hi"]})
    over = wait["maximum"] + 1
    status, body, _ = await demo.call("GET", f"/v1/jobs/{job['id']}?wait={over}")
    assert status == 422 and body["errors"][0]["loc"] == ["query", "wait"]
    status, _, _ = await demo.call("GET", f"/v1/jobs/{job['id']}?wait=0")
    assert status == 200


async def test_a_failing_startup_releases_the_store_and_the_vendor_session(
    sim_server, tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken_start(self: Watcher) -> None:
        raise RuntimeError("watcher cannot start")

    monkeypatch.setattr(Watcher, "start", broken_start)
    config, settings = parse_config(demo_config(str(sim_server.make_url("")).rstrip("/")), source="test")
    app = create_app(config, settings, state_dir=tmp_path / "state")
    with pytest.raises(RuntimeError, match="watcher cannot start"):
        await start(app, "127.0.0.1", 0)
    assert app[HTTP].closed
    with pytest.raises(Exception, match="not open"):
        await app[STORE].ping()
