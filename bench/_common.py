"""Shared plumbing of the benchmarks: the demo wiring on loopback, simulator stats, process figures.

Everything binds 127.0.0.1 only; every helper that waits has a deadline."""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from gateway.config import parse_config
from gateway.server.app import create_app
from gateway.server.run import DEMO_VENDOR_KEY_ENV, demo_config
from gateway.sim.server import build_simulator_app

ROOT = Path(__file__).resolve().parents[1]
CAMB_PREFIX = "/camb/apis"
CAMB_STATUS = "GET /translate/{task_id}"
CAMB_CREATE = "POST /translate"
GATEWAY_KEY = "demo-key"
VENDOR_KEY = os.environ.get(DEMO_VENDOR_KEY_ENV, "demo-vendor-key")
#: a CAMB native create body the simulator accepts (English -> German)
CAMB_BODY = {"source_language": 1, "target_language": 31, "texts": ["hello benchmark"]}


def rss_kib() -> int:
    """This process's resident set size (VmRSS) in KiB."""
    return _status_kib("self", "VmRSS")


def _status_kib(pid: str, field: str) -> int:
    with open(f"/proc/{pid}/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def cpu_seconds_of(pid: int) -> float:
    """User + system CPU seconds of another process (from /proc/PID/stat)."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# -- simulators ----------------------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def simulators_in_process(step_s: float) -> AsyncIterator[str]:
    """Every vendor simulator in this process on 127.0.0.1:<any port>; yields the base URL."""
    runner = web.AppRunner(build_simulator_app(step_s=step_s), access_log=None, shutdown_timeout=2.0)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


@contextlib.asynccontextmanager
async def simulators_subprocess(step_s: float, *, timeout_s: float = 20.0) -> AsyncIterator[tuple[str, int]]:
    """`python -m gateway simulate` in a child process (dies with this one); yields (base URL, child pid)."""
    port = free_port()
    argv = ["-m", "gateway", "simulate", "--host", "127.0.0.1", "--port", str(port), "--step", str(step_s)]
    errors = tempfile.TemporaryFile()  # a file, not a pipe: a chatty child can never block on it
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        *argv,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=errors,
        preexec_fn=_die_with_parent,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout_s
        async with aiohttp.ClientSession() as session:
            while True:
                if proc.returncode is not None:
                    errors.seek(0)
                    err = errors.read().decode(errors="replace")
                    raise RuntimeError(f"the simulator exited with {proc.returncode}: {err[-2000:]}")
                try:
                    async with session.get(url + CAMB_PREFIX + "/__sim__/stats") as resp:
                        if resp.status == 200:
                            break
                except aiohttp.ClientError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError(f"the simulator did not answer on {url} within {timeout_s:g}s")
                await asyncio.sleep(0.1)
        yield url, proc.pid
    finally:
        if proc.returncode is None:
            proc.terminate()
            try:
                await asyncio.wait_for(proc.wait(), 10)
            except TimeoutError:
                proc.kill()
                await asyncio.wait_for(proc.wait(), 10)
        errors.close()


async def sim_stats(session: aiohttp.ClientSession, sim_url: str, prefix: str = CAMB_PREFIX) -> dict[str, int]:
    async with session.get(sim_url + prefix + "/__sim__/stats") as resp:
        resp.raise_for_status()
        return (await resp.json())["requests"]


async def reset_sim_stats(session: aiohttp.ClientSession, sim_url: str, prefix: str = CAMB_PREFIX) -> None:
    async with session.delete(sim_url + prefix + "/__sim__/stats") as resp:
        resp.raise_for_status()


# -- the gateway ------------------------------------------------------------------------------------


@dataclass
class RunningGateway:
    app: web.Application
    runner: web.AppRunner
    url: str


@contextlib.asynccontextmanager
async def gateway_app(sim_url: str, state_dir: Path, poll: dict[str, Any]) -> AsyncIterator[RunningGateway]:
    """The real gateway app (demo config, SQLite store in state_dir) on 127.0.0.1:<any port>."""
    config, settings = parse_config(demo_config(sim_url, poll=poll), source="bench")
    app = create_app(config, settings, state_dir=state_dir)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=2.0)  # open SSE streams must not hold cleanup
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        yield RunningGateway(app=app, runner=runner, url=f"http://127.0.0.1:{runner.addresses[0][1]}")
    finally:
        await runner.cleanup()


def auth(key: str = GATEWAY_KEY) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


class LogTally(logging.Handler):
    """Counts WARNING+ log records by logger (instead of printing tracebacks mid-report); keeps the first of each."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.counts: dict[str, int] = {}
        self.first: dict[str, str] = {}

    def emit(self, record: logging.LogRecord) -> None:
        self.counts[record.name] = self.counts.get(record.name, 0) + 1
        if record.name not in self.first:
            self.first[record.name] = f"{record.levelname}: {record.getMessage()}"[:200]

    @classmethod
    def install(cls) -> LogTally:
        tally = cls()
        root = logging.getLogger()
        root.addHandler(tally)
        root.setLevel(logging.WARNING)
        return tally

    def report(self) -> None:
        if not self.counts:
            row("log records at WARNING or above", 0)
            return
        for name, count in sorted(self.counts.items()):
            row(f"log records at WARNING+ from {name}", count, f"first: {self.first[name]}")


# -- output --------------------------------------------------------------------------------------------


def heading(title: str) -> None:
    print(f"\n== {title} " + "=" * max(2, 74 - len(title)), flush=True)


def row(label: str, value: Any, note: str = "") -> None:
    shown = f"{value:,.3f}" if isinstance(value, float) else (f"{value:,}" if isinstance(value, int) else str(value))
    print(f"  {label:<52} {shown:>14}  {note}".rstrip(), flush=True)
