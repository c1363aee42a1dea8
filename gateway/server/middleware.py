"""What every request gets (`observed` wraps each route, `observed_quick` each quick route): request ids and
access logs, problem+json errors, and the caller's key checked (`gateway.server.auth`)."""

from __future__ import annotations

import itertools
import logging
import math
import os
import re
from collections.abc import Awaitable, Callable
from time import monotonic
from typing import Any

from aiohttp import web
from multidict import istr
from pydantic import ValidationError

from gateway.budgets import BudgetExceeded
from gateway.errors import InputError, UnsupportedOperation, VendorError
from gateway.idempotency import IdempotencyInProgress
from gateway.metrics import LoopCounter
from gateway.routing import SubmitFailed
from gateway.server.access import access_log
from gateway.server.auth import authenticate, guard, tenant_of
from gateway.server.keys import METRICS, REQUEST_ID, QuickRoute, QuickServe
from gateway.server.problems import Problem, validation_problem
from gateway.server.schemas import pydantic_errors
from gateway.store.base import IdempotencyMismatch, StoreUnavailable

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
errlog = logging.getLogger("gateway.server")

#: a caller's X-Request-Id is used only when it is 1-64 ASCII letters, digits, '-', '_' or '.'; any other value
#: is replaced by a fresh id (the response always says which id the gateway used)
REQUEST_ID_FORM = re.compile(r"[A-Za-z0-9._-]{1,64}")
#: request ids the gateway makes: a random prefix per process and a hex counter (unique, cheap; not a secret),
#: counting from 16**9 so that an id is 16 characters for its first 10**12 requests
_ID_PREFIX = os.urandom(3).hex()
_ID_COUNTER = itertools.count(16**9)


X_REQUEST_ID = istr("X-Request-Id")

#: the route label (metric, access log) of a request no route takes
UNMATCHED = "unmatched"


def vendor_problem(exc: VendorError, attempts: list[dict[str, Any]] | None = None) -> Problem:
    """A vendor failure as the contract's problem code; never a secret, never the vendor's raw body."""
    extra: dict[str, Any] = {"attempts": attempts} if attempts else {}
    detail = f"{exc.provider}: {exc.message}" if exc.provider else exc.message
    if exc.problem_code == "validation_error":
        return Problem(422, "validation_error", detail, errors=getattr(exc, "errors", []), **extra)
    if exc.problem_code == "not_found":  # the vendor does not know something the input names
        return Problem(422, "validation_error", detail, errors=[{"loc": ["body", "input"], "msg": exc.message}])
    headers = {}
    retry_after = getattr(exc, "retry_after", None)
    if exc.problem_code == "upstream_rate_limited":
        headers["Retry-After"] = str(max(1, round(retry_after or 1)))
    elif retry_after:  # e.g. a quota the vendor says when it resets
        headers["Retry-After"] = str(max(1, round(retry_after)))
    return Problem(exc.http_status, exc.problem_code, detail, headers=headers, **extra)


def _problem_for(exc: BaseException) -> Problem | None:
    if isinstance(exc, Problem):
        return exc
    if isinstance(exc, SubmitFailed):
        return vendor_problem(exc.error, exc.attempts)
    if isinstance(exc, BudgetExceeded):
        retry = {"Retry-After": str(max(1, math.ceil(exc.retry_after_s)))}
        return Problem(402, "budget_exceeded", str(exc), headers=retry, budget=exc.budget)
    if isinstance(exc, VendorError):
        return vendor_problem(exc)
    if isinstance(exc, InputError):
        return validation_problem(exc.errors, str(exc))
    if isinstance(exc, ValidationError):
        return validation_problem(pydantic_errors(exc))
    if isinstance(exc, StoreUnavailable):
        return Problem(
            503, "unavailable", "the gateway's database cannot be reached; retry shortly", headers={"Retry-After": "1"}
        )
    if isinstance(exc, IdempotencyMismatch):
        return Problem(409, "idempotency_mismatch", "this Idempotency-Key was used with another request body")
    if isinstance(exc, IdempotencyInProgress):
        wait = str(max(1, math.ceil(exc.retry_after)))
        return Problem(409, "idempotency_in_progress", str(exc), headers={"Retry-After": wait})
    if isinstance(exc, UnsupportedOperation):
        return Problem(409, "unsupported", str(exc))
    if isinstance(exc, web.HTTPRequestEntityTooLarge):
        return Problem(413, "payload_too_large", "the request body is larger than the gateway accepts")
    if isinstance(exc, web.HTTPNotFound):
        return Problem(404, "not_found", "no such route")
    if isinstance(exc, web.HTTPMethodNotAllowed):
        return Problem(
            405,
            "method_not_allowed",
            f"{exc.method} is not allowed here",
            headers={"Allow": ",".join(sorted(exc.allowed_methods))},
        )
    if isinstance(exc, web.HTTPException) and exc.status >= 400:
        return Problem(exc.status, "validation_error" if exc.status < 500 else "unavailable", exc.reason)
    return None


def _request_id(request: web.Request) -> str:
    """The request's id: the caller's X-Request-Id when well formed, else a fresh one."""
    request_id = request.headers.get(X_REQUEST_ID)
    if request_id is None or not REQUEST_ID_FORM.fullmatch(request_id):
        request_id = f"{_ID_PREFIX}{next(_ID_COUNTER):x}"
    return request_id


def _record(
    requests: LoopCounter,
    request: web.Request,
    response: web.StreamResponse,
    request_id: str,
    route: str,
    started: float,
    tenant: str,
) -> None:
    """What every answered request leaves: the response's X-Request-Id, the requests metric, one access line."""
    response.headers[X_REQUEST_ID] = request_id
    status = str(response.status)
    method = request.method
    requests.inc(method, route, status)
    access_log(request_id, method, route, status, monotonic() - started, tenant)


def observed(handler: Handler, template: str | None = None) -> Handler:
    """`handler` with what every request gets: its request id, the caller's tenant (`authenticate`), problem+json
    for every error, the requests metric and one access log line. Every route of the app is registered observed
    (`Api.register`, `observe_unmatched`), instead of through an aiohttp middleware: a middleware would cost every
    request two more coroutines (aiohttp adds one of its own) and the look-up of the chain. `template` is the
    route label of metric and log (default: the matched route's path template)."""

    async def observe(request: web.Request) -> web.StreamResponse:
        app = request.app
        request_id = request[REQUEST_ID] = _request_id(request)
        started = monotonic()
        tenant = "-"
        try:
            tenant = authenticate(request, app)
            response = await handler(request)
        except Exception as exc:
            problem = _problem_for(exc)
            if problem is None:
                errlog.exception("unhandled error on %s %s (request %s)", request.method, request.path, request_id)
                problem = Problem(500, "internal_error", "the gateway failed; the request id identifies it in the logs")
            response = problem.response(instance=request.path)
        route = template
        if route is None:
            resource = request.match_info.route.resource
            route = UNMATCHED if resource is None else resource.canonical
        _record(app[METRICS].requests, request, response, request_id, route, started, tenant)
        return response

    observe.__name__ = getattr(handler, "__name__", "observe")
    observe.__doc__ = handler.__doc__
    return observe


def observed_quick(quick: QuickRoute, route: str) -> Callable[[web.Application], QuickServe]:
    """`quick` (a quick route of a tenant's read, see `gateway.server.quick`) with what `observed` gives an
    answered request: its request id, the caller's tenant (`tenant_of`: a quick route's path needs a tenant's
    key), the metric and the access line (labelled `route`). When it cannot answer (None), or the request is
    refused (a missing key, a bad parameter), nothing is recorded and None tells the caller to route the
    request: the observed handler then answers it, the refusal as problem+json."""
    assert guard(route.split("{", 1)[0]) == "tenant", f"{route}: a quick route answers a tenant's read"

    def bind(app: web.Application) -> QuickServe:
        answer, requests = quick(app), app[METRICS].requests

        def serve(request: web.Request, path: dict[str, str]) -> web.StreamResponse | None:
            request_id = _request_id(request)
            started = monotonic()
            try:
                tenant = tenant_of(request, app)
                response = answer(request, path, tenant)
            except Exception:  # (whatever it is, the routed handler meets it again and answers it, observed)
                return None
            if response is not None:
                _record(requests, request, response, request_id, route, started, tenant)
            return response

        return serve

    return bind


def observe_unmatched(app: web.Application) -> None:
    """Answer requests no route takes, observed like the others (route label "unmatched"): 405 with `Allow` when
    a route has the path but not the method, else 404. Register it after every route (it takes any path)."""
    others = list(app.router.resources())

    async def unmatched(request: web.Request) -> web.StreamResponse:
        allowed: set[str] = set()
        for resource in others:
            allowed |= (await resource.resolve(request))[1]  # the methods of a route whose path matches
        if allowed:
            raise web.HTTPMethodNotAllowed(request.method, allowed)
        raise web.HTTPNotFound()

    app.router.add_route("*", r"/{path:[\s\S]*}", observed(unmatched, template=UNMATCHED))  # any path, newlines too
