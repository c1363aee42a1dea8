"""The OpenAPI 3.1 document, generated from the same pydantic models the handlers use."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from pydantic.json_schema import models_json_schema

from gateway import __version__
from gateway.models import Job, Result
from gateway.server.schemas import AttachRequest, SubmitRequest

REF = "#/components/schemas/{model}"


class ProblemDetail(BaseModel):
    """application/problem+json (RFC 9457) with the contract's `code`."""

    model_config = ConfigDict(extra="allow")

    type: str
    title: str
    status: int
    code: str
    detail: str | None = None
    instance: str | None = None
    errors: list[dict[str, Any]] | None = None
    job: Job | None = None


class JobList(BaseModel):
    data: list[Job]
    next_cursor: str | None


class Transition(BaseModel):
    version: int
    at: str
    state: str
    vendor_status: str | None
    stage: str | None
    progress: int | None


class TransitionList(BaseModel):
    data: list[Transition]


class ProviderInfo(BaseModel):
    name: str
    display_name: str
    capabilities: dict[str, Any]
    mapping: dict[str, str]


class ProviderList(BaseModel):
    providers: list[ProviderInfo]


class Health(BaseModel):
    status: str = Field(examples=["ok"])


MODELS: list[type[BaseModel]] = [
    Job,
    Result,
    SubmitRequest,
    AttachRequest,
    ProblemDetail,
    JobList,
    TransitionList,
    ProviderList,
    Health,
]


def _ref(model: type[BaseModel]) -> dict[str, str]:
    return {"$ref": REF.format(model=model.__name__)}


def _json(model: type[BaseModel]) -> dict[str, Any]:
    return {"application/json": {"schema": _ref(model)}}


def _problem(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/problem+json": {"schema": _ref(ProblemDetail)}}}


def _ok(model: type[BaseModel], description: str = "OK", headers: dict[str, Any] | None = None) -> dict[str, Any]:
    answer: dict[str, Any] = {"description": description, "content": _json(model)}
    if headers:
        answer["headers"] = headers
    return answer


JOB_ID = {"name": "job_id", "in": "path", "required": True, "schema": {"type": "string"}}
AUTH_ERRORS = {"401": _problem("missing or unknown key")}
JOB_ERRORS = {**AUTH_ERRORS, "404": _problem("no such job for this tenant"), "422": _problem("invalid parameters")}
UPSTREAM = {
    "502": _problem("upstream_error or upstream_auth_failed"),
    "503": _problem("upstream_rate_limited (with Retry-After) or unavailable"),
    "504": _problem("upstream_timeout"),
}
#: one server-sent event (OpenAPI 3.1: `schema` describes each event of the stream)
SSE_EVENT = {
    "type": "object",
    "required": ["data"],
    "properties": {
        "id": {"type": "string", "description": "the job's version"},
        "event": {"const": "job"},
        "data": {"type": "string", "contentMediaType": "application/json", "contentSchema": _ref(Job)},
    },
}
LOCATION = {"Location": {"schema": {"type": "string"}}}


def openapi_document() -> dict[str, Any]:
    _, defs = models_json_schema([(m, "serialization") for m in MODELS], ref_template=REF)
    schemas = defs.get("$defs", {})
    # request bodies are validated, so their input schemas are the ones that count
    for model in (SubmitRequest, AttachRequest):
        schemas[model.__name__] = model.model_json_schema(ref_template=REF, mode="validation")
    secured = [{"bearer": []}]
    paths: dict[str, Any] = {
        "/v1/providers": {
            "get": {
                "summary": "Installed providers",
                "security": secured,
                "responses": {"200": _ok(ProviderList), **AUTH_ERRORS},
            }
        },
        "/v1/jobs": {
            "get": {
                "summary": "The tenant's jobs, newest first",
                "security": secured,
                "parameters": [
                    {"name": "state", "in": "query", "schema": {"type": "string"}},
                    {"name": "provider", "in": "query", "schema": {"type": "string"}},
                    {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 200}},
                    {"name": "cursor", "in": "query", "schema": {"type": "string"}},
                ],
                "responses": {"200": _ok(JobList), **AUTH_ERRORS, "422": _problem("invalid filter or cursor")},
            },
            "post": {
                "summary": "Submit a job",
                "security": secured,
                "parameters": [{"name": "Idempotency-Key", "in": "header", "schema": {"type": "string"}}],
                "requestBody": {"required": True, "content": _json(SubmitRequest)},
                "responses": {
                    "200": _ok(Job, "the job an earlier request with this Idempotency-Key created", LOCATION),
                    "201": _ok(Job, "created", LOCATION),
                    **AUTH_ERRORS,
                    "409": _problem("idempotency_mismatch"),
                    "413": _problem("payload_too_large"),
                    "422": _problem("validation_error"),
                    **UPSTREAM,
                },
            },
        },
        "/v1/jobs/attach": {
            "post": {
                "summary": "Adopt a job started at the vendor directly",
                "security": secured,
                "requestBody": {"required": True, "content": _json(AttachRequest)},
                "responses": {
                    "201": _ok(Job, "attached", LOCATION),
                    **AUTH_ERRORS,
                    "413": _problem("payload_too_large"),
                    "422": _problem("validation_error"),
                    **UPSTREAM,
                },
            }
        },
        "/v1/jobs/{job_id}": {
            "get": {
                "summary": "Job status; long poll with wait and version",
                "security": secured,
                "parameters": [
                    JOB_ID,
                    {"name": "wait", "in": "query", "schema": {"type": "number", "minimum": 0, "maximum": 60}},
                    {"name": "version", "in": "query", "schema": {"type": "integer", "minimum": 0}},
                ],
                "responses": {"200": _ok(Job), **JOB_ERRORS},
            }
        },
        "/v1/jobs/{job_id}/events": {
            "get": {
                "summary": "Server-sent events, one per version, ending after a terminal one",
                "security": secured,
                "parameters": [JOB_ID, {"name": "Last-Event-ID", "in": "header", "schema": {"type": "string"}}],
                "responses": {
                    "200": {"description": "event stream", "content": {"text/event-stream": {"schema": SSE_EVENT}}},
                    **JOB_ERRORS,
                },
            }
        },
        "/v1/jobs/{job_id}/transitions": {
            "get": {
                "summary": "Every version of the job, oldest first",
                "security": secured,
                "parameters": [JOB_ID],
                "responses": {"200": _ok(TransitionList), **JOB_ERRORS},
            }
        },
        "/v1/jobs/{job_id}/result": {
            "get": {
                "summary": "The finished job's result",
                "security": secured,
                "parameters": [JOB_ID],
                "responses": {"200": _ok(Result), **JOB_ERRORS, "409": _problem("not_ready or no_result")},
            }
        },
        "/v1/jobs/{job_id}/artifact": {
            "get": {
                "summary": "The output file",
                "security": secured,
                "parameters": [JOB_ID],
                "responses": {
                    "200": {
                        "description": "the file",
                        "content": {
                            "*/*": {"schema": {"type": "string", "contentMediaType": "application/octet-stream"}}
                        },
                    },
                    **JOB_ERRORS,
                    "409": _problem("not_ready"),
                },
            }
        },
        "/v1/jobs/{job_id}/cancel": {
            "post": {
                "summary": "Cancel the job",
                "security": secured,
                "parameters": [JOB_ID],
                "responses": {
                    "202": _ok(Job, "cancel requested"),
                    **JOB_ERRORS,
                    "409": _problem("not_cancellable or unsupported"),
                    **UPSTREAM,
                },
            }
        },
        "/healthz": {"get": {"summary": "Liveness", "responses": {"200": _ok(Health)}}},
        "/readyz": {
            "get": {
                "summary": "Readiness (store reachable)",
                "responses": {"200": _ok(Health), "503": _problem("unavailable")},
            }
        },
        "/metrics": {
            "get": {
                "summary": "Prometheus metrics",
                "responses": {
                    "200": {"description": "text format", "content": {"text/plain": {"schema": {"type": "string"}}}}
                },
            }
        },
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Translation gateway",
            "version": __version__,
            "description": "One API and one lifecycle for many asynchronous translation vendors.",
        },
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }
