"""The route table of the HTTP API (contract section 2)."""

from __future__ import annotations

import asyncio
import json
import re
import time
from typing import Any, TypeVar

import aiohttp
from aiohttp import web
from pydantic import BaseModel, ValidationError

from gateway.config import WebhookConfig
from gateway.jobs import Gateway, body_hash
from gateway.server.middleware import METRICS, TENANT
from gateway.server.problems import Problem, not_found, validation_problem
from gateway.server.schemas import AttachRequest, SubmitRequest, pydantic_errors
from gateway.states import State
from gateway.store.base import Store
from gateway.store.records import JobRecord
from gateway.webhooks.ssrf import check_url

GATEWAY = web.AppKey("gateway", Gateway)
STORE = web.AppKey("store", Store)
MAX_BODY = web.AppKey("max_body", int)
MAX_PAGE = web.AppKey("max_page", int)
WEBHOOK_SETTINGS = web.AppKey("webhook_settings", WebhookConfig)

routes = web.RouteTableDef()
M = TypeVar("M", bound=BaseModel)
_JOB_ID = re.compile(r"^job_[0-9a-f]{24}$")
_IDEMPOTENCY_KEY = re.compile(r"^[\x21-\x7e]{1,200}$")
MAX_WAIT_S = 60.0


def _json(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(
        body=json.dumps(data, separators=(",", ":")).encode(),
        status=status,
        content_type="application/json",
        headers=headers,
    )


def _job_body(gw: Gateway, job: JobRecord) -> dict[str, Any]:
    return gw.render(job).model_dump(mode="json", by_alias=True)


async def read_body(request: web.Request, model: type[M]) -> tuple[M, Any]:
    """The request body validated as `model`, and the raw parsed JSON; problems for everything else."""
    limit = request.app[MAX_BODY]
    if request.content_length is not None and request.content_length > limit:
        raise Problem(413, "payload_too_large", f"the body may be at most {limit} bytes")
    raw = await request.read()
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise validation_problem([{"loc": ["body"], "msg": f"malformed JSON: {exc}"[:200]}], "malformed JSON") from None
    if not isinstance(data, dict):
        raise validation_problem([{"loc": ["body"], "msg": "the body must be a JSON object"}])
    try:
        return model.model_validate(data), data
    except ValidationError as exc:
        raise validation_problem(pydantic_errors(exc)) from None


async def owned_job(request: web.Request) -> JobRecord:
    """The path's job if it belongs to the caller's tenant; another tenant's job is 404 like an unknown id."""
    job_id = request.match_info["job_id"]
    if not _JOB_ID.match(job_id):
        raise not_found()
    job = await request.app[STORE].get_job(job_id, tenant=request[TENANT])
    if job is None:
        raise not_found()
    return job


async def _check_webhook(request: web.Request, url: str | None) -> None:
    """Refuse webhook URLs of the wrong form, or reaching loopback/private/link-local addresses (SSRF)."""
    if url is None:
        return
    problem = await check_url(url, allow_private=request.app[WEBHOOK_SETTINGS].allow_private)
    if problem:
        raise validation_problem([{"loc": ["body", "webhook_url"], "msg": problem}])


@routes.get("/v1/providers")
async def list_providers(request: web.Request) -> web.Response:
    gw = request.app[GATEWAY]
    return _json({"providers": [gw.providers[name].describe() for name in sorted(gw.connections)]})


@routes.post("/v1/jobs")
async def submit(request: web.Request) -> web.Response:
    gw = request.app[GATEWAY]
    body, raw = await read_body(request, SubmitRequest)
    await _check_webhook(request, body.webhook_url)
    idem = None
    key = request.headers.get("Idempotency-Key")
    if key is not None:
        if not _IDEMPOTENCY_KEY.match(key):
            raise validation_problem([{"loc": ["header", "Idempotency-Key"], "msg": "1-200 visible ASCII characters"}])
        idem = (key, body_hash(raw))
    job, created = await gw.submit(
        request[TENANT],
        provider=body.provider,
        route=body.route,
        input=body.input,
        webhook_url=body.webhook_url,
        metadata=body.metadata,
        idempotency=idem,
    )
    location = f"/v1/jobs/{job.id}"
    return _json(_job_body(gw, job), status=201 if created else 200, headers={"Location": location})


@routes.post("/v1/jobs/attach")
async def attach(request: web.Request) -> web.Response:
    gw = request.app[GATEWAY]
    body, _ = await read_body(request, AttachRequest)
    await _check_webhook(request, body.webhook_url)
    job = await gw.attach(
        request[TENANT],
        provider=body.provider,
        vendor_ref=body.vendor_ref,
        webhook_url=body.webhook_url,
        metadata=body.metadata,
    )
    return _json(_job_body(gw, job), status=201, headers={"Location": f"/v1/jobs/{job.id}"})


def _int_param(request: web.Request, name: str, default: int | None, low: int, high: int) -> int | None:
    raw = request.query.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        value = None
    if value is None or not low <= value <= high:
        raise validation_problem([{"loc": ["query", name], "msg": f"must be an integer from {low} to {high}"}])
    return value


@routes.get("/v1/jobs")
async def list_jobs(request: web.Request) -> web.Response:
    gw = request.app[GATEWAY]
    limit = _int_param(request, "limit", 50, 1, request.app[MAX_PAGE])
    state = request.query.get("state")
    if state is not None and state not in State.__members__.values():
        raise validation_problem([{"loc": ["query", "state"], "msg": f"one of {', '.join(State)}"}])
    try:
        jobs, cursor = await request.app[STORE].list_jobs(
            request[TENANT],
            state=State(state) if state else None,
            provider=request.query.get("provider"),
            limit=limit or 50,
            cursor=request.query.get("cursor"),
        )
    except ValueError:
        raise validation_problem([{"loc": ["query", "cursor"], "msg": "not a cursor this API gave"}]) from None
    return _json({"data": [_job_body(gw, j) for j in jobs], "next_cursor": cursor})


@routes.get("/v1/jobs/{job_id}")
async def get_job(request: web.Request) -> web.Response:
    gw = request.app[GATEWAY]
    job = await owned_job(request)
    wait = request.query.get("wait")
    if wait is not None:
        try:
            seconds = float(wait)
        except ValueError:
            seconds = -1.0
        if not 0 <= seconds <= MAX_WAIT_S:
            raise validation_problem([{"loc": ["query", "wait"], "msg": f"seconds from 0 to {MAX_WAIT_S:g}"}])
        known = _int_param(request, "version", job.version, 0, 2**62)
        deadline = time.monotonic() + seconds
        while job.version == known and not job.terminal:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or gw.watcher.notifier.closing:
                break
            await gw.watcher.notifier.wait(job.id, remaining)
            job = await request.app[STORE].get_job(job.id) or job
    return _json(_job_body(gw, job))


@routes.get("/v1/jobs/{job_id}/transitions")
async def transitions(request: web.Request) -> web.Response:
    job = await owned_job(request)
    history = await request.app[STORE].transitions(job.id)
    return _json({"data": [t.public() for t in history]})


@routes.get("/v1/jobs/{job_id}/events")
async def events(request: web.Request) -> web.StreamResponse:
    """Server-sent events: the current snapshot, then each new version, ending after a terminal one."""
    gw = request.app[GATEWAY]
    store = request.app[STORE]
    job = await owned_job(request)
    last_seen = _last_event_id(request)
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
    await response.prepare(request)
    try:
        await _stream_events(response, gw, store, job, last_seen)
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
        woke = await gw.watcher.notifier.wait(job.id, 15.0)
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
    earlier = [
        job.model_copy(
            update={
                "status": t.status,
                "version": t.version,
                "updated_at": t.at,
                "finished_at": None,
                "result_available": False,
            }
        )
        for t in history
        if t.version < job.version
    ]
    return [*earlier, job]


def _last_event_id(request: web.Request) -> int | None:
    raw = request.headers.get("Last-Event-ID")
    return int(raw) if raw is not None and raw.isdigit() and len(raw) < 18 else None


async def _send_event(response: web.StreamResponse, gw: Gateway, job: JobRecord) -> None:
    data = json.dumps(_job_body(gw, job), separators=(",", ":"))
    await response.write(f"id: {job.version}\nevent: job\ndata: {data}\n\n".encode())


@routes.get("/v1/jobs/{job_id}/result")
async def result(request: web.Request) -> web.Response:
    gw = request.app[GATEWAY]
    job = await owned_job(request)
    if job.terminal and not job.state.has_result:
        raise Problem(409, "no_result", f"the job ended {job.state.value} without a result", job=_job_body(gw, job))
    stored = await request.app[STORE].get_result(job.id) if job.terminal else None
    if stored is None:
        raise Problem(409, "not_ready", "the job has not finished", job=_job_body(gw, job))
    return _json(stored)


@routes.get("/v1/jobs/{job_id}/artifact")
async def artifact(request: web.Request) -> web.StreamResponse:
    job = await owned_job(request)
    stored = await request.app[STORE].get_artifact(job.id) if job.terminal else None
    if stored is None:
        if not job.terminal and request.app[GATEWAY].providers[job.provider].capabilities.artifact:
            raise Problem(409, "not_ready", "the job has not finished", job=_job_body(request.app[GATEWAY], job))
        raise Problem(404, "no_artifact", "this job has no output file")
    filename = (stored.filename or f"{job.id}.bin").replace('"', "")
    return web.FileResponse(
        stored.path,
        headers={"Content-Type": stored.content_type, "Content-Disposition": f'attachment; filename="{filename}"'},
        chunk_size=64 * 1024,
    )


@routes.post("/v1/jobs/{job_id}/cancel")
async def cancel(request: web.Request) -> web.Response:
    gw = request.app[GATEWAY]
    job = await owned_job(request)
    if job.terminal:
        raise Problem(409, "not_cancellable", f"the job is already {job.state.value}", job=_job_body(gw, job))
    job = await gw.cancel(job)
    return _json(_job_body(gw, job), status=202)


@routes.get("/healthz")
async def healthz(request: web.Request) -> web.Response:
    return _json({"status": "ok"})


@routes.get("/readyz")
async def readyz(request: web.Request) -> web.Response:
    try:
        await asyncio.wait_for(request.app[STORE].ping(), 2.0)
    except Exception as exc:
        raise Problem(503, "unavailable", f"store not reachable: {type(exc).__name__}") from None
    return _json({"status": "ready"})


@routes.get("/metrics")
async def metrics(request: web.Request) -> web.Response:
    counts = await request.app[STORE].count_by_state()
    request.app[JOB_COUNTS].clear()
    request.app[JOB_COUNTS].update(counts)
    return web.Response(
        text=request.app[METRICS].render(),
        content_type="text/plain",
        charset="utf-8",
        headers={"X-Content-Type-Options": "nosniff"},
    )


JOB_COUNTS = web.AppKey("job_counts", dict[str, int])
