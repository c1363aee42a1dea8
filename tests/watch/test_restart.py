"""Killing the gateway (SIGKILL) mid-job and starting it again loses no transition and no webhook."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from gateway.webhooks.signing import verify

ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_http(url: str, proc: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + 30
    while True:
        try:
            urllib.request.urlopen(url, timeout=1).read()
            return
        except OSError:
            assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)


async def _http(method: str, url: str, body=None, key="demo-key"):
    """One JSON call without blocking the loop (the webhook receiver runs in this test's loop)."""
    async with (
        aiohttp.ClientSession() as session,
        session.request(method, url, json=body, headers={"Authorization": f"Bearer {key}"}) as resp,
    ):
        assert resp.status < 300, await resp.text()
        return await resp.json()


@pytest.fixture
def simulator(tmp_path):
    port = _free_port()
    log = tmp_path / "sim.log"
    with open(log, "w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "gateway", "simulate", "--port", str(port), "--step", "3600"],
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
        )
    url = f"http://127.0.0.1:{port}"
    _wait_http(url + "/camb/apis/__sim__/stats", proc, log)
    yield url
    proc.terminate()
    proc.wait(10)


class Gateway:
    def __init__(self, tmp_path: Path, sim_url: str) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.store = tmp_path / "gateway.db"
        self.sim_url = sim_url
        self.tmp = tmp_path
        self.proc: subprocess.Popen | None = None
        self.starts = 0

    def start(self) -> None:
        self.starts += 1
        log = self.tmp / f"gateway-{self.starts}.log"
        with open(log, "w") as out:
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "gateway",
                    "serve",
                    "--demo",
                    "--sim-url",
                    self.sim_url,
                    "--store",
                    str(self.store),
                    "--port",
                    str(self.port),
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=ROOT,
                env={**os.environ, "TMPDIR": str(self.tmp)},
            )
        _wait_http(self.url + "/readyz", self.proc, log)

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)


async def test_sigkill_mid_job_loses_no_transition_and_no_webhook(tmp_path, simulator, aiohttp_server):
    received: list[dict] = []
    failures = {"left": 3}

    async def hook(request: web.Request) -> web.Response:
        body = await request.read()
        assert verify("demo-webhook-secret", body, request.headers["Gateway-Signature"])
        if failures["left"] > 0:
            failures["left"] -= 1
            return web.Response(status=500)
        received.append(json.loads(body))
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/hook", hook)
    receiver = await aiohttp_server(app, host="127.0.0.1")
    gw = Gateway(tmp_path, simulator)
    gw.start()
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
        gw.start()
        done = running
        deadline = time.monotonic() + 20
        while not done["terminal"]:
            assert time.monotonic() < deadline
            done = await _http("GET", f"{gw.url}/v1/jobs/{job['id']}?wait=5&version={done['version']}")
        assert done["state"] == "succeeded" and done["result_available"]
        history = (await _http("GET", f"{gw.url}/v1/jobs/{job['id']}/transitions"))["data"]
        assert [t["version"] for t in history] == list(range(1, done["version"] + 1))
        assert [t["state"] for t in history] == ["queued", "running", "succeeded"]
        deadline = time.monotonic() + 20
        while {e["job"]["version"] for e in received} != set(range(1, done["version"] + 1)):
            assert time.monotonic() < deadline, received
            await asyncio.sleep(0.1)
        ids = [e["id"] for e in received]
        assert len(set(ids)) == done["version"]  # one event per transition (a retry keeps its id)
        versions = [e["job"]["version"] for e in received]
        assert versions == sorted(versions)  # in order
        assert all(e["type"] == "job.transition" for e in received)
    finally:
        gw.stop()
