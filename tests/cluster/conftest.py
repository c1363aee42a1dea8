"""Fixtures of the multi-replica tests: a cluster (simulator + replicas on one new PostgreSQL database) and a
webhook receiver that checks every signature."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from gateway.testing.cluster import SECRET, Cluster
from gateway.webhooks.signing import EVENT_ID_HEADER, SIGNATURE_HEADER, verify


@pytest.fixture
async def cluster(postgres_url: str, tmp_path: Path) -> AsyncIterator[Cluster]:
    cluster = Cluster(tmp_path, postgres_url)
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


class Receiver:
    """Every webhook delivery received: (event id, version, verified signature, body)."""

    def __init__(self) -> None:
        self.deliveries: list[tuple[str, int, bool, dict[str, Any]]] = []
        self.url = ""

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        signed = verify(SECRET, body, request.headers.get(SIGNATURE_HEADER, ""))
        data = await request.json()
        self.deliveries.append((request.headers.get(EVENT_ID_HEADER, ""), data["job"]["version"], signed, data))
        return web.json_response({"ok": True})


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    hooks = Receiver()
    app = web.Application()
    app.router.add_post("/hook", hooks.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    hooks.url = f"http://127.0.0.1:{runner.addresses[0][1]}/hook"
    try:
        yield hooks
    finally:
        await runner.cleanup()
