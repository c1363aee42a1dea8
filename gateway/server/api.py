"""Each HTTP operation declared once: method, path, parameters, request body, answers and problem codes.

The router is built from the declarations (`Api.register`); every handler receives its parameters already
parsed and checked against them (a bad value is a 422 naming the parameter, never a 500); and the OpenAPI
document's paths are built from the same declarations (`gateway.server.openapi`), so the document states
exactly what the server enforces. A bound may name a configured limit (e.g. `maximum="max_page"`): the
router and the document both read it from the app's limits.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from aiohttp import web
from pydantic import BaseModel

from gateway.server.body import read_body
from gateway.server.keys import LIMITS, PERMISSIONS, QUICK_ROUTES, TENANT, QuickAnswer
from gateway.server.middleware import observed, observed_quick
from gateway.server.problems import Problem, validation_problem

#: a number, or the name of a configured limit in the app's LIMITS
Bound = float | str | None
Limits = dict[str, float]
Params = dict[str, Any]
Handler = Callable[[web.Request, Params], Awaitable[web.StreamResponse]]
#: given the started app, an operation's answer from memory to a request without a query, from its parsed
#: parameters and the caller's tenant; None when it cannot answer at once (see `Operation.quick`)
Quick = Callable[[web.Application], Callable[[web.Request, Params, str], web.StreamResponse | None]]

#: the parsed request body, validated as the operation's `body` model (in Params)
BODY = "body"
#: the request body as parsed JSON, before validation (in Params)
RAW_BODY = "raw_body"

_INT = re.compile(r"-?[0-9]{1,18}")
_compiled = functools.lru_cache(maxsize=256)(re.compile)
_FLOAT = re.compile(r"-?[0-9]{1,12}(\.[0-9]{1,12})?")
#: a control character, or a lone surrogate (how undecodable bytes of a header or query arrive)
_UNFIT = re.compile(r"[\x00-\x1f\x7f\ud800-\udfff]")


@dataclass(frozen=True)
class Param:
    """One path, query or header parameter and the rules its value must meet."""

    name: str
    location: Literal["path", "query", "header"]
    type: type = str
    description: str = ""
    required: bool = False
    minimum: Bound = None
    maximum: Bound = None
    pattern: str | None = None
    max_length: int | None = None
    enum: tuple[str, ...] | None = None

    def bound(self, value: Bound, limits: Limits) -> float | None:
        return limits[value] if isinstance(value, str) else value

    def rule(self, limits: Limits) -> str:
        """What a valid value is, in words (the message of a 422)."""
        if self.enum:
            return f"one of {', '.join(self.enum)}"
        low, high = self.bound(self.minimum, limits), self.bound(self.maximum, limits)
        kind = {int: "an integer", float: "a number"}.get(self.type, "a string")
        if self.type is str:
            kind = f"a non-empty string of at most {self.max_length or 'any number of'} printable characters"
            if self.pattern:
                kind += " of the documented form"
        if low is not None and high is not None:
            return f"{kind} from {low:g} to {high:g}"
        if low is not None:
            return f"{kind} of at least {low:g}"
        return kind

    def parse(self, raw: str, limits: Limits) -> Any:
        """The typed value; ValueError (with `rule`) when it breaks the declaration."""
        value: Any
        if self.type is int:
            if not _INT.fullmatch(raw):
                raise ValueError(self.rule(limits))
            value = int(raw)
        elif self.type is float:
            if not _FLOAT.fullmatch(raw):
                raise ValueError(self.rule(limits))
            value = float(raw)
        else:
            if not raw or (self.max_length is not None and len(raw) > self.max_length) or _UNFIT.search(raw):
                raise ValueError(self.rule(limits))
            if self.pattern is not None and not _compiled(self.pattern).fullmatch(raw):
                raise ValueError(self.rule(limits))
            if self.enum is not None and raw not in self.enum:
                raise ValueError(self.rule(limits))
            return raw
        low, high = self.bound(self.minimum, limits), self.bound(self.maximum, limits)
        if (low is not None and value < low) or (high is not None and value > high):
            raise ValueError(self.rule(limits))
        return value

    def schema(self, limits: Limits) -> dict[str, Any]:
        """The parameter's JSON schema (OpenAPI)."""
        schema: dict[str, Any] = {"type": {int: "integer", float: "number"}.get(self.type, "string")}
        for key, value in (("minimum", self.minimum), ("maximum", self.maximum)):
            bound = self.bound(value, limits)
            if bound is not None:
                schema[key] = int(bound) if self.type is int else bound
        if self.type is str:
            schema["minLength"] = 1
            if self.max_length is not None:
                schema["maxLength"] = self.max_length
            if self.pattern is not None:
                schema["pattern"] = f"^{self.pattern}$"
            if self.enum is not None:
                schema["enum"] = list(self.enum)
        return schema


@dataclass(frozen=True)
class Answer:
    """One documented success answer: a pydantic model as JSON, or another content type with its schema."""

    status: int
    description: str
    model: type[BaseModel] | None = None
    content_type: str = "application/json"
    schema: dict[str, Any] | None = None
    headers: tuple[str, ...] = ()


@dataclass(frozen=True)
class Operation:
    method: str
    #: the path as OpenAPI writes it (`/v1/jobs/{job_id}`)
    path: str
    summary: str
    handler: Handler
    params: tuple[Param, ...] = ()
    body: type[BaseModel] | None = None
    answers: tuple[Answer, ...] = ()
    #: problem answers beyond the ones every operation of its kind has: status -> the codes it carries
    problems: Mapping[int, str] = field(default_factory=dict)
    secured: bool = True
    #: a permission the caller's tenant must be given in the configuration (else 403 `forbidden`)
    permission: str | None = None
    #: for a GET without a query: an answer from memory, without a coroutine (e.g. a job's cached read), given
    #: before aiohttp routes the request (`gateway.server.quick`); None from it, or a request with a query, goes
    #: to the handler (only for operations without permission or body, whose path parameters all have a pattern)
    quick: Quick | None = None
    #: (made from `params`) the path parameters the router only matches in their declared form, taken as they are;
    #: the parameters to check; and those of them not in the query (all a request without a query can carry)
    _routed: tuple[str, ...] = field(init=False, repr=False, compare=False)
    _checked: tuple[Param, ...] = field(init=False, repr=False, compare=False)
    _unqueried: tuple[Param, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        routed = tuple(p for p in self.params if p.location == "path" and p.pattern is not None)
        checked = tuple(p for p in self.params if p not in routed)
        object.__setattr__(self, "_routed", tuple(p.name for p in routed))
        object.__setattr__(self, "_checked", checked)
        object.__setattr__(self, "_unqueried", tuple(p for p in checked if p.location != "query"))

    @property
    def router_path(self) -> str:
        """The aiohttp path: path parameters with a pattern only match values of that form."""
        path = self.path
        for param in self.params:
            if param.location == "path" and param.pattern:
                path = path.replace("{" + param.name + "}", "{" + param.name + ":" + param.pattern + "}")
        return path

    def all_problems(self) -> dict[int, str]:
        """Every problem status this operation may answer, with the codes it carries."""
        found: dict[int, str] = {}
        if self.secured:
            found[401] = "unauthorized"
        if self.permission:
            found[403] = "forbidden"
        if any(p.location == "path" for p in self.params):
            found[404] = "not_found"
        if self.params or self.body is not None:
            found[422] = "validation_error"
        if self.body is not None:
            found[413] = "payload_too_large"
        for status, codes in self.problems.items():
            found[status] = f"{found[status]} or {codes}" if status in found else codes
        return dict(sorted(found.items()))

    def quick_path(self) -> re.Pattern[str]:
        """What a request's raw path (`request.raw_path`, the query included) matches when `quick` may answer it:
        the routed path itself, without a query and without a percent escape, so that it is the path the router
        matches, as it came. Its groups are the path parameters (each matched in its declared form)."""
        pattern = re.escape(self.path)
        for param in self.params:
            if param.location == "path":
                assert param.pattern is not None, "a quick answer takes only path parameters with a pattern"
                pattern = pattern.replace(re.escape("{" + param.name + "}"), f"(?P<{param.name}>{param.pattern})")
        return re.compile(r"(?=[^%?#]*\Z)" + pattern)

    def parse(self, request: web.Request, limits: Limits, match_info: Mapping[str, str]) -> Params:
        """Every declared parameter, typed and checked; one 422 listing every bad one. `match_info`: the path
        parameters (the router's, or a quick route's)."""
        params: Params = {}
        for name in self._routed:  # the router only matched a value of the declared form
            params[name] = match_info[name]
        errors: list[dict[str, Any]] = []
        for param in self._checked if request.query_string else self._unqueried:
            source: Mapping[str, str]
            if param.location == "path":
                source = match_info
            elif param.location == "query":
                source = request.query
            else:
                source = request.headers
            raw = source.get(param.name)
            if raw is None:
                if param.required:
                    errors.append({"loc": [param.location, param.name], "msg": "required"})
                continue
            try:
                params[param.name] = param.parse(raw, limits)
            except ValueError as exc:
                errors.append({"loc": [param.location, param.name], "msg": f"must be {exc}"})
        if errors:
            raise validation_problem(errors)
        return params

    def quick_route(self, app: web.Application) -> QuickAnswer:
        """`quick` for the started app: its answer to a request that `quick_path` matched, with the parameters
        checked as for the handler (a bad one raises the handler's 422), or None."""
        assert self.quick is not None
        answer, parse, limits = self.quick(app), self.parse, app[LIMITS]

        def quick(request: web.Request, path: dict[str, str], tenant: str) -> web.StreamResponse | None:
            return answer(request, parse(request, limits, path), tenant)

        return quick

    def aiohttp_handler(self) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        handler, parse, permission, body = self.handler, self.parse, self.permission, self.body

        async def handle(request: web.Request) -> web.StreamResponse:
            if permission and permission not in request.app[PERMISSIONS].get(request[TENANT], ()):
                raise Problem(403, "forbidden", f"this tenant may not {permission} (see the tenant's configuration)")
            params = parse(request, request.app[LIMITS], request.match_info)
            if body is not None:
                params[BODY], params[RAW_BODY] = await read_body(request, body)
            return await handler(request, params)

        async def handle_plain(request: web.Request) -> web.StreamResponse:
            """`handle` of an operation without a permission or a body (most reads): the parameters only."""
            return await handler(request, parse(request, request.app[LIMITS], request.match_info))

        chosen = handle if permission or body is not None else handle_plain
        chosen.__name__ = handler.__name__
        chosen.__doc__ = handler.__doc__
        return chosen


class Api:
    """A set of declared operations (one per routes module)."""

    def __init__(self) -> None:
        self.operations: list[Operation] = []

    def operation(
        self,
        method: str,
        path: str,
        *,
        summary: str,
        params: tuple[Param, ...] = (),
        body: type[BaseModel] | None = None,
        answers: tuple[Answer, ...] = (),
        problems: Mapping[int, str] | None = None,
        secured: bool = True,
        permission: str | None = None,
        quick: Quick | None = None,
    ) -> Callable[[Handler], Handler]:
        """Declare the decorated handler as the one implementation of `method path` (`quick`: see Operation)."""

        def declare(handler: Handler) -> Handler:
            assert quick is None or (method.upper() == "GET" and permission is None and body is None), (
                "a quick answer is a GET's, and checks no permission and reads no body"
            )
            self.operations.append(
                Operation(
                    method.upper(),
                    path,
                    summary,
                    handler,
                    params,
                    body,
                    answers,
                    problems or {},
                    secured,
                    permission,
                    quick,
                )
            )
            return handler

        return declare

    def register(self, app: web.Application) -> None:
        """Add the operations to the app's router; those with path parameters first. aiohttp tries the resources
        under one path prefix in the order they were added (e.g. `/v1/jobs` and `/v1/jobs/{job_id}` both sit
        under `/v1/jobs`), and an exact path is found before any of them, so the order changes no answer: it
        only spares the reads of a job the tries of the plain paths. Operations with a `quick` answer are also
        added to the app's QUICK_ROUTES (see `gateway.server.quick`)."""
        for op in sorted(self.operations, key=lambda op: "{" not in op.path):
            app.router.add_route(op.method, op.router_path, observed(op.aiohttp_handler()))
        quick = tuple((op.quick_path(), observed_quick(op.quick_route, op.path)) for op in self.operations if op.quick)
        app[QUICK_ROUTES] = (app[QUICK_ROUTES] if QUICK_ROUTES in app else ()) + quick
