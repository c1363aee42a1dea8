"""Quick routes: plain reads answered from memory before aiohttp routes the request.

A cached job read is the gateway's most frequent request, and most of its cost was aiohttp's dispatch: the
application's handler coroutine, the router's walk over the resources under `/v1/jobs` (a coroutine and a regex
per candidate), the match info, and the observed handler's coroutine. An operation declared with `quick`
(`Operation.quick`) is also a quick route: a GET whose raw path is the route's path as it came (no query, no
percent escape; `Operation.quick_path`) is first offered to its observed quick answer (`observed_quick`), in
the server's request handler. It answers from memory, with the same request id, tenant check, parameter checks,
metric and access line as the routed handler; when it cannot (not in memory, another tenant's, a missing key, a
bad header), the request goes the usual way and the routed handler answers it, exactly as before.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

from gateway.server.keys import QUICK_ROUTES

RequestHandler = Callable[[web.BaseRequest], Awaitable[web.StreamResponse]]


def quick_dispatch(app: web.Application, handler: RequestHandler) -> RequestHandler:
    """`handler` (the app's, which routes each request) behind the app's quick routes; `handler` itself when the
    app has none, or when something added to the app must see every answer (an aiohttp middleware, an
    `on_response_prepare` signal: an embedder's; the gateway uses neither). Made once the app has started (its
    state is complete)."""
    if app.middlewares or app.on_response_prepare:
        return handler
    routes = [(pattern, route(app)) for pattern, route in app.get(QUICK_ROUTES, ())]
    if not routes:
        return handler

    async def dispatch(request: web.BaseRequest) -> web.StreamResponse:
        if request.method == "GET":
            path = request.raw_path
            for pattern, answer in routes:
                match = pattern.fullmatch(path)
                if match is not None:
                    response = answer(request, match.groupdict())  # type: ignore[arg-type]  # (a web.Request: the app made it)
                    if response is not None:
                        return response
                    break
        return await handler(request)

    return dispatch
