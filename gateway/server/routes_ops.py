"""Operator endpoints without a key: liveness, readiness, Prometheus metrics and the OpenAPI document."""

from __future__ import annotations

import asyncio

from aiohttp import web

from gateway.server.api import Answer, Api, Params
from gateway.server.common import json_response
from gateway.server.keys import JOB_COUNTS, LEASES, METRICS, OPENAPI, STORE
from gateway.server.problems import Problem
from gateway.server.schemas import Health

api = Api()

#: how long readiness waits for the store
READY_TIMEOUT_S = 2.0
TEXT = {"type": "string"}


@api.operation("GET", "/healthz", summary="Liveness", answers=(Answer(200, "OK", Health),), secured=False)
async def healthz(request: web.Request, params: Params) -> web.Response:
    return json_response({"status": "ok"})


@api.operation(
    "GET",
    "/readyz",
    summary="Readiness (store reachable; on a shared store, this replica's leases renewed)",
    answers=(Answer(200, "OK", Health),),
    problems={503: "unavailable"},
    secured=False,
)
async def readyz(request: web.Request, params: Params) -> web.Response:
    try:
        await asyncio.wait_for(request.app[STORE].ping(), READY_TIMEOUT_S)
    except Exception as exc:
        raise Problem(503, "unavailable", f"store not reachable: {type(exc).__name__}") from None
    keeper = request.app.get(LEASES)
    if keeper is None:
        return json_response({"status": "ready", "store": "ok"})
    leases = keeper.status()
    if not leases["ok"]:
        raise Problem(503, "unavailable", "this replica's job leases are not being renewed", leases=leases)
    return json_response({"status": "ready", "store": "ok", "leases": leases})


@api.operation(
    "GET",
    "/metrics",
    summary="Prometheus metrics",
    answers=(Answer(200, "text format", content_type="text/plain", schema=TEXT),),
    secured=False,
)
async def metrics(request: web.Request, params: Params) -> web.Response:
    counts = await request.app[STORE].count_by_state()
    request.app[JOB_COUNTS].clear()
    request.app[JOB_COUNTS].update(counts)
    return web.Response(
        text=request.app[METRICS].render(),
        content_type="text/plain",
        charset="utf-8",
        headers={"X-Content-Type-Options": "nosniff"},
    )


@api.operation(
    "GET",
    "/openapi.json",
    summary="This document",
    answers=(Answer(200, "OpenAPI 3.1", content_type="application/json", schema={"type": "object"}),),
    secured=False,
)
async def openapi(request: web.Request, params: Params) -> web.Response:
    return json_response(request.app[OPENAPI])
