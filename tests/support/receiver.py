"""A webhook receiver on loopback for tests that watch what a tenant's endpoint is sent."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web


class Receiver:
    """Acknowledges every webhook and keeps its JSON body, in the order received."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self.url = ""

    async def handle(self, request: web.Request) -> web.Response:
        self.events.append(json.loads(await request.read()))
        return web.Response(status=200)


async def start_receiver(aiohttp_server: Any) -> Receiver:
    """A receiver listening on a free loopback port (`receiver.url`), for the test's lifetime."""
    receiver = Receiver()
    app = web.Application()
    app.router.add_post("/hook", receiver.handle)
    receiver.url = str((await aiohttp_server(app, host="127.0.0.1")).make_url("/hook"))
    return receiver
