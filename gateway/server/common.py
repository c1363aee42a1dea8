"""What the route modules share: JSON answers, the job-id path parameter, the caller's own job, and a job's
answer (cached bytes, ETag, 304 Not Modified for a poller whose copy is current)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from gateway.render import dumps
from gateway.server.api import Param
from gateway.server.keys import GATEWAY, TENANT
from gateway.server.problems import not_found
from gateway.store.records import JobRecord

JOB_ID = Param("job_id", "path", description="a job id this API gave", required=True, pattern=r"job_[0-9a-f]{24}")
IF_NONE_MATCH = Param(
    "If-None-Match",
    "header",
    description="the ETag of the copy the caller has: 304 Not Modified without a body while it is current",
    max_length=2048,
)
JSON_TYPE = "application/json"
#: a job's answer may be kept by the caller, and must be revalidated (If-None-Match) before it is used again
JOB_CACHE_CONTROL = "private, no-cache"


def json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return bytes_response(dumps(data), status, headers)


def bytes_response(body: bytes, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    """Ready JSON bytes as an answer."""
    return web.Response(body=body, status=status, headers={"Content-Type": JSON_TYPE, **(headers or {})})


def etag_matches(if_none_match: str | None, etag: str) -> bool:
    """RFC 9110 If-None-Match (weak comparison): `*`, or one of the listed tags is `etag`."""
    if not if_none_match:
        return False
    opaque = etag.removeprefix("W/")
    for candidate in if_none_match.split(","):
        tag = candidate.strip()
        if tag == "*" or tag.removeprefix("W/") == opaque:
            return True
    return False


def job_response(
    request: web.Request, job: JobRecord, status: int = 200, headers: dict[str, str] | None = None
) -> web.Response:
    """The Job as an answer: bytes rendered once per snapshot, its ETag, and for a GET whose If-None-Match holds
    the current ETag, 304 without a body."""
    view, body = request.app[GATEWAY].answer(job)
    answer = {"Content-Type": JSON_TYPE, "ETag": view.etag, "Cache-Control": JOB_CACHE_CONTROL}
    if headers:
        answer.update(headers)
    if status == 200 and etag_matches(request.headers.get("If-None-Match"), view.etag):
        del answer["Content-Type"]
        return web.Response(status=304, headers=answer)
    return web.Response(body=body, status=status, headers=answer)


def jobs_list_response(request: web.Request, jobs: list[JobRecord], next_cursor: str | None) -> web.Response:
    """`{"data": [Job...], "next_cursor": ...}` from each job's cached bytes."""
    gateway = request.app[GATEWAY]
    bodies = [gateway.answer(job)[1] for job in jobs]
    return bytes_response(b'{"data":[' + b",".join(bodies) + b'],"next_cursor":' + dumps(next_cursor) + b"}")


def job_body(request: web.Request, job: JobRecord) -> dict[str, Any]:
    """The public Job of a stored job, as JSON-ready data."""
    return request.app[GATEWAY].body(job)


def held_job(request: web.Request) -> JobRecord | None:
    """The path's job from the watcher's memory when this process holds its snapshot and it is the caller's; else
    None, and `owned_job` answers (from the store, or 404). Saves a cached read two coroutines."""
    job = request.app[GATEWAY].watcher.snapshot(request.match_info["job_id"])
    return job if job is not None and job.tenant == request[TENANT] else None


async def owned_job(request: web.Request) -> JobRecord:
    """The path's job if it belongs to the caller's tenant; another tenant's job is 404 like an unknown id."""
    job = await request.app[GATEWAY].job(request.match_info["job_id"], tenant=request[TENANT])
    if job is None:
        raise not_found()
    return job
