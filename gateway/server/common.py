"""What the route modules share: JSON answers, the job-id path parameter, the caller's own job, and a job's
answer (cached bytes, ETag, 304 Not Modified for a poller whose copy is current)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aiohttp import hdrs, web
from multidict import CIMultiDict

from gateway.render import JobView, dumps
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
_JOB_HEADERS: CIMultiDict[str] = CIMultiDict({hdrs.CONTENT_TYPE: JSON_TYPE, hdrs.CACHE_CONTROL: JOB_CACHE_CONTROL})


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
    return view_response(request, view, body, status, headers)


def view_response(
    request: web.Request, view: JobView, body: bytes, status: int = 200, headers: dict[str, str] | None = None
) -> web.Response:
    """`job_response` of a rendered job: `body` (the view's body now) and the view's ETag."""
    answer = _JOB_HEADERS.copy()  # (a copy of ready headers: cheaper than making them from a dict)
    answer[hdrs.ETAG] = view.etag
    if headers:
        answer.update(headers)
    if (
        status == 200
        and (if_none_match := request.headers.get(hdrs.IF_NONE_MATCH))
        and etag_matches(if_none_match, view.etag)
    ):
        del answer[hdrs.CONTENT_TYPE]
        return web.Response(status=304, headers=answer)
    return web.Response(body=body, status=status, headers=answer)


def cached_job(app: web.Application) -> Callable[[web.Request, dict[str, Any], str], web.Response | None]:
    """(`Operation.quick`) The answer to a plain read of the path's job when this process holds its snapshot and
    it is the caller's: no coroutine, one look-up of the watcher; else None."""
    gateway = app[GATEWAY]
    # (`Gateway.answer`'s two steps, with the `poll_after` that `held` found: calling a shared helper here cost
    # 0.35-0.5 us more per read in-process, about 2 us under load on this hottest path)
    held, views, now = gateway.watcher.held, gateway.views, gateway.watcher.clock.now

    def answer(request: web.Request, params: dict[str, Any], tenant: str) -> web.Response | None:
        found = held(params["job_id"])
        if found is None or found[0].tenant != tenant:
            return None
        job, poll_after = found
        view = views.view(job)
        return view_response(request, view, view.body(poll_after, now))

    return answer


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
