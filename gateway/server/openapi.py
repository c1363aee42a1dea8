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
}


def _ref(model: type[BaseModel]) -> dict[str, str]:
    return {"$ref": REF.format(model=model.__name__)}


def _answer(answer: Answer) -> dict[str, Any]:
    schema = _ref(answer.model) if answer.model is not None else answer.schema or {}
    doc: dict[str, Any] = {"description": answer.description, "content": {answer.content_type: {"schema": schema}}}
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
        doc["requestBody"] = {"required": True, "content": {"application/json": {"schema": _ref(op.body)}}}
    responses: dict[str, Any] = {str(a.status): _answer(a) for a in op.answers}
    for status, codes in op.all_problems().items():
        responses[str(status)] = {
            "description": codes,
            "content": {PROBLEM_TYPE: {"schema": _ref(ProblemDetail)}},
        }
    doc["responses"] = dict(sorted(responses.items()))
    return doc


def _schemas(operations: Iterable[Operation]) -> dict[str, Any]:
    answers = {a.model for op in operations for a in op.answers if a.model is not None}
    bodies = {op.body for op in operations if op.body is not None}
    models = sorted(answers | {ProblemDetail}, key=lambda m: m.__name__)
    _, defs = models_json_schema([(m, "serialization") for m in models], ref_template=REF)
    schemas: dict[str, Any] = defs.get("$defs", {})
    # request bodies are validated, so their input schemas are the ones that count
    for model in sorted(bodies, key=lambda m: m.__name__):
        schemas[model.__name__] = model.model_json_schema(ref_template=REF, mode="validation")
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
            "schemas": _schemas(operations),
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }
