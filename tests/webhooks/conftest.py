"""Webhook service tests: a real receiver (aiohttp on a free loopback port) with scripted answers, and the real
gateway app (live simulators, temp store) driven by a FakeClock through its HTTP API."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest
from aiohttp import web

from gateway.testing.clock import FakeClock
from gateway.testing.dns import FakeResolver
from support.cases import load_case
from support.demo import Demo
from support.waiting import wait_until


@dataclass
class Call:
    headers: dict[str, str]
    body: bytes
    at: float

    @property
    def event(self) -> dict[str, Any]:
        return json.loads(self.body)


@dataclass
class Receiver:
    """A webhook endpoint answering from `script` (one status per call, then `then`), recording every call."""

    url: str = ""
    script: list[int] = field(default_factory=list)
    then: int = 200
    #: extra headers of the answers (e.g. Retry-After)
    answer_headers: dict[str, str] = field(default_factory=dict)
    #: bytes of the answer's body
    answer_size: int = 0
    calls: list[Call] = field(default_factory=list)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.calls.append(Call(dict(request.headers), await request.read(), time.monotonic()))
        status = self.script.pop(0) if self.script else self.then
        body = b"x" * self.answer_size
        return web.Response(status=status, body=body, headers=self.answer_headers)

    def ids(self) -> list[str]:
        return [c.headers["webhook-id"] for c in self.calls]

    def versions(self) -> list[int]:
        return [c.event["job"]["version"] for c in self.calls]


@pytest.fixture
def receiver_at(aiohttp_server):
    """`await receiver_at(script=[...])`: a live receiver on a free loopback port (URL path /hook)."""

    async def make(**kwargs: Any) -> Receiver:
        receiver = Receiver(**kwargs)
        app = web.Application()
        app.router.add_post("/hook", receiver.handle)
        server = await aiohttp_server(app, host="127.0.0.1")
        receiver.url = str(server.make_url("/hook"))
        return receiver

    return make


@dataclass
class Hooks:
    """The gateway under test, its FakeClock (wall time starting now, so signatures verify), and helpers."""

    demo: Demo
    clock: FakeClock
    dns: FakeResolver

    async def submit(self, url: str, *, key: str = "demo-key") -> dict[str, Any]:
        return await self.demo.submit("camb", load_case("camb").valid_input, webhook_url=url, key=key)

    async def log(self, job_id: str, *, key: str = "demo-key") -> dict[str, Any]:
        status, body, _ = await self.demo.call("GET", f"/v1/jobs/{job_id}/deliveries", key=key)
        assert status == 200, body
        return body

    async def attempts(self, job_id: str, n: int, *, version: int = 1) -> dict[str, Any]:
        """The delivery log entry of the job's event at `version`, once it shows `n` tries and is not in flight."""

        async def ready() -> dict[str, Any] | None:
            entry = next(e for e in (await self.log(job_id))["data"] if e["version"] == version)
            return entry if len(entry["attempts"]) >= n else None

        entry = await wait_until(ready, what=f"{n} tries of {job_id} v{version}")
        assert len(entry["attempts"]) == n, entry
        return entry

    async def advance_to(self, when: str) -> float:
        """Move the clock to an ISO time of the API (e.g. a next_attempt_at); the seconds moved."""
        target = datetime.fromisoformat(when.replace("Z", "+00:00"))
        seconds = max(0.0, (target - self.clock.now()).total_seconds()) + 0.001
        await self.clock.advance(seconds)
        return seconds


@pytest.fixture
async def hooks_with(new_demo):
    """`await hooks_with(**config)`: the gateway with `config` tables replacing the demo's, a FakeClock (its wall
    time starting now, so that receivers' signature checks pass) and a FakeResolver (localhost is loopback)."""

    async def make(**config_changes: Any) -> Hooks:
        clock = FakeClock(wall=datetime.now(UTC).replace(microsecond=0))
        dns = FakeResolver({"localhost": ["127.0.0.1"]})
        demo = await new_demo(clock=clock, resolver=dns, **config_changes)
        return Hooks(demo, clock, dns)

    return make
