"""Killing the gateway (SIGKILL) mid-job and starting it again loses no transition and no webhook."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

import aiohttp
from aiohttp import web

from gateway.server.run import DEMO_WEBHOOK_SECRET
from gateway.webhooks.signing import verify
from support.processes import ServerProcess, start_gateway
from support.waiting import wait_until


async def _http(method: str, url: str, body=None, key="demo-key"):
    """One JSON call without blocking the loop (the webhook receiver runs in this test's loop)."""
    async with (
        aiohttp.ClientSession() as session,
        session.request(method, url, json=body, headers={"Authorization": f"Bearer {key}"}) as resp,
    ):
        assert resp.status < 300, await resp.text()
        return await resp.json()


class Gateway:
    """The demo gateway as a subprocess on a durable store; each start picks a new free port."""

    def __init__(self, tmp_path: Path, sim_url: str) -> None:
        self.store = tmp_path / "gateway.db"
        self.sim_url = sim_url
        self.tmp = tmp_path
        self.server: ServerProcess | None = None
        self.starts = 0

    @property
    def url(self) -> str:
        assert self.server is not None
        return self.server.url

    async def start(self) -> None:
        self.starts += 1
        args = ["--demo", "--sim-url", self.sim_url, "--store", str(self.store)]
        log = self.tmp / f"gateway-{self.starts}.log"
        self.server = await start_gateway(args, log, env={**os.environ, "TMPDIR": str(self.tmp)})

    def kill(self) -> None:
        assert self.server is not None
        self.server.kill()

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()


async def test_sigkill_mid_job_loses_no_transition_and_no_webhook(tmp_path, sim_server, aiohttp_server):
    simulator = str(sim_server.make_url("")).rstrip("/")
    received: list[dict] = []
    failures = {"left": 3}

    async def hook(request: web.Request) -> web.Response:
        body = await request.read()
        assert verify(DEMO_WEBHOOK_SECRET, body, request.headers["Gateway-Signature"])
        if failures["left"] > 0:
            failures["left"] -= 1
            return web.Response(status=500)
        received.append(json.loads(body))
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/hook", hook)
    receiver = await aiohttp_server(app, host="127.0.0.1")
    gw = Gateway(tmp_path, simulator)
    await gw.start()
    try:
        job = await _http(
            "POST",
            gw.url + "/v1/jobs",
            {
                "provider": "camb",
                "webhook_url": str(receiver.make_url("/hook")),
                "input": {"kind": "text", "source_language": "en-us", "target_language": "de-de", "texts": ["restart"]},
            },
        )
        task = job["vendor_ref"]["task_id"]
        running = await _http("GET", f"{gw.url}/v1/jobs/{job['id']}?wait=10&version=1")
        assert running["state"] == "running"
        gw.kill()  # mid-job: the vendor moves on while the gateway is down
        await _http("POST", f"{simulator}/camb/apis/__sim__/jobs/{task}/state", {"status": "SUCCESS", "run_id": 5})
        await gw.start()
        done = running
        async with asyncio.timeout(20):
            while not done["terminal"]:  # long polls: each returns on the job's next version
                done = await _http("GET", f"{gw.url}/v1/jobs/{job['id']}?wait=5&version={done['version']}")
        assert done["state"] == "succeeded" and done["result_available"]
        history = (await _http("GET", f"{gw.url}/v1/jobs/{job['id']}/transitions"))["data"]
        assert [t["version"] for t in history] == list(range(1, done["version"] + 1))
        assert [t["state"] for t in history] == ["queued", "running", "succeeded"]
        every_version = set(range(1, done["version"] + 1))
        await wait_until(lambda: {e["job"]["version"] for e in received} == every_version, within=20)
        ids = [e["id"] for e in received]
        assert len(set(ids)) == done["version"]  # one event per transition (a retry keeps its id)
        versions = [e["job"]["version"] for e in received]
        assert versions == sorted(versions)  # in order
        assert all(e["type"] == "job.transition" for e in received)
    finally:
        gw.stop()
