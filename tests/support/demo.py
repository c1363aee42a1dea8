"""Helpers for API tests: the demo wiring (live simulators, the real app, a temp store) and a small client."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from gateway.clock import SYSTEM_CLOCK, Clock
from gateway.config import parse_config
from gateway.plugins import get_providers
from gateway.server.app import create_app
from gateway.server.protocol import GatewayRunner
from gateway.server.run import demo_config
from gateway.testing.clock import FakeClock
from support.cases import load_case

FAST_POLL = {"initial_s": 0.05, "factor": 2.0, "max_s": 0.2, "jitter": 0.0, "breaker_failures": 50}
KEY_A, KEY_B = "demo-key", "demo-key-b"


@dataclass
class Demo:
    client: TestClient
    sim_url: str
    session: aiohttp.ClientSession
    app: Any

    def headers(self, key: str = KEY_A, **extra: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {key}", **extra}

    async def call(self, method: str, path: str, *, key: str | None = KEY_A, **kw: Any) -> tuple[int, Any, Any]:
        headers = kw.pop("headers", {})
        if key is not None:
            headers = {"Authorization": f"Bearer {key}", **headers}
        async with self.client.request(method, path, headers=headers, **kw) as resp:
            ctype = resp.headers.get("Content-Type", "")
            body = await resp.json(content_type=None) if "json" in ctype else await resp.read()
            return resp.status, body, resp.headers

    async def submit(self, provider: str, input: dict[str, Any], *, key: str = KEY_A, **extra: Any) -> dict[str, Any]:
        payload = {"provider": provider, "input": input, **extra}
        status, body, _ = await self.call("POST", "/v1/jobs", key=key, json=payload)
        assert status == 201, body
        return body

    async def sim(self, provider_prefix: str, path: str, body: dict[str, Any] | None = None) -> Any:
        url = self.sim_url + provider_prefix + path
        method = "POST" if body is not None else "GET"
        async with self.session.request(method, url, json=body) as resp:
            assert resp.status == 200, await resp.text()
            return await resp.json()

    async def vendor_requests(self) -> dict[str, int]:
        """Every request each simulated vendor has received, by "<provider> <method> <route>"."""
        return await vendor_requests(self.session, self.sim_url)

    async def listing(self, key: str = KEY_A) -> list[dict[str, Any]]:
        """Every job of the tenant, page by page; each page must answer 200."""
        jobs: list[dict[str, Any]] = []
        path = "/v1/jobs?limit=50"
        while True:
            status, page, _ = await self.call("GET", path, key=key)
            assert status == 200, page
            jobs.extend(page["data"])
            if page["next_cursor"] is None:
                return jobs
            path = f"/v1/jobs?limit=50&cursor={page['next_cursor']}"

    async def finish(self, job: dict[str, Any], *, key: str = KEY_A) -> dict[str, Any]:
        """Make the vendor finish the job (the simulator's control API) and wait until the gateway sees it end."""
        case = load_case(job["provider"])
        prefix = get_providers()[job["provider"]].sim_prefix
        await self.sim(prefix, f"/__sim__/jobs/{case.sim_job_id(job['vendor_ref'])}/state", case.finished_patch)
        return await self.wait_for(job["id"], lambda j: j["terminal"], key=key)

    async def finish_on(self, clock: FakeClock, job: dict[str, Any], *, key: str = KEY_A) -> dict[str, Any]:
        """`finish` for a gateway on a FakeClock: the watcher polls only as the clock is moved, so it is moved
        (a second at a time) until the gateway has seen the job end."""
        case = load_case(job["provider"])
        prefix = get_providers()[job["provider"]].sim_prefix
        await self.sim(prefix, f"/__sim__/jobs/{case.sim_job_id(job['vendor_ref'])}/state", case.finished_patch)
        for _ in range(300):
            status, now, _ = await self.call("GET", f"/v1/jobs/{job['id']}", key=key)
            assert status == 200, now
            if now["terminal"]:
                return now
            await clock.advance(1.0)
            await asyncio.sleep(0.01)  # the poll's store writes run on the store's thread
        raise AssertionError(f"the job did not end: {now}")

    async def wait_for(self, job_id: str, predicate, *, within: float = 10.0, key: str = KEY_A) -> dict[str, Any]:
        """Long-poll the job until predicate(job) holds."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        status, job, _ = await self.call("GET", f"/v1/jobs/{job_id}", key=key)
        assert status == 200, job
        while not predicate(job):
            left = deadline - loop.time()
            assert left > 0, f"timed out; last job: {job}"
            status, job, _ = await self.call(
                "GET", f"/v1/jobs/{job_id}?wait={min(left, 5):.2f}&version={job['version']}", key=key
            )
            assert status == 200, job
        return job


async def vendor_requests(session: aiohttp.ClientSession, sim_url: str) -> dict[str, int]:
    """Every request each simulator at `sim_url` has received, by "<provider> <method> <route>"."""
    seen: dict[str, int] = {}
    for name, provider in sorted(get_providers().items()):
        if provider.sim_prefix:
            async with session.get(sim_url + provider.sim_prefix + "/__sim__/stats") as resp:
                assert resp.status == 200, await resp.text()
                seen.update({f"{name} {route}": n for route, n in (await resp.json())["requests"].items()})
    return seen


class GatewayTestServer(TestServer):
    """aiohttp's TestServer serving through the gateway's own runner, as `gateway serve` does: its quick routes
    (cached reads answered before routing) and its problem+json answers to what aiohttp refuses itself."""

    async def _make_runner(self, **kwargs: Any) -> web.AppRunner:
        return GatewayRunner(self.app, **kwargs)


async def make_demo(
    aiohttp_client,
    sim_server,
    tmp_path,
    *,
    poll: dict[str, Any] | None = None,
    clock: Clock = SYSTEM_CLOCK,
    resolver: Any = None,
    embed: Callable[[web.Application], None] | None = None,
    **config_changes: Any,
) -> Demo:
    """The gateway app on a temp store, pointed at the live simulators; `poll` overrides FAST_POLL keys; `clock`
    and `resolver` (webhook host names) are handed to the app; `embed` adds to the app before it starts what an
    embedder of the gateway would (a middleware, a signal)."""
    sim_url = str(sim_server.make_url("")).rstrip("/")
    data = demo_config(sim_url, poll={**FAST_POLL, **(poll or {})})
    data.update(config_changes)
    config, settings = parse_config(data, source="test")
    app = create_app(config, settings, state_dir=tmp_path / "state", clock=clock, resolver=resolver)
    if embed is not None:
        embed(app)
    client = await aiohttp_client(GatewayTestServer(app, host="127.0.0.1"))
    session = aiohttp.ClientSession()
    return Demo(client=client, sim_url=sim_url, session=session, app=app)
