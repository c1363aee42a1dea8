"""What every request gets (`observed` wraps each route): request ids and access logs, problem+json errors, and
bearer-key tenants."""

from __future__ import annotations

import itertools
import logging
import math
import os
import re
from collections.abc import Awaitable, Callable
from time import monotonic
from typing import Any

from aiohttp import hdrs, web
from pydantic import ValidationError

from gateway.budgets import BudgetExceeded
from gateway.config import BEARER_TOKEN, tenant_for
from gateway.errors import InputError, UnsupportedOperation, VendorError
from gateway.idempotency import IdempotencyInProgress
from gateway.routing import SubmitFailed
from gateway.server.access import access_log
from gateway.server.keys import KEY_TABLE, METRICS, OPERATOR_KEYS, REQUEST_ID, TENANT, TENANT_CACHE
from gateway.server.problems import Problem, validation_problem
from gateway.server.schemas import pydantic_errors
from gateway.store.base import IdempotencyMismatch, StoreUnavailable

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
#: a synchronous answer from memory when one can be given at once, else None (see `observed`)
Quick = Callable[[web.Request, web.Application], web.StreamResponse | None]
errlog = logging.getLogger("gateway.server")

#: a caller's X-Request-Id is used only when it is 1-64 ASCII letters, digits, '-', '_' or '.'; any other value
#: is replaced by a fresh id (the response always says which id the gateway used)
REQUEST_ID_FORM = re.compile(r"[A-Za-z0-9._-]{1,64}")
#: `Authorization: Bearer <token>` (RFC 6750: the scheme in any case, one or more spaces, a b64token)
BEARER = re.compile(r"[Bb][Ee][Aa][Rr][Ee][Rr] +(\S+)")
#: request ids the gateway makes: a random prefix per process and a counter (unique, cheap; not a secret)
_ID_PREFIX = os.urandom(3).hex()
_ID_COUNTER = itertools.count(1)
#: how many Authorization header values the tenant cache keeps (emptied when full: keys are few, values fewer)
TENANT_CACHE_SIZE = 1024


X_REQUEST_ID = "X-Request-Id"


_ID_MASK = 16**10 - 1
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


def observed(handler: Handler, template: str | None = None, quick: Quick | None = None) -> Handler:
    """`handler` with what every request gets: its request id, the caller's tenant (`authenticate`), problem+json
    for every error, the requests metric and one access log line. Every route of the app is registered observed
    (`Api.register`, `observe_unmatched`), instead of through an aiohttp middleware: a middleware would cost every
    request two more coroutines (aiohttp adds one of its own) and the look-up of the chain. `template` is the
    route label of metric and log (default: the matched route's path template). `quick` answers from memory
    when it can (`Operation.quick_answer`: a cached read, without a coroutine); when it returns None the handler
    answers."""

    async def observe(request: web.Request) -> web.StreamResponse:
        app = request.app
        request_id = request.headers.get(X_REQUEST_ID)
        if request_id is None or not REQUEST_ID_FORM.fullmatch(request_id):
            request_id = f"{_ID_PREFIX}{next(_ID_COUNTER) & _ID_MASK:010x}"
        request[REQUEST_ID] = request_id
        started = monotonic()
        tenant = "-"
        try:
            tenant = authenticate(request, app)
            answer = None if quick is None else quick(request, app)
            response = answer if answer is not None else await handler(request)
        except Exception as exc:
            problem = _problem_for(exc)
            if problem is None:
                errlog.exception("unhandled error on %s %s (request %s)", request.method, request.path, request_id)
                problem = Problem(500, "internal_error", "the gateway failed; the request id identifies it in the logs")
            response = problem.response(instance=request.path)
        response.headers[X_REQUEST_ID] = request_id
        route = template
        if route is None:
            resource = request.match_info.route.resource
            route = UNMATCHED if resource is None else resource.canonical
        status = response.status
        method = request.method
        app[METRICS].requests.inc(method, route, str(status))
        access_log(request_id, method, route, status, monotonic() - started, tenant)
        return response

    observe.__name__ = getattr(handler, "__name__", "observe")
    observe.__doc__ = handler.__doc__
    return observe


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


OPERATOR_PREFIX = "/v1/operator"


def _bearer(request: web.Request) -> str | None:
    """The key of `Authorization: Bearer <key>`, parsed strictly (RFC 6750); None for anything else."""
    bearer = BEARER.fullmatch(request.headers.get(hdrs.AUTHORIZATION, ""))
    return bearer.group(1) if bearer and BEARER_TOKEN.fullmatch(bearer.group(1)) else None


def authenticate(request: web.Request, app: web.Application) -> str:
    """Every /v1 route needs `Authorization: Bearer <key>`: a tenant's key (sets the request's tenant, returned),
    or under /v1/operator an operator key (a tenant key opens no operator route, an operator key no tenant route).
    Routes outside /v1 are open: "-".

    A header value that named a tenant before is found in the app's TENANT_CACHE: one dict lookup instead of
    parsing it, hashing the key and comparing the digest with every configured one. Only values that named a
    tenant are kept, at most TENANT_CACHE_SIZE of them."""
    path = request.path
    if path.startswith(OPERATOR_PREFIX) and (path == OPERATOR_PREFIX or path[len(OPERATOR_PREFIX)] == "/"):
        key = _bearer(request)
        if key is None or tenant_for(app[OPERATOR_KEYS], key) is None:
            raise Problem(
                401,
                "unauthorized",
                "send Authorization: Bearer <operator key> (an operator key from the configuration, not a tenant's)",
                headers={"WWW-Authenticate": 'Bearer realm="gateway-operator"'},
            )
        return "-"
    if not path.startswith("/v1/") and path != "/v1":
        return "-"
    header = request.headers.get(hdrs.AUTHORIZATION)
    if header is not None:
        cache = app[TENANT_CACHE]
        tenant = cache.get(header)
        if tenant is None:
            key = _bearer(request)
            tenant = tenant_for(app[KEY_TABLE], key) if key is not None else None
            if tenant is not None:
                if len(cache) >= TENANT_CACHE_SIZE:
                    cache.clear()
                cache[header] = tenant
        if tenant is not None:
            request[TENANT] = tenant
            return tenant
    raise Problem(
        401,
        "unauthorized",
        "send Authorization: Bearer <gateway key>",
        headers={"WWW-Authenticate": 'Bearer realm="gateway"'},
    )
