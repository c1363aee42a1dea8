"""A job's history: its transitions, and its server-sent event stream (contract section 2)."""

from __future__ import annotations

import json

import aiohttp
from aiohttp import web

from gateway.jobs import Gateway
from gateway.render import job_at
from gateway.server.api import Answer, Api, Param, Params
from gateway.server.common import JOB_ID, json_response, owned_job
from gateway.server.keys import GATEWAY, STORE
from gateway.server.schemas import TransitionList
from gateway.store.base import Store
from gateway.store.records import JobRecord

api = Api()

#: a comment line sent on an idle stream this often, so proxies keep it open
KEEP_ALIVE_S = 15.0
#: one server-sent event (OpenAPI 3.1: `schema` describes each event of the stream)
SSE_EVENT = {
    "type": "object",
    "required": ["data"],
    "properties": {
        "id": {"type": "string", "description": "the job's version"},
        "event": {"const": "job"},
        "data": {
            "type": "string",
            "contentMediaType": "application/json",
            "contentSchema": {"$ref": "#/components/schemas/Job"},
        },
    },
}
LAST_EVENT_ID = Param(
    "Last-Event-ID",
    "header",
    int,
    description="the last version received (resume after it)",
    minimum=0,
    maximum=2**62,
)


@api.operation(
    "GET",
    "/v1/jobs/{job_id}/transitions",
    summary="Every version of the job, oldest first",
    params=(JOB_ID,),
    answers=(Answer(200, "OK", TransitionList),),
)
async def transitions(request: web.Request, params: Params) -> web.Response:
    job = await owned_job(request)
    history = await request.app[STORE].transitions(job.id)
    return json_response({"data": [t.public() for t in history]})


@api.operation(
    "GET",
    "/v1/jobs/{job_id}/events",
    summary="Server-sent events, one per version, ending after a terminal one",
    params=(JOB_ID, LAST_EVENT_ID),
    answers=(Answer(200, "event stream", content_type="text/event-stream", schema=SSE_EVENT),),
)
async def events(request: web.Request, params: Params) -> web.StreamResponse:
    """Server-sent events: the current snapshot, then each new version, ending after a terminal one."""
    gw = request.app[GATEWAY]
    store = request.app[STORE]
    job = await owned_job(request)
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
    await response.prepare(request)
    try:
        await _stream_events(response, gw, store, job, params.get(LAST_EVENT_ID.name))
    except (ConnectionResetError, aiohttp.ClientConnectionResetError):
        pass  # the client went away: nothing to answer
    return response


async def _stream_events(
    response: web.StreamResponse, gw: Gateway, store: Store, job: JobRecord, last_seen: int | None
) -> None:
    """The first event is the current snapshot (or, after Last-Event-ID, every version since); then each
    version in order, with no gaps: versions that came between two wake-ups are read from the history."""
    sent = last_seen if last_seen is not None and last_seen <= job.version else job.version - 1
    while True:
        if job.version > sent:
            for version in await _versions_since(store, job, sent):
                await _send_event(response, gw, version)
            sent = job.version
        if job.terminal or gw.watcher.notifier.closing:
            break
        woke = await gw.watcher.notifier.wait(job.id, KEEP_ALIVE_S)
        if gw.watcher.notifier.closing:
            break  # the server is shutting down: end the stream; clients reconnect with Last-Event-ID
        job = await store.get_job(job.id) or job
        if not woke and job.version == sent:
            await response.write(b": keep-alive\n\n")
    await response.write_eof()


async def _versions_since(store: Store, job: JobRecord, sent: int) -> list[JobRecord]:
    """The job as it was at each version after `sent`, ending with the current record."""
    if job.version == sent + 1:
        return [job]
    history = await store.transitions(job.id, after_version=sent)
    return [*(job_at(job, t) for t in history if t.version < job.version), job]


async def _send_event(response: web.StreamResponse, gw: Gateway, job: JobRecord) -> None:
    data = json.dumps(gw.body(job), separators=(",", ":"))
    await response.write(f"id: {job.version}\nevent: job\ndata: {data}\n\n".encode())
