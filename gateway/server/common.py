"""What the route modules share: JSON answers, the job-id path parameter, and the caller's own job."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from gateway.server.api import Param
from gateway.server.keys import GATEWAY, STORE, TENANT
from gateway.server.problems import not_found
from gateway.store.records import JobRecord

JOB_ID = Param("job_id", "path", description="a job id this API gave", required=True, pattern=r"job_[0-9a-f]{24}")


def json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(
        body=json.dumps(data, separators=(",", ":")).encode(),
        status=status,
        content_type="application/json",
        headers=headers,
    )


def job_body(request: web.Request, job: JobRecord) -> dict[str, Any]:
    """The public Job of a stored job, as JSON-ready data."""
    return request.app[GATEWAY].body(job)


async def owned_job(request: web.Request) -> JobRecord:
    """The path's job if it belongs to the caller's tenant; another tenant's job is 404 like an unknown id."""
    job = await request.app[STORE].get_job(request.match_info["job_id"], tenant=request[TENANT])
    if job is None:
        raise not_found()
    return job
