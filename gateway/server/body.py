"""Reading a JSON request body: size and shape limits, parsing, and validation into the operation's request model.

Every request body enters here, and nothing leaves that a later step could choke on: a body too large is a
413; one that is not UTF-8 JSON, nests deeper than the configured depth (the parser's own recursion limit
included), holds a string that cannot be encoded as UTF-8 (a lone surrogate escape such as "\\ud800", in a
key or a value) or a number that is not finite (NaN, Infinity, 1e999) is a 422 naming where; only then is
the operation's model validated. All of it happens before any vendor is called or anything is stored.
"""

from __future__ import annotations

import json
import math
from typing import Any, TypeVar

from aiohttp import web
from pydantic import BaseModel, ValidationError

from gateway.server.keys import LIMITS
from gateway.server.problems import Problem, validation_problem
from gateway.server.schemas import pydantic_errors

M = TypeVar("M", bound=BaseModel)

#: at most this many problems are listed for one body
MAX_ERRORS = 10


async def read_body(request: web.Request, model: type[M]) -> tuple[M, Any]:
    """The request body validated as `model`, and the raw parsed JSON; problems for everything else."""
    limits = request.app[LIMITS]
    limit = int(limits["max_body_bytes"])
    if request.content_length is not None and request.content_length > limit:
        raise Problem(413, "payload_too_large", f"the body may be at most {limit} bytes")
    data = parse_json(await request.read(), int(limits["max_json_depth"]))
    if not isinstance(data, dict):
        raise validation_problem([{"loc": ["body"], "msg": "the body must be a JSON object"}])
    try:
        return model.model_validate(data, context=limits), data
    except ValidationError as exc:
        raise validation_problem(pydantic_errors(exc)) from None


def parse_json(raw: bytes, max_depth: int) -> Any:
    """The body as JSON data that can be stored and sent on: UTF-8, bounded depth, encodable strings, finite
    numbers. Anything else is a 422 problem (`validation_error`) whose errors name the place."""
    try:
        data = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise validation_problem([{"loc": ["body"], "msg": "the body must be UTF-8"}], "malformed JSON") from None
    except RecursionError:
        raise _too_deep(["body"], max_depth) from None
    except ValueError as exc:
        raise validation_problem([{"loc": ["body"], "msg": f"malformed JSON: {exc}"[:200]}], "malformed JSON") from None
    errors = json_problems(data, max_depth)
    if errors:
        raise validation_problem(errors)
    return data


def json_problems(data: Any, max_depth: int, root: tuple[str | int, ...] = ("body",)) -> list[dict[str, Any]]:
    """What makes parsed JSON unfit to keep: nesting beyond `max_depth`, strings (keys or values) that cannot
    be encoded as UTF-8, numbers that are not finite. Iterative, so any depth is walked without recursion."""
    errors: list[dict[str, Any]] = []
    stack: list[tuple[Any, tuple[str | int, ...], int]] = [(data, root, 1)]
    while stack and len(errors) < MAX_ERRORS:
        value, loc, depth = stack.pop()
        if isinstance(value, str):
            if not _encodable(value):
                errors.append(
                    {"loc": list(loc), "msg": "must be text that can be encoded as UTF-8 (no lone surrogate)"}
                )
        elif isinstance(value, float):
            if not math.isfinite(value):
                errors.append({"loc": list(loc), "msg": "must be a finite number"})
        elif isinstance(value, dict | list):
            if depth > max_depth:
                errors.append(_too_deep_error(list(loc), max_depth))
                continue
            if isinstance(value, list):
                stack.extend((item, (*loc, i), depth + 1) for i, item in reversed(list(enumerate(value))))
                continue
            for key, item in reversed(list(value.items())):
                if not _encodable(key):
                    errors.append(
                        {"loc": [*loc, printable(key)], "msg": "keys must be text that can be encoded as UTF-8"}
                    )
                    continue
                stack.append((item, (*loc, key), depth + 1))
    return errors


def printable(text: str) -> str:
    """`text` with anything UTF-8 cannot encode written as a backslash escape (for messages about it)."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def _encodable(text: str) -> bool:
    if text.isascii():
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _too_deep_error(loc: list[Any], max_depth: int) -> dict[str, Any]:
    return {"loc": loc, "msg": f"objects and arrays may nest at most {max_depth} levels deep"}


def _too_deep(loc: list[Any], max_depth: int) -> Problem:
    return validation_problem([_too_deep_error(loc, max_depth)], "the body nests too deeply")
