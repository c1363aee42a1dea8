"""Reading a JSON request body: size limit, parsing, and validation into the operation's request model."""

from __future__ import annotations

import json
from typing import Any, TypeVar

from aiohttp import web
from pydantic import BaseModel, ValidationError

from gateway.server.keys import MAX_BODY
from gateway.server.problems import Problem, validation_problem
from gateway.server.schemas import pydantic_errors

M = TypeVar("M", bound=BaseModel)


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
