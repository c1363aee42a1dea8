"""The operator's API (operator key, never a tenant's): every tenant's jobs with filters and live changes,
one job in full (timeline, result, issues, webhook deliveries), and each provider's health as the watcher
sees it (circuit breaker, recent vendor errors, poll lag, jobs per state). The dashboard at /ui reads these."""

from __future__ import annotations

import json
from typing import Any

import aiohttp
from aiohttp import web

from gateway.results import with_sources
from gateway.server.api import Answer, Api, Param, Params
from gateway.server.common import JOB_ID, json_response
from gateway.server.keys import GATEWAY, STORE, WATCHER
from gateway.server.paging import CURSOR, LIMIT, PROVIDER, STATE, read_page
from gateway.server.problems import not_found
from gateway.server.routes_deliveries import delivery_log
from gateway.server.routes_history import KEEP_ALIVE_S
from gateway.server.schemas import OperatorJobDetail, OperatorJobList, ProviderHealthList
from gateway.states import State
from gateway.store.records import JobRecord
from gateway.watch.lanes import Lane

api = Api()

TENANT = Param("tenant", "query", max_length=200)

#: one server-sent event of the operator's stream: a job that changed or was created
OPERATOR_EVENT = {
    "type": "object",
    "required": ["data"],
    "properties": {
        "event": {"const": "job"},
        "data": {
            "type": "string",
            "contentMediaType": "application/json",
            "contentSchema": {"$ref": "#/components/schemas/OperatorJob"},
        },
    },
}


def _operator_body(request: web.Request, job: JobRecord) -> dict[str, Any]:
    """The public Job plus whose it is and where its webhooks go."""
    return {**request.app[GATEWAY].body(job), "tenant": job.tenant, "webhook_url": job.webhook_url}


@api.operation(
    "GET",
    "/v1/operator/jobs",
    summary="Every tenant's jobs, newest first (operator key)",
    params=(TENANT, PROVIDER, STATE, LIMIT, CURSOR),
    answers=(Answer(200, "OK", OperatorJobList),),
)
async def operator_jobs(request: web.Request, params: Params) -> web.Response:
    jobs, cursor = await read_page(params, request.app[STORE].operator_jobs, filters=(TENANT, PROVIDER, STATE))
    return json_response({"data": [_operator_body(request, j) for j in jobs], "next_cursor": cursor})


@api.operation(
    "GET",
    "/v1/operator/jobs/{job_id}",
    summary="One job in full: its timeline, result, issues and webhook deliveries (operator key)",
    params=(JOB_ID,),
    answers=(Answer(200, "OK", OperatorJobDetail),),
)
async def operator_job(request: web.Request, params: Params) -> web.Response:
    store = request.app[STORE]
    job = await store.get_job(params[JOB_ID.name])
    if job is None:
        raise not_found()
    result = await store.get_result(job.id) if job.result_available else None
    if result is not None:
        result = with_sources(result, await store.get_sources(job.id))
    return json_response(
        {
            "job": _operator_body(request, job),
            "transitions": [t.public() for t in await store.transitions(job.id)],
            "result": result,
            "deliveries": await delivery_log(store, job),
        }
    )


def _iso(value: Any) -> str | None:
    return None if value is None else value.isoformat().replace("+00:00", "Z")


@api.operation(
    "GET",
    "/v1/operator/events",
    summary="Server-sent events: every job of every tenant as it changes or is created (operator key)",
    answers=(Answer(200, "event stream", content_type="text/event-stream", schema=OPERATOR_EVENT),),
)
async def operator_events(request: web.Request, params: Params) -> web.StreamResponse:
    notifier = request.app[WATCHER].notifier
    store = request.app[STORE]
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
    await response.prepare(request)
    subscription = notifier.subscribe()
    try:
        await response.write(b": connected\n\n")
        while not notifier.closing:
            changed = await subscription.next(KEEP_ALIVE_S)
            if notifier.closing:
                break
            if not changed:
                await response.write(b": keep-alive\n\n")
            for job_id in sorted(changed):
                job = await store.get_job(job_id)
                if job is not None:
                    data = json.dumps(_operator_body(request, job), separators=(",", ":"))
                    await response.write(f"event: job\ndata: {data}\n\n".encode())
        await response.write_eof()
    except (ConnectionResetError, aiohttp.ClientConnectionResetError):
        pass  # the operator went away
    finally:
        notifier.unsubscribe(subscription)
    return response


@api.operation(
    "GET",
    "/v1/operator/providers",
    summary="Each provider's health: circuit breaker, recent vendor errors, poll lag, jobs per state (operator key)",
    answers=(Answer(200, "OK", ProviderHealthList),),
)
async def operator_providers(request: web.Request, params: Params) -> web.Response:
    gw = request.app[GATEWAY]
    counts = await request.app[STORE].count_by_provider_state()
    empty = {state.value: 0 for state in State}
    health = []
    for name in sorted(gw.connections):
        lane = gw.watcher.lanes.get(name)
        jobs = counts.get(name, empty)
        health.append(
            {
                "name": name,
                "display_name": gw.providers[name].display_name,
                "breaker": _breaker(lane),
                "recent_errors": [
                    {"at": _iso(e.at), "error": e.error, "message": e.message}
                    for e in (reversed(lane.health.errors) if lane else ())
                ],
                "poll_lag_s": lane.health.worst_lag() if lane else None,
                "watching": sum(n for state, n in jobs.items() if not State(state).terminal),
                "jobs": jobs,
            }
        )
    return json_response({"providers": health})


def _breaker(lane: Lane | None) -> dict[str, Any]:
    if lane is None:
        return {"state": "closed", "failures": 0, "retry_in_s": 0.0}
    breaker = lane.breaker
    retry_in = round(breaker.retry_in(), 3)
    state = "closed" if not breaker.open else ("open" if retry_in > 0 else "half_open")
    return {"state": state, "failures": breaker.failures, "retry_in_s": retry_in}
