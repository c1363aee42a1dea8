"""Real gateway processes for tests and benchmarks of several replicas: one `gateway simulate` and N `gateway serve
--config FILE` replicas on one PostgreSQL database, each started and stopped (or SIGKILLed) as in production.
Replica i reaches the simulator under its own host name (127.0.0.1, localhost, ...), so the simulator's request
log (`/__sim__/requests`, Host header) tells which replica sent each vendor request.

    cluster = Cluster(tmp_dir, database_url, lease_s=3.0)
    await cluster.start_simulator()
    a = await cluster.start_replica("a")      # a Process: .url, .pid, .kill(), .stop()
    ...
    cluster.stop()"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from gateway.plugins import get_providers
from gateway.server.run import DEMO_WEBHOOK_SECRET, demo_config
from gateway.testing.postgres import free_port

#: the demo tenant's key and webhook secret (the replicas use the demo config's tenants)
KEY = "demo-key"
AUTH = {"Authorization": f"Bearer {KEY}"}
SECRET = DEMO_WEBHOOK_SECRET
#: the host name replica i uses for the simulator
SIM_HOSTS = ("127.0.0.1", "localhost")
#: every poll exactly one second apart: the ticks are countable
STEADY_POLL = {"initial_s": 1.0, "factor": 1.0, "max_s": 1.0, "jitter": 0.0}
START_TIMEOUT_S = 30.0


def toml(data: dict[str, Any], prefix: str = "") -> str:
    """A TOML document of nested dicts of strings, numbers, booleans and lists (enough for a gateway config)."""
    lines, tables = [], []
    for key, value in data.items():
        if isinstance(value, dict):
            tables.append((key, value))
        else:
            lines.append(f"{key} = {json.dumps(value)}")
    out = (f"[{prefix}]\n" if prefix and lines else "") + "".join(line + "\n" for line in lines)
    for key, value in tables:
        out += "\n" + toml(value, f"{prefix}.{key}" if prefix else key)
    return out


def prefix(provider: str) -> str:
    return get_providers()[provider].sim_prefix or ""


@dataclass
class Process:
    proc: subprocess.Popen[bytes]
    url: str
    log: Path

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs (leases are not released, deliveries are cut off)."""
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.alive():
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()


def _spawn(args: list[str], log: Path) -> subprocess.Popen[bytes]:
    with open(log, "ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "gateway", *args], stdout=out, stderr=subprocess.STDOUT, env=os.environ
        )


async def wait_http(process: Process, path: str, within: float = START_TIMEOUT_S) -> None:
    deadline = time.monotonic() + within
    async with aiohttp.ClientSession() as session:
        while True:
            try:
                async with session.get(process.url + path) as resp:
                    if resp.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            if not process.alive() or time.monotonic() > deadline:
                raise AssertionError(f"{process.url}{path} never answered 200:\n{process.log.read_text()[-3000:]}")
            await asyncio.sleep(0.1)


@dataclass
class Cluster:
    """A simulator and replicas on one database; `stop()` ends every process."""

    tmp: Path
    db_url: str
    step_s: float = 1.0
    lease_s: float = 3.0
    poll: dict[str, float] = field(default_factory=lambda: dict(STEADY_POLL))
    #: store URL options of every replica (e.g. {"pool_max": 20})
    store_options: dict[str, str] = field(default_factory=dict)
    sim: Process | None = None
    replicas: list[Process] = field(default_factory=list)

    async def start_simulator(self) -> Process:
        port = free_port()
        log = self.tmp / "sim.log"
        proc = _spawn(["simulate", "--host", "127.0.0.1", "--port", str(port), "--step", str(self.step_s)], log)
        self.sim = Process(proc, f"http://127.0.0.1:{port}", log)
        first = next(p.sim_prefix for p in get_providers().values() if p.sim_prefix)
        await wait_http(self.sim, first + "/__sim__/stats")
        return self.sim

    def config(self, name: str, index: int) -> dict[str, Any]:
        assert self.sim is not None
        sim_url = self.sim.url.replace("127.0.0.1", SIM_HOSTS[index % len(SIM_HOSTS)])
        data = demo_config(sim_url, poll=self.poll)
        data["webhooks"].update(retry_schedule_s=[0.2, 0.4, 0.8, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0], timeout_s=5.0)
        data["store"] = {
            "url": f"{self.db_url}?lease_s={self.lease_s:g}&replica={name}",
            "state_dir": str(self.tmp / name),
        }
        return data

    async def start_replica(self, name: str, *, demo: bool = False) -> Process:
        index = len(self.replicas)
        port = free_port()
        log = self.tmp / f"{name}.log"
        if demo:
            assert self.sim is not None
            args = ["serve", "--demo", "--port", str(port), "--sim-url", self.sim.url, "--store", self.db_url]
        else:
            config = self.tmp / f"{name}.toml"
            config.write_text(toml(self.config(name, index)))
            args = ["serve", "--config", str(config), "--port", str(port)]
        replica = Process(_spawn(args, log), f"http://127.0.0.1:{port}", log)
        self.replicas.append(replica)
        await wait_http(replica, "/readyz")
        return replica

    def stop(self) -> None:
        for process in [*self.replicas, *([self.sim] if self.sim else [])]:
            process.stop()
