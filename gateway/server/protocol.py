"""The gateway's runner: the errors aiohttp answers itself as problem+json too, and the quick routes.

A request whose request line or headers aiohttp's HTTP parser refuses (too long, malformed, not HTTP) never
reaches the application or its middlewares: the connection's `RequestHandler.handle_error` answers it, in
text/plain. aiohttp 3.14 offers no setting for that answer (aio-libs/aiohttp#3287), so the gateway serves
through a runner whose server makes its connections with a `RequestHandler` that answers those errors (and a
handler timeout or an exception escaping every middleware) as `application/problem+json`.
"""

from __future__ import annotations

from aiohttp import web
from aiohttp.http_exceptions import LineTooLong
from aiohttp.web_request import BaseRequest

from gateway.server.problems import Problem
from gateway.server.quick import quick_dispatch


class ProblemRequestHandler(web.RequestHandler):
    """One connection's protocol: aiohttp's, with its own error answers as problem+json."""

    def handle_error(
        self,
        request: BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        # aiohttp logs the error and refuses when part of a response was already sent
        super().handle_error(request, status, exc, message)
        response = _problem(status, exc).response()
        response.force_close()
        return response


def _problem(status: int, exc: BaseException | None) -> Problem:
    """The problem for an error aiohttp answers itself; the detail is fixed, never the refused bytes."""
    if status < 500:
        if isinstance(exc, LineTooLong):
            return Problem(status, "bad_request", "the request line or a header is longer than the gateway accepts")
        return Problem(status, "bad_request", "the request is not valid HTTP/1.1")
    if status == 500:
        return Problem(status, "internal_error", "the gateway failed; the request id identifies it in the logs")
    return Problem(status, "unavailable", "the gateway cannot answer this now; try again later")


class ProblemServer(web.Server):
    """aiohttp's low-level server (the connections' factory), making `ProblemRequestHandler` connections."""

    def __call__(self) -> web.RequestHandler:
        return ProblemRequestHandler(self, loop=self._loop, **self._kwargs)


class GatewayRunner(web.AppRunner):
    """An `AppRunner` whose server answers aiohttp's own errors as problem+json, and offers each request to the
    app's quick routes before the router (`gateway.server.quick`)."""

    async def _make_server(self) -> web.Server:
        server = await super()._make_server()  # (the app has started: its state is complete)
        return ProblemServer(
            quick_dispatch(self.app, server.request_handler),
            request_factory=server.request_factory,
            handler_cancellation=server.handler_cancellation,
            **server._kwargs,
        )
