"""Bearer keys: which key each path needs (`guard`), and whose key a request sends (`authenticate`)."""

from __future__ import annotations

import re
from typing import Literal

from aiohttp import hdrs, web

from gateway.config import BEARER_TOKEN, tenant_for
from gateway.server.keys import KEY_TABLE, OPERATOR_KEYS, TENANT, TENANT_CACHE
from gateway.server.problems import Problem

#: `Authorization: Bearer <token>` (RFC 6750: the scheme in any case, one or more spaces, a b64token)
BEARER = re.compile(r"[Bb][Ee][Aa][Rr][Ee][Rr] +(\S+)")
#: how many Authorization header values the tenant cache keeps (emptied when full: keys are few, values fewer)
TENANT_CACHE_SIZE = 1024
OPERATOR_PREFIX = "/v1/operator"


def guard(path: str) -> Literal["operator", "tenant", "open"]:
    """The key a path needs: an operator's under /v1/operator, a tenant's elsewhere under /v1; none outside /v1
    (a tenant key opens no operator route, an operator key no tenant route)."""
    if path.startswith(OPERATOR_PREFIX) and (path == OPERATOR_PREFIX or path[len(OPERATOR_PREFIX)] == "/"):
        return "operator"
    if path.startswith("/v1/") or path == "/v1":
        return "tenant"
    return "open"


def _bearer(request: web.Request) -> str | None:
    """The key of `Authorization: Bearer <key>`, parsed strictly (RFC 6750); None for anything else."""
    bearer = BEARER.fullmatch(request.headers.get(hdrs.AUTHORIZATION, ""))
    return bearer.group(1) if bearer and BEARER_TOKEN.fullmatch(bearer.group(1)) else None


def authenticate(request: web.Request, app: web.Application) -> str:
    """The key the request's path needs (`guard`): for a tenant's, the tenant (kept as the request's TENANT, and
    returned); for an operator's, "-" once the key is an operator key; an open path: "-". A missing or wrong key
    is 401."""
    needs = guard(request.path)
    if needs == "tenant":
        tenant = request[TENANT] = tenant_of(request, app)
        return tenant
    if needs == "operator":
        key = _bearer(request)
        if key is None or tenant_for(app[OPERATOR_KEYS], key) is None:
            raise Problem(
                401,
                "unauthorized",
                "send Authorization: Bearer <operator key> (an operator key from the configuration, not a tenant's)",
                headers={"WWW-Authenticate": 'Bearer realm="gateway-operator"'},
            )
    return "-"


def tenant_of(request: web.Request, app: web.Application) -> str:
    """The tenant whose key the request sends (`Authorization: Bearer <key>`); 401 when it sends none of them.

    A header value that named a tenant before is found in the app's TENANT_CACHE: one dict lookup instead of
    parsing it, hashing the key and comparing the digest with every configured one. Only values that named a
    tenant are kept, at most TENANT_CACHE_SIZE of them."""
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
            return tenant
    raise Problem(
        401,
        "unauthorized",
        "send Authorization: Bearer <gateway key>",
        headers={"WWW-Authenticate": 'Bearer realm="gateway"'},
    )
