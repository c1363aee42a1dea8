"""Submitting, attaching, listing, reading (with long poll) and cancelling jobs (contract section 2)."""

from __future__ import annotations

from aiohttp import web

from gateway.jobs import body_hash
from gateway.models import Job
from gateway.server.api import BODY, RAW_BODY, Answer, Api, Param, Params
from gateway.server.common import (
    IF_NONE_MATCH,
    JOB_ID,
    cached_job,
    held_job,
    job_body,
    job_response,
    jobs_list_response,
    json_response,
    owned_job,
)
from gateway.server.keys import GATEWAY, STORE, TENANT, WEBHOOK_GUARD
from gateway.server.paging import CURSOR, LIMIT, PROVIDER, STATE, read_page
from gateway.server.problems import Problem, validation_problem
from gateway.server.schemas import AttachRequest, JobList, ProviderList, SubmitRequest
from gateway.store.records import JobRecord

api = Api()

MAX_WAIT_S = 60.0
UPSTREAM = {
    402: "upstream_quota_exceeded (the vendor account's quota is used up or needs payment)",
    502: "upstream_error or upstream_auth_failed",
    503: "upstream_rate_limited (with Retry-After) or unavailable",
    504: "upstream_timeout",
}
JOB_HEADERS = ("Location", "ETag", "Cache-Control")
IDEMPOTENCY_KEY = Param(
    "Idempotency-Key", "header", description="1-200 visible ASCII characters", max_length=200, pattern=r"[\x21-\x7e]+"
)


async def _check_webhook(request: web.Request, url: str | None) -> None:
    """Refuse webhook URLs of the wrong form, or reaching addresses the network rules refuse (SSRF)."""
    if url is None:
        return
    problem = await request.app[WEBHOOK_GUARD].check(url)
    if problem:
        raise validation_problem([{"loc": ["body", "webhook_url"], "msg": problem}])


def _created(request: web.Request, job: JobRecord, created: bool) -> web.Response:
    """201 with the new job, or 200 with the one the tenant already had; Location names it either way."""
    return job_response(request, job, status=201 if created else 200, headers={"Location": f"/v1/jobs/{job.id}"})


@api.operation("GET", "/v1/providers", summary="Installed providers", answers=(Answer(200, "OK", ProviderList),))
async def list_providers(request: web.Request, params: Params) -> web.Response:
    gw = request.app[GATEWAY]
    return json_response({"providers": [gw.providers[name].describe() for name in sorted(gw.connections)]})


@api.operation(
    "POST",
    "/v1/jobs",
    summary="Submit a job",
    params=(IDEMPOTENCY_KEY,),
    body=SubmitRequest,
    answers=(
        Answer(200, "the job an earlier request with this Idempotency-Key created", Job, headers=JOB_HEADERS),
        Answer(201, "created", Job, headers=JOB_HEADERS),
    ),
    problems={
        409: "idempotency_mismatch or idempotency_in_progress (with Retry-After)",
        **UPSTREAM,
        402: "budget_exceeded (the tenant's budget is used up; with Retry-After and `budget`: the current spend) "
        "or upstream_quota_exceeded",
    },
)
async def submit(request: web.Request, params: Params) -> web.Response:
    gw = request.app[GATEWAY]
    body: SubmitRequest = params[BODY]
    await _check_webhook(request, body.webhook_url)
    key = params.get(IDEMPOTENCY_KEY.name)
    job, created = await gw.submit(
        request[TENANT],
        provider=body.provider,
        route=body.route,
        input=body.input,
        webhook_url=body.webhook_url,
        metadata=body.metadata,
        idempotency=None if key is None else (key, body_hash(params[RAW_BODY])),
    )
    return _created(request, job, created)


@api.operation(
    "POST",
    "/v1/jobs/attach",
    summary="Adopt a job started at the vendor directly",
    body=AttachRequest,
    answers=(
        Answer(200, "the tenant already holds this vendor job: that job", Job, headers=JOB_HEADERS),
        Answer(201, "attached", Job, headers=JOB_HEADERS),
    ),
    problems=UPSTREAM,
    permission="attach",
)
async def attach(request: web.Request, params: Params) -> web.Response:
    gw = request.app[GATEWAY]
    body: AttachRequest = params[BODY]
    await _check_webhook(request, body.webhook_url)
    job, created = await gw.attach(
        request[TENANT],
        provider=body.provider,
        vendor_ref=body.vendor_ref,
        webhook_url=body.webhook_url,
        metadata=body.metadata,
    )
    return _created(request, job, created)


@api.operation(
    "GET",
    "/v1/jobs",
    summary="The tenant's jobs, newest first",
    params=(STATE, PROVIDER, LIMIT, CURSOR),
    answers=(Answer(200, "OK", JobList),),
)
async def list_jobs(request: web.Request, params: Params) -> web.Response:
    jobs, cursor = await read_page(params, request.app[STORE].list_jobs, request[TENANT], filters=(STATE, PROVIDER))
    watcher = request.app[GATEWAY].watcher
    return jobs_list_response(request, [watcher.snapshot(j.id) or j for j in jobs], cursor)


@api.operation(
    "GET",
    "/v1/jobs/{job_id}",
    summary="Job status; long poll with wait and version",
    quick=cached_job,  # (a read without a long poll)
    params=(
        JOB_ID,
        Param(
            "wait", "query", float, description="long poll: seconds to wait for a change", minimum=0, maximum=MAX_WAIT_S
        ),
        Param("version", "query", int, description="long poll: the version the caller has", minimum=0, maximum=2**62),
        IF_NONE_MATCH,
    ),
    answers=(
        Answer(200, "OK", Job, headers=("ETag", "Cache-Control")),
        Answer(304, "not modified: If-None-Match holds the current ETag", content_type="", headers=("ETag",)),
    ),
)
async def get_job(request: web.Request, params: Params) -> web.Response:
    job = held_job(request)
    if job is None:
        job = await owned_job(request)
    seconds = params.get("wait")
    if seconds is not None:
        gw = request.app[GATEWAY]
        known = params.get("version", job.version)
        clock = gw.watcher.clock
        deadline = clock() + seconds
        while job.version == known and not job.terminal:
            remaining = deadline - clock()
            if remaining <= 0 or gw.watcher.notifier.closing:
                break
            await gw.watcher.notifier.wait(job.id, remaining)
            job = await gw.job(job.id) or job
    return job_response(request, job)


@api.operation(
    "POST",
    "/v1/jobs/{job_id}/cancel",
    summary="Cancel the job",
    params=(JOB_ID,),
    answers=(Answer(202, "cancel requested", Job, headers=("ETag", "Cache-Control")),),
    problems={409: "not_cancellable or unsupported", **UPSTREAM},
)
async def cancel(request: web.Request, params: Params) -> web.Response:
    gw = request.app[GATEWAY]
    job = await owned_job(request)
    if job.terminal:
        raise Problem(409, "not_cancellable", f"the job is already {job.state.value}", job=job_body(request, job))
    job = await gw.cancel(job)
    return job_response(request, job, status=202)
