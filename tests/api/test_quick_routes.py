"""Quick routes (issue 10): a plain read of a job this process holds is answered before aiohttp routes the request,
observed like every other request; anything else the quick answer cannot give goes through the router and its
handler, with the same answer as before. The demo serves through the gateway's runner, as `gateway serve` does."""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp import web

from gateway.server.keys import GATEWAY
from support.cases import load_case
from support.demo import KEY_A, KEY_B, Demo


@pytest.fixture
async def routed(demo: Demo, monkeypatch) -> list[str]:
    """The raw paths of the requests that aiohttp's router resolved (the quick routes answer the others)."""
    seen: list[str] = []
    router = demo.app.router
    resolve: Callable[[Any], Awaitable[Any]] = router.resolve

    async def counting(request: Any) -> Any:
        seen.append(request.raw_path)
        return await resolve(request)

    monkeypatch.setattr(router, "resolve", counting)
    return seen


async def _held_job(demo: Demo, routed: list[str]) -> dict[str, Any]:
    job = await demo.submit("camb", load_case("camb").valid_input)
    assert demo.app[GATEWAY].watcher.held(job["id"]) is not None  # the watcher holds it: a quick answer applies
    routed.clear()  # (the submit was routed)
    return job


async def test_a_plain_read_of_a_held_job_is_answered_without_the_router(demo, routed):
    job = await _held_job(demo, routed)
    path = f"/v1/jobs/{job['id']}"
    status, quick, headers = await demo.call("GET", path)
    assert status == 200 and quick["id"] == job["id"] and routed == []
    status, _, not_modified = await demo.call("GET", path, headers={"If-None-Match": headers["ETag"]})
    assert status == 304 and not_modified["ETag"] == headers["ETag"] and routed == []

    status, handled, handled_headers = await demo.call("GET", path + "?wait=0")  # a query: routed
    assert status == 200 and routed == [path + "?wait=0"]
    assert handled_headers["ETag"] == headers["ETag"]
    assert {k: v for k, v in handled.items() if k != "poll_after_s"} == {
        k: v for k, v in quick.items() if k != "poll_after_s"
    }


async def test_what_a_quick_route_cannot_answer_is_routed_and_answered_as_before(demo, routed):
    job = await _held_job(demo, routed)
    path = f"/v1/jobs/{job['id']}"
    unknown = "/v1/jobs/job_" + "0" * 24
    cases: list[tuple[str, dict[str, Any], int, str]] = [
        (path, {"key": KEY_B}, 404, "not_found"),  # another tenant's job: exactly as an unknown one
        (unknown, {}, 404, "not_found"),  # not held (and not stored)
        (path, {"key": None}, 401, "unauthorized"),
        (path, {"key": None, "headers": {"Authorization": "Bearer wrong-key"}}, 401, "unauthorized"),
        (path, {"headers": {"If-None-Match": "x" * 3000}}, 422, "validation_error"),
    ]
    for target, options, expected, code in cases:
        routed.clear()
        status, body, headers = await demo.call("GET", target, **options)
        assert status == expected and routed == [target], (target, status, body)
        assert body["code"] == code and headers["Content-Type"].startswith("application/problem+json")

    # the same path percent-escaped (sent as raw bytes: an HTTP client would normalize it): the router decodes it
    escaped = path.replace("job_", "%6Aob_", 1)
    routed.clear()
    server = demo.client.server
    reader, writer = await asyncio.open_connection(server.host, server.port)
    request = f"GET {escaped} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {KEY_A}\r\nConnection: close\r\n\r\n"
    writer.write(request.encode())
    answer = await reader.read()
    writer.close()
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 ") and json.loads(body)["id"] == job["id"] and routed == [escaped]


async def test_a_quick_answer_is_observed_like_a_routed_one(demo, routed, caplog):
    """The caller's X-Request-Id comes back and names the access line; a fresh id otherwise; the requests metric
    counts the read under its route template."""
    job = await _held_job(demo, routed)
    path = f"/v1/jobs/{job['id']}"
    metric = 'gateway_http_requests_total{method="GET",route="/v1/jobs/{job_id}",status="200"}'

    def count(text: bytes) -> int:
        found = re.search(re.escape(metric) + r" (\d+)", text.decode())
        return int(found.group(1)) if found else 0

    _, before, _ = await demo.call("GET", "/metrics", key=None)
    caplog.set_level(logging.INFO, logger="gateway.access")
    status, _, headers = await demo.call("GET", path, headers={"X-Request-Id": "trace-42"})
    assert status == 200 and headers["X-Request-Id"] == "trace-42"
    status, _, fresh = await demo.call("GET", path)
    assert status == 200 and re.fullmatch(r"[0-9a-f]{16}", fresh["X-Request-Id"]), fresh["X-Request-Id"]
    assert routed == ["/metrics"]
    lines = [r.getMessage() for r in caplog.records if r.name == "gateway.access"]
    assert len(lines) == 2, lines
    assert lines[0].startswith("request_id=trace-42 method=GET route=/v1/jobs/{job_id} status=200 ")
    assert lines[0].endswith(" tenant=demo")
    assert lines[1].startswith(f"request_id={fresh['X-Request-Id']} ")
    _, after, _ = await demo.call("GET", "/metrics", key=None)
    assert count(after) == count(before) + 2


async def test_an_embedders_middleware_and_signals_see_every_read(new_demo):
    """An app to which an embedder added an aiohttp middleware or an `on_response_prepare` signal gets no quick
    routes: both see the cached reads too."""
    seen: list[str] = []

    @web.middleware
    async def middleware(request: web.Request, handler: Any) -> web.StreamResponse:
        seen.append(f"middleware {request.path}")
        return await handler(request)

    async def prepared(request: web.Request, response: web.StreamResponse) -> None:
        seen.append(f"prepare {request.path}")

    for embed in (lambda app: app.middlewares.append(middleware), lambda app: app.on_response_prepare.append(prepared)):
        demo = await new_demo(embed=embed)
        job = await demo.submit("camb", load_case("camb").valid_input)
        assert demo.app[GATEWAY].watcher.held(job["id"]) is not None
        seen.clear()
        status, _, _ = await demo.call("GET", f"/v1/jobs/{job['id']}")
        assert status == 200 and len(seen) == 1 and seen[0].endswith(f"/v1/jobs/{job['id']}"), seen
