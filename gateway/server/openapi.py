"""The OpenAPI 3.1 document, built from the declared operations (`gateway.server.api`) and their pydantic models,
with parameter bounds read from the same configured limits the router enforces."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from gateway import __version__
from gateway.server.api import Answer, Limits, Operation
from gateway.server.schemas import ProblemDetail

REF = "#/components/schemas/{model}"
PROBLEM_TYPE = "application/problem+json"
RESPONSE_HEADERS = {
    "Location": {"description": "the job's URL", "schema": {"type": "string"}},
    "Retry-After": {"description": "seconds to wait", "schema": {"type": "integer"}},
    "ETag": {"description": "a weak tag of the job's snapshot, for If-None-Match", "schema": {"type": "string"}},
    "Cache-Control": {"description": "private, no-cache: revalidate with If-None-Match", "schema": {"type": "string"}},
}


def _ref(model: type[BaseModel]) -> dict[str, str]:
    return {"$ref": REF.format(model=model.__name__)}


def _answer(answer: Answer) -> dict[str, Any]:
    schema = _ref(answer.model) if answer.model is not None else answer.schema or {}
    doc: dict[str, Any] = {"description": answer.description}
    if answer.content_type:  # an answer without a body (304) has no content
        doc["content"] = {answer.content_type: {"schema": schema}}
    if answer.headers:
        doc["headers"] = {name: RESPONSE_HEADERS[name] for name in answer.headers}
    return doc


def _operation(op: Operation, limits: Limits) -> dict[str, Any]:
    doc: dict[str, Any] = {"summary": op.summary, "operationId": op.handler.__name__}
    if op.secured:
        doc["security"] = [{"bearer": []}]
    if op.params:
        doc["parameters"] = [
            {
                "name": p.name,
                "in": p.location,
                "required": p.required or p.location == "path",
                "schema": p.schema(limits),
                **({"description": p.description} if p.description else {}),
            }
            for p in op.params
        ]
    if op.body is not None:
        doc["requestBody"] = {
            "required": True,
            "description": f"UTF-8 JSON of at most {int(limits['max_body_bytes'])} bytes (else 413), objects and "
            f"arrays nested at most {int(limits['max_json_depth'])} levels deep, every string encodable as UTF-8 "
            "(no lone surrogate) and every number finite (else 422)",
            "content": {"application/json": {"schema": _ref(op.body)}},
        }
    responses: dict[str, Any] = {str(a.status): _answer(a) for a in op.answers}
    for status, codes in op.all_problems().items():
        responses[str(status)] = {
            "description": codes,
            "content": {PROBLEM_TYPE: {"schema": _ref(ProblemDetail)}},
        }
    doc["responses"] = dict(sorted(responses.items()))
    return doc


def _bounded(schema: dict[str, Any], limits: Limits) -> dict[str, Any]:
    """A request body's schema with the configured bounds of its `metadata` in numbers."""
    metadata = schema.get("properties", {}).get("metadata")
    if metadata is not None:
        metadata["maxProperties"] = int(limits["max_metadata_keys"])
        metadata["description"] = (
            "your own data, kept with the job and shown on every read of it: at most "
            f"{int(limits['max_metadata_keys'])} keys at all levels, nested at most "
            f"{int(limits['max_metadata_depth'])} levels deep, at most {int(limits['max_metadata_bytes'])} bytes "
            "as compact UTF-8 JSON"
        )
    return schema


def _schemas(operations: Iterable[Operation], limits: Limits) -> dict[str, Any]:
    answers = {a.model for op in operations for a in op.answers if a.model is not None}
    bodies = {op.body for op in operations if op.body is not None}
    models = sorted(answers | {ProblemDetail}, key=lambda m: m.__name__)
    _, defs = models_json_schema([(m, "serialization") for m in models], ref_template=REF)
    schemas: dict[str, Any] = defs.get("$defs", {})
    # request bodies are validated, so their input schemas are the ones that count
    for model in sorted(bodies, key=lambda m: m.__name__):
        schemas[model.__name__] = _bounded(model.model_json_schema(ref_template=REF, mode="validation"), limits)
    return schemas


def openapi_document(operations: list[Operation], limits: Limits) -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    for op in operations:
        paths.setdefault(op.path, {})[op.method.lower()] = _operation(op, limits)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Translation gateway",
            "version": __version__,
            "description": "One API and one lifecycle for many asynchronous translation vendors.",
        },
        "paths": paths,
        "components": {
            "schemas": _schemas(operations, limits),
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }
