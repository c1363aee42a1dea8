"""A finished job's result and output file, served from the store (contract section 2)."""

from __future__ import annotations

from aiohttp import web

from gateway.models import Result
from gateway.results import with_sources
from gateway.server.api import Answer, Api, Params
from gateway.server.common import JOB_ID, job_body, json_response, owned_job
from gateway.server.keys import GATEWAY, STORE
from gateway.server.problems import Problem

api = Api()

FILE = {"type": "string", "contentMediaType": "application/octet-stream"}


@api.operation(
    "GET",
    "/v1/jobs/{job_id}/result",
    summary="The finished job's result",
    params=(JOB_ID,),
    answers=(Answer(200, "OK", Result),),
    problems={409: "not_ready or no_result"},
)
async def result(request: web.Request, params: Params) -> web.Response:
    job = await owned_job(request)
    if job.terminal and not job.state.has_result:
        raise Problem(409, "no_result", f"the job ended {job.state.value} without a result", job=job_body(request, job))
    stored = await request.app[STORE].get_result(job.id) if job.terminal else None
    if stored is None:
        raise Problem(409, "not_ready", "the job has not finished", job=job_body(request, job))
    return json_response(with_sources(stored, await request.app[STORE].get_sources(job.id)))


@api.operation(
    "GET",
    "/v1/jobs/{job_id}/artifact",
    summary="The output file",
    params=(JOB_ID,),
    answers=(Answer(200, "the file", content_type="*/*", schema=FILE),),
    problems={404: "no_artifact", 409: "not_ready"},
)
async def artifact(request: web.Request, params: Params) -> web.StreamResponse:
    job = await owned_job(request)
    stored = await request.app[STORE].get_artifact(job.id) if job.terminal else None
    if stored is None:
        if not job.terminal and request.app[GATEWAY].providers[job.provider].capabilities.artifact:
            raise Problem(409, "not_ready", "the job has not finished", job=job_body(request, job))
        raise Problem(404, "no_artifact", "this job has no output file")
    filename = (stored.filename or f"{job.id}.bin").replace('"', "")
    return web.FileResponse(
        stored.path,
        headers={"Content-Type": stored.content_type, "Content-Disposition": f'attachment; filename="{filename}"'},
        chunk_size=64 * 1024,
    )
