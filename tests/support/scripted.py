"""A vendor that answers whatever a test scripts: status, body, headers, a dropped connection or a late answer.

    scripted.on("GET", "/jobs/j1", 429, {"detail": "slow down"}, headers={"Retry-After": "2"})
    scripted.on("POST", "/jobs", reset=True)
    conn = VendorConnection("acme", session, scripted.url)

Requests nobody scripted get `default` (404 {"detail": "Not Found"}); every request is recorded in `calls`.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

_NO_BODY: Any = object()


@dataclass
class Answer:
    status: int = 200
    #: a JSON body (`raw` wins when both are given)
    body: Any = _NO_BODY
    #: the exact body bytes
    raw: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)
    #: drop the connection before answering
    reset: bool = False
    #: send the headers and part of the body, then drop the connection
    reset_mid_body: bool = False
    #: answer this many (real) seconds late
    delay_s: float = 0.0

    def payload(self) -> bytes:
        if self.raw is not None:
            return self.raw
        return b"" if self.body is _NO_BODY else json.dumps(self.body).encode()


@dataclass
class Call:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes


class ScriptedVendor:
    """The scripted answers and the recorded calls; `app()` serves them, `url` is set once served."""

    def __init__(self) -> None:
        self.answers: dict[tuple[str, str], Answer] = {}
        self.default = Answer(404, {"detail": "Not Found"})
        self.calls: list[Call] = []
        self.url = ""

    def on(self, method: str, path: str, status: int = 200, body: Any = _NO_BODY, **answer: Any) -> Answer:
        """Answer `method path` so from now on (see `Answer` for the keywords)."""
        self.answers[(method.upper(), path)] = scripted = Answer(status, body, **answer)
        return scripted

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        return app

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        self.calls.append(Call(request.method, request.path, dict(request.query), dict(request.headers), body))
        answer = self.answers.get((request.method, request.path), self.default)
        if answer.delay_s:
            await asyncio.sleep(answer.delay_s)
        payload = answer.payload()
        if answer.reset:
            _drop(request)
        headers = {"Content-Type": "application/json", **answer.headers}
        if answer.reset_mid_body:
            response = web.StreamResponse(status=answer.status, headers=headers)
            response.content_length = len(payload) + 1024
            await response.prepare(request)
            await response.write(payload[: len(payload) // 2])
            _drop(request)
        return web.Response(status=answer.status, body=payload, headers=headers)


def _drop(request: web.Request) -> None:
    if request.transport is not None:
        request.transport.abort()
    raise asyncio.CancelledError  # the connection is gone; nothing more is written
